"""vLLM engine settings per model: the config's ``generation.engines`` section.

```yaml
generation:
  engines:
    Qwen/Qwen2.5-72B-Instruct: {tensor_parallel_size: 4}
    default: {gpu_memory_utilization: 0.9, max_model_len: 8192}
```

A model's settings are cotgap's defaults (bf16 on GPUs, float32 on every CPU whatever its
instruction set, eager mode on CPUs), then ``default``'s, then its own (matched by the name the user wrote, or the
folder's name). Named fields cover what research-scale runs set; ``engine_kwargs`` goes to
``vllm.LLM`` verbatim. Every argument is checked against ``vllm.LLM``'s own signature (and the
``EngineArgs`` it forwards ``**kwargs`` to) before any model loads.

``data_parallel_size`` > 1: vLLM's in-process ``LLM`` refuses it (it needs one process per
replica), so such a model is served by a local ``vllm serve --data-parallel-size N`` that cotgap
starts and stops, and requests go through the API-teacher client (``backends/local_server.py``).

Only settings that change outputs enter the generation cache key (``output_key``): the dtype and
any ``engine_kwargs`` not known to be output-neutral; parallel sizes, memory and batching limits,
eager mode and the executor backend do not.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cotgap.backends import runtime
from cotgap.errors import UserError

DTYPES = ("auto", "float32", "float", "bfloat16", "float16", "half")
EXECUTOR_BACKENDS = ("mp", "ray", "uni", "external_launcher")
#: Engine arguments that change speed or memory, not what greedy decoding writes.
OUTPUT_NEUTRAL = frozenset(
    {
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "data_parallel_size",
        "gpu_memory_utilization",
        "max_model_len",
        "max_num_seqs",
        "enforce_eager",
        "distributed_executor_backend",
        "max_num_batched_tokens",
        "cpu_offload_gb",
        "kv_cache_memory_bytes",
        "enable_prefix_caching",
        "enable_chunked_prefill",
        "disable_custom_all_reduce",
        "disable_log_stats",
        "block_size",
        "compilation_config",
    }
)
DEFAULT_KEY = "default"


@dataclass
class EngineSettings:
    """Typed engine settings of one model; ``None`` means "not set here"."""

    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    data_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    dtype: str | None = None
    enforce_eager: bool | None = None
    distributed_executor_backend: str | None = None
    engine_kwargs: dict = field(default_factory=dict)


NAMED = tuple(f.name for f in dataclasses.fields(EngineSettings) if f.name != "engine_kwargs")
_POSITIVE_INTS = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_model_len", "max_num_seqs")


def _check_value(where: str, key: str, value: Any) -> None:
    if value is None:
        return
    if key in _POSITIVE_INTS and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserError(f"{where}.{key} must be a positive integer, got {value!r}")
    if key == "gpu_memory_utilization" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1):
        raise UserError(f"{where}.{key} must be a fraction in (0, 1], got {value!r}")
    if key == "dtype" and value not in DTYPES:
        raise UserError(f"{where}.dtype must be one of {', '.join(DTYPES)}, got {value!r}")
    if key == "enforce_eager" and not isinstance(value, bool):
        raise UserError(f"{where}.enforce_eager must be true or false, got {value!r}")
    if key == "distributed_executor_backend" and value not in EXECUTOR_BACKENDS:
        raise UserError(f"{where}.distributed_executor_backend must be one of {', '.join(EXECUTOR_BACKENDS)}, got {value!r}")


def parse(engines: Any) -> dict[str, EngineSettings]:
    """``generation.engines`` from the config: {model or "default": EngineSettings}; types checked."""
    if engines is None:
        return {}
    if not isinstance(engines, dict):
        raise UserError(f"generation.engines must be a mapping of model name -> settings, got {type(engines).__name__}")
    out = {}
    for model, data in engines.items():
        where = f"generation.engines.{model}"
        if isinstance(data, EngineSettings):
            data = dataclasses.asdict(data)
        if not isinstance(data, dict):
            raise UserError(f"{where} must be a mapping of engine settings, got {data!r}")
        unknown = sorted(set(data) - set(NAMED) - {"engine_kwargs"})
        if unknown:
            raise UserError(
                f"{where}: unknown setting(s) {', '.join(map(str, unknown))} (known: {', '.join(NAMED)}, "
                "engine_kwargs — anything else vllm.LLM takes goes under engine_kwargs)"
            )
        for k in NAMED:
            _check_value(where, k, data.get(k))
        kwargs = data.get("engine_kwargs") or {}
        if not isinstance(kwargs, dict):
            raise UserError(f"{where}.engine_kwargs must be a mapping, got {kwargs!r}")
        clash = sorted(set(kwargs) & (set(NAMED) | {"model", "seed"}))
        if clash:
            raise UserError(
                f"{where}.engine_kwargs: set {', '.join(clash)} as a named setting, not in engine_kwargs"
                if set(clash) - {"model", "seed"}
                else f"{where}.engine_kwargs: {', '.join(clash)} is set by cotgap (the run's model and seed)"
            )
        out[str(model)] = EngineSettings(**{**data, "engine_kwargs": dict(kwargs)})
    return out


@lru_cache(maxsize=1)
def accepted_arguments() -> frozenset[str] | None:
    """Every keyword ``vllm.LLM`` accepts: its own parameters and ``EngineArgs``' fields (where its
    ``**kwargs`` go). None when vLLM is not installed (nothing to check against)."""
    if not runtime.vllm_available():
        return None
    from vllm import LLM
    from vllm.engine.arg_utils import EngineArgs

    own = {
        n
        for n, p in inspect.signature(LLM.__init__).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != "self"
    }
    return frozenset(own | {f.name for f in dataclasses.fields(EngineArgs)})


def validate(engines: dict[str, EngineSettings]) -> None:
    """Refuse, by name, any argument ``vllm.LLM`` does not accept (before any model loads).
    The named settings are vLLM's by construction; only ``engine_kwargs`` needs vLLM imported."""
    if not any(s.engine_kwargs for s in engines.values()):
        return
    accepted = accepted_arguments()
    if accepted is None:
        return
    for model, s in engines.items():
        bad = sorted(set(s.engine_kwargs) - accepted)
        if bad:
            raise UserError(f"generation.engines.{model}.engine_kwargs: vllm.LLM does not accept {', '.join(bad)}")


