"""LoRA students evaluated as adapters on one vLLM engine of their base model.

A LoRA student is written twice by training (``backends/training.py``): the merged model
(``<dir>/model``, what the distilled evaluation loads) and the peft adapter beside it
(``<dir>/adapter``). Evaluating every merged student on an engine of its own starts one engine per
cell; vLLM serves adapters per request instead (``enable_lora``, ``LoRARequest``), so the students
of one base model can be evaluated on one engine of that base. An *adapter session* is such an
engine, registered by the sweep (:mod:`cotgap.pipeline.sweep_adapters`) once the students have
trained and started by the first evaluation asked of it: while a session is open,
:func:`cotgap.backends.generation.open_lm` asks :func:`route` first, and a merged student registered
with it is answered by the base engine with its adapter applied; any other model goes the ordinary
way (the session's engine is shut down first: two engines are not kept).

The engine is this module's, not the engine slot's (``engine_slot``), so ``generation.close()`` (which the
runner calls after each run) leaves it open; :func:`close` ends it. Its start is counted in the
engine counts under ``<base> adapters``; each student's generation time under its own label.

Where the engine cannot serve adapters (:func:`unsupported`: the transformers backend, a model
served by ``vllm serve`` for data parallelism, a vLLM without LoRA, or ``COTGAP_ADAPTER_SESSIONS=0``),
students are evaluated merged.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotgap.backends import engine_slot
from cotgap.backends.vllm_lm import VLLMLM

#: The adapter's folder, beside the merged model's (``training._write_outputs``).
ADAPTER_DIR = "adapter"
#: The ranks vLLM's ``max_lora_rank`` accepts (``vllm.config.lora.MaxLoRARanks``).
RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
#: ``COTGAP_ADAPTER_SESSIONS=0`` evaluates every student merged (to compare, or to work around an engine).
SWITCH = "COTGAP_ADAPTER_SESSIONS"
#: The engine arguments an adapter session adds to the base model's own.
LORA_ARGS = ("enable_lora", "max_loras", "max_lora_rank")


def unsupported(backend: str, args: dict) -> str | None:
    """Why a student's adapters cannot be served on an engine with these settings, or None."""
    from cotgap.backends import engines, runtime

    if os.environ.get(SWITCH) == "0":
        return f"adapter sessions turned off ({SWITCH}=0)"
    if backend != "vllm":
        return f"the {backend} backend has no per-request adapters"
    if not runtime.vllm_available():
        return "vLLM is not installed"
    if engines.served(args):
        return "a data-parallel model is served by vllm serve (one model per server)"
    accepted = engines.accepted_arguments() or frozenset()
    if not set(LORA_ARGS) <= accepted:
        return "this vLLM does not take enable_lora"
    try:
        from vllm.lora.request import LoRARequest  # noqa: F401
    except ImportError:
        return "this vLLM has no LoRA requests"
    return None


def adapter_of(model_path: str, base_path: str) -> dict | None:
    """The peft LoRA adapter the merged student ``model_path`` was made from, when its base is
    ``base_path`` (``{"path", "rank"}``); None when there is none (full fine-tuning, a strategy that
    merged further, an adapter trained on another model) or it holds what vLLM does not apply per
    request (trained modules saved whole, DoRA, trained biases)."""
    folder = Path(model_path).parent / ADAPTER_DIR
    try:
        cfg = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return None
    if str(cfg.get("peft_type", "")).upper() != "LORA" or not cfg.get("r"):
        return None
    if cfg.get("modules_to_save") or cfg.get("use_dora") or cfg.get("bias", "none") != "none":
        return None  # weights vLLM's LoRA layers do not apply: only the merged model is the student
    base = str(cfg.get("base_model_name_or_path") or "")
    if base != base_path and Path(base).resolve() != Path(base_path).resolve():
        return None
    return {"path": str(folder), "rank": int(cfg["r"])}


def engine_rank(ranks: list[int]) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that covers every adapter's rank."""
    need = max(ranks, default=1)
    return next((r for r in RANKS if r >= need), need)


