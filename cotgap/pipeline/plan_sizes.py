"""Model sizes for a sweep's plan, without downloading anything.

The size rule (student < every teacher) needs parameter counts. A run counts them from the
model's config (``count_params``, on the meta device), which for a hub id means asking the hub.
The plan must work where the hub cannot be reached, so it sizes a model by what it has here:

- zoo models: the zoo's pinned count; local folders: their ``config.json`` (meta device);
- API teachers: the ``parameters_b`` their spec declares;
- hub ids: the grid's ``parameters_b`` if it declares one, else a config already in the local
  Hugging Face cache (``local_files_only``: never the network), else *unsized*;
- the scripted teacher: exempt from the rule, as in a run.

An unsized model is reported with the reason ("could not size …"), and the cells that need it
get status ``unknown`` unless the sizes that are known already break the rule.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from cotgap.errors import UserError
from cotgap.models.resolve import ModelRef, count_params, meta_params, resolve

#: Variables that keep huggingface_hub / transformers off the network for the plan's duration.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@dataclass(frozen=True)
class Sized:
    """A model as the size rule sees it (``rules.check_student_smaller`` reads spec, kind, n_params)."""

    spec: str
    kind: str
    n_params: int | None  # None: unsized (see ``problem``)
    source: str  # "zoo" | "config" | "declared" | "cached config" | "exempt" | "unsized"
    problem: str | None = None

    def describe(self) -> dict:
        """The plan's ``models`` entry."""
        return {"kind": self.kind, "parameters": self.n_params, "source": self.source, "problem": self.problem}


@contextmanager
def offline():
    """Set :data:`OFFLINE_ENV` while planning, and put the previous values back."""
    from cotgap.backends import runtime

    with runtime.environment(OFFLINE_ENV):
        yield


def _cached_config_params(spec: str) -> int | None:
    """A hub model's parameter count from a config already in the local cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(spec, "config.json"), str):
        return None
    from transformers import AutoConfig

    try:
        return meta_params(AutoConfig.from_pretrained(spec, local_files_only=True))
    except Exception:  # a cached config transformers cannot build: as good as none
        return None


def _size_hub(ref: ModelRef, declared: dict[str, float]) -> Sized:
    if ref.spec in declared:
        return Sized(ref.spec, ref.kind, int(declared[ref.spec] * 1e9), "declared")
    n = _cached_config_params(ref.spec)
    if n is not None:
        return Sized(ref.spec, ref.kind, n, "cached config")
    return Sized(
        ref.spec,
        ref.kind,
        None,
        "unsized",
        f"could not size {ref.spec}: not declared in the grid's parameters_b and no config in the local "
        f"Hugging Face cache (add parameters_b: {{{ref.spec}: <billions>}})",
    )


def size_of(spec: str, declared: dict[str, float]) -> Sized:
    """How big model ``spec`` is, from what this machine has (module docstring); never raises for
    a model that merely cannot be sized — the problem is returned instead."""
    ref = resolve(spec)
    if ref.kind == "scripted":
        return Sized(ref.spec, ref.kind, None, "exempt")
    if ref.kind == "hub":
        return _size_hub(ref, declared)
    try:
        n = count_params(ref)  # zoo: pinned; local: its safetensors headers (else config.json); api: the spec's declared size
    except UserError as exc:
        return Sized(ref.spec, ref.kind, None, "unsized", f"could not size {ref.spec}: {exc}")
    return Sized(ref.spec, ref.kind, n, {"zoo": "zoo", "local": "config", "api": "declared"}[ref.kind])


def sizes(specs, declared: dict[str, float]) -> dict[str, Sized]:
    """Every model of ``specs`` sized once, keyed by the spec as written."""
    return {s: size_of(s, declared) for s in dict.fromkeys(specs)}