def machine_defaults() -> dict:
    """cotgap's defaults for this machine: bf16 on GPUs; float32 on CPUs, where vLLM's bf16 path
    has crashed the process (SIGILL) on a CPU that reports bf16 support (see docs/engines.md) —
    ``dtype: bfloat16`` in ``generation.engines`` opts in; eager mode on CPUs."""
    cuda = runtime.has_cuda()
    dtype = os.environ.get("COTGAP_VLLM_DTYPE") or ("bfloat16" if cuda else "float32")
    return {"dtype": dtype, "enforce_eager": not cuda, "max_model_len": 4096, "gpu_memory_utilization": 0.85 if cuda else 0.9}


def for_model(engines: dict[str, EngineSettings], spec: str) -> dict:
    """The resolved ``vllm.LLM`` keyword arguments for model ``spec`` (model and seed excluded)."""
    args = machine_defaults()
    names = [spec, Path(spec).name] if spec else []
    layers = [engines.get(DEFAULT_KEY)] + [engines.get(n) for n in dict.fromkeys(names)]
    for s in layers:
        if s is None:
            continue
        args.update({k: getattr(s, k) for k in NAMED if getattr(s, k) is not None})
        args.update(s.engine_kwargs)
    return args


def output_key(args: dict) -> dict:
    """The part of an engine's arguments that changes what it writes (for cache keys)."""
    return {k: v for k, v in sorted(args.items()) if k not in OUTPUT_NEUTRAL}


def served(args: dict) -> bool:
    """Whether this engine must run as a local ``vllm serve`` (data parallel > 1)."""
    return int(args.get("data_parallel_size") or 1) > 1