class _AdapterEngine:
    """The session's ``vllm.LLM`` seen with one adapter applied to every ``generate`` call."""

    def __init__(self, llm: Any, request: Any) -> None:
        self._llm, self._request = llm, request

    def generate(self, *args, **kwargs):
        return self._llm.generate(*args, lora_request=self._request, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._llm, name)


class AdapterLM(VLLMLM):
    """A student's lm-eval model on the session's engine: ``shutdown`` leaves the engine open."""

    def shutdown(self) -> None:
        self.llm = None


@dataclass
class Session:
    base: str
    args: dict  # the base model's engine arguments, without LORA_ARGS
    adapters: dict[str, dict]  # merged student path -> {"path", "rank"}
    seed: int = 0
    label: str = ""
    lm: Any = None  # the engine, started by the first student asked for
    failure: str | None = None  # why the engine did not start (its students are evaluated merged)
    ids: dict[str, int] = field(default_factory=dict)
    served: list[str] = field(default_factory=list)


_session: Session | None = None


def current() -> Session | None:
    return _session


def open_session(base: str, args: dict, adapters: dict[str, dict], *, seed: int = 0, label: str = "") -> Session:
    """Register the students (merged model path -> adapter) whose distilled evaluations the base
    model's engine answers; the engine starts when the first of them is asked for (a student whose
    evaluation is already finished never starts it)."""
    global _session
    close()
    _session = Session(base, dict(args), {str(Path(p)): a for p, a in adapters.items()}, seed, label or f"{base} adapters")
    return _session


def _start(s: Session) -> None:
    """Start the session's engine: the base with LoRA enabled at a rank covering every adapter (the
    current ``generation`` engine closed first). A failure is kept in ``s.failure``, not raised."""
    from vllm import LLM

    engine_slot.close()
    lora = {"enable_lora": True, "max_loras": 1, "max_lora_rank": engine_rank([a["rank"] for a in s.adapters.values()])}
    t0 = time.perf_counter()
    try:
        s.lm = LLM(model=s.base, seed=s.seed, **{**s.args, **lora})
    except Exception as exc:  # the fallback is the merged models; the reason is kept
        first = (str(exc).splitlines() or [""])[0]
        s.failure = f"the adapter engine did not start ({type(exc).__name__}: {first})"
        engine_slot.close()
        return
    engine_slot.count_start(s.label, time.perf_counter() - t0)


def route(path: str, backend: str, args: dict, label: str):
    """The lm-eval model for ``path`` on the open session (a registered student, same engine
    settings), or None: no session, its engine failed, or a model the session does not serve (its
    engine is shut down then: two engines are not kept)."""
    s = _session
    if s is None:
        return None
    from vllm.lora.request import LoRARequest

    adapter = s.adapters.get(str(Path(path)))
    if adapter is None or backend != "vllm" or {k: v for k, v in args.items() if k not in LORA_ARGS} != s.args:
        _shutdown(s)
        return None
    if s.lm is None and s.failure is None:
        _start(s)
    if s.lm is None:
        return None
    s.ids.setdefault(adapter["path"], len(s.ids) + 1)
    request = LoRARequest(f"student-{s.ids[adapter['path']]}", s.ids[adapter["path"]], adapter["path"])
    if hasattr(s.lm, "reset_prefix_cache"):  # as a just-started engine would (generation.fresh_state)
        s.lm.reset_prefix_cache()
    s.served.append(str(Path(path)))
    return engine_slot.timed(AdapterLM(_AdapterEngine(s.lm, request), name=path, seed=s.seed), label)


def _shutdown(s: Session) -> None:
    """Release the session's engine (a later student asked for starts it again)."""
    if s.lm is None:
        return
    core = getattr(getattr(s.lm, "llm_engine", None), "engine_core", None)
    if core is not None:
        core.shutdown()
    s.lm = None
    engine_slot.close()  # its memory returned as generation's is


def close() -> None:
    """End the open session, if any, releasing its engine."""
    global _session
    s, _session = _session, None
    if s is not None:
        _shutdown(s)
