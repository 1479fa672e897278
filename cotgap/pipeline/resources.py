"""Per-model resources of a sweep's jobs: the grid's optional ``resources`` section.

```yaml
resources:
  Qwen/Qwen2.5-72B-Instruct: {num_gpus: 4, num_cpus: 16}
  default: {num_gpus: 1, num_cpus: 8}
```

Keys are model specs as the grid writes them (or a local model's folder name), or ``default``;
values name Ray's task resources (``num_gpus``, ``num_cpus``), non-negative numbers. A job gets
the entry of the model that does its work (the teacher of a generation job, the student of a
baseline or a cell's training), else ``default``'s, else nothing (``{}``). The plan
(``cotgap sweep --dry-run``) reports them per job; the executor that schedules jobs reads the same
lookup.
"""

from __future__ import annotations

from pathlib import Path

from cotgap.errors import UserError

#: The resources a job may ask for (Ray's names).
RESOURCE_KEYS = ("num_gpus", "num_cpus")
DEFAULT_KEY = "default"


def _number(value, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise UserError(f"{where} must be a non-negative number, got {value!r}")
    return value


def parse(raw, models: set[str], where: str) -> dict[str, dict]:
    """The ``resources`` section checked: a mapping of known models (or ``default``) to mappings of
    :data:`RESOURCE_KEYS` with non-negative numbers. A key naming no model of the grid is refused
    (a typo would otherwise leave a job without its GPUs, silently)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(
            f"grid {where}: resources must map model names (or default) to {{{', '.join(RESOURCE_KEYS)}}}, got {raw!r}"
        )
    out = {}
    for model, spec in raw.items():
        key = str(model)
        if key != DEFAULT_KEY and not matches_any(key, models):
            raise UserError(
                f"grid {where}: resources names {key!r}, which is not a student or teacher of this grid (nor {DEFAULT_KEY!r})"
            )
        if not isinstance(spec, dict):
            raise UserError(f"grid {where}: resources.{key} must be a mapping like {{num_gpus: 1, num_cpus: 4}}, got {spec!r}")
        unknown = sorted(map(str, set(spec) - set(RESOURCE_KEYS)))
        if unknown:
            raise UserError(
                f"grid {where}: resources.{key}: unknown key(s) {', '.join(unknown)} (known: {', '.join(RESOURCE_KEYS)})"
            )
        out[key] = {k: _number(v, f"grid {where}: resources.{key}.{k}") for k, v in spec.items()}
    return out


def names_of(spec: str) -> list[str]:
    """The names a model may be keyed by in a per-model section: the spec, or its folder's name."""
    return list(dict.fromkeys([spec, Path(spec).name]))


def matches_any(key: str, models: set[str]) -> bool:
    """Whether a per-model key names one of ``models``."""
    return any(key in names_of(m) for m in models)


def for_model(resources: dict[str, dict], spec: str) -> dict:
    """The resources of a job done by model ``spec``: its own entry, else ``default``'s, else {}."""
    for name in names_of(spec):
        if name in resources:
            return dict(resources[name])
    return dict(resources.get(DEFAULT_KEY) or {})
