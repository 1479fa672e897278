"""The one engine slot of this process and what its engines cost.

At most one generation engine is alive at a time (``_current``, filled by
:func:`cotgap.backends.generation.open_lm`); :func:`close` really frees it. Engine use is counted
per model label (:func:`take_usage`): starts, the seconds spent starting engines and the seconds
spent inside ``generate_until``. A module of its own so that both ``generation`` and the adapter
sessions (``adapter_sessions``) use the slot without importing each other.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from cotgap.backends import runtime

_current: dict[str, Any] = {}
#: Engine use since the last :func:`take_usage`, per model label: starts, start_s, generate_s.
_usage: dict[str, dict] = {}


def take_usage() -> dict[str, dict]:
    """This process's engine use since the last call, per model label (``{"starts", "start_s",
    "generate_s"}``), and forget it: whoever records a job or a cell takes what it used."""
    out = {k: {**v, "start_s": round(v["start_s"], 4), "generate_s": round(v["generate_s"], 4)} for k, v in _usage.items()}
    _usage.clear()
    return out


def _use(label: str) -> dict:
    return _usage.setdefault(label, {"starts": 0, "start_s": 0.0, "generate_s": 0.0})


def count_start(label: str, seconds: float) -> None:
    """Count an engine start made outside :func:`open_lm` (an adapter session's)."""
    use = _use(label)
    use["starts"] += 1
    use["start_s"] += seconds


def timed(lm, label: str):
    """``lm`` with its answering time counted under ``label`` (see :func:`_timed`)."""
    return _timed(lm, label)


def _timed(lm, label: str):
    """Count the seconds ``lm`` spends answering requests under ``label`` (the instance's own
    ``generate_until`` is wrapped: lm-eval and the request ledger both call it by name)."""
    inner = lm.generate_until

    def generate_until(requests, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(requests, *args, **kwargs)
        finally:
            _use(label)["generate_s"] += time.perf_counter() - t0

    lm.generate_until = generate_until
    return lm


def close() -> None:
    """Free the current engine, really: an in-process vLLM engine is not released by dropping the
    last reference (docs/engines.md, "Releasing an engine"), so it is shut down explicitly, and
    glibc is asked to return freed heap pages."""
    lm = _current.get("lm")
    _current.clear()
    if hasattr(lm, "shutdown"):
        lm.shutdown()
    del lm
    gc.collect()
    runtime.release_freed_memory()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass
