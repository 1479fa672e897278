"""Generation backends as lm-eval ``LM`` objects: vLLM when importable, else transformers.

Both evaluation and teacher generation go through lm-eval with one of these, so prompts,
stop strings and answer extraction are identical everywhere. At most one engine is alive at a
time (models are large relative to this machine); :func:`open_lm` reuses it for the same model.
"""

from __future__ import annotations

import gc
from typing import Any

from cotgap.backends import runtime
from cotgap.errors import UserError

_current: dict[str, Any] = {}


def pick_backend(requested: str = "auto") -> str:
    if requested == "auto":
        return "vllm" if runtime.vllm_available() else "hf"
    if requested == "vllm" and not runtime.vllm_available():
        raise UserError("backend 'vllm' requested but vLLM is not installed (pip install 'cotgap[cpu]' or '[gpu]')")
    if requested not in ("vllm", "hf"):
        raise UserError(f"unknown backend {requested!r} (auto, vllm, hf)")
    return requested


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


def open_lm(path: str, *, backend: str = "auto", seed: int = 0, engine_args: dict | None = None,
            batch_size: int = 8, model: Any = None, tokenizer: Any = None, api: Any = None):
    """An lm-eval LM for ``path`` (or for an in-memory ``model``, transformers backend only).

    ``engine_args``: the ``vllm.LLM`` arguments (``engines.for_model``; default: this machine's);
    with data parallel > 1 the model is served by a local ``vllm serve``. ``api``: an
    ``ApiTeacher``, answered by lm-eval's chat-completions client.
    """
    if path.startswith("scripted"):
        from cotgap.backends.scripted import ScriptedLM

        return ScriptedLM(path, seed=seed)
    if api is not None:
        from cotgap.backends.api_lm import ApiChatLM

        return ApiChatLM(api, seed=seed)
    from cotgap.backends import engines

    backend = "hf" if model is not None else pick_backend(backend)
    args = dict(engine_args if engine_args is not None else engines.machine_defaults())
    key = f"{backend}:{path}:{id(model) if model is not None else ''}:{sorted(args.items())}:{batch_size}"
    if _current.get("key") == key:
        return _current["lm"]
    close()
    if backend == "vllm" and engines.served(args):
        from cotgap.backends.local_server import ServedLM

        lm = ServedLM(path, args, seed=seed)
    elif backend == "vllm":
        from vllm import LLM

        from cotgap.backends.vllm_lm import VLLMLM

        lm = VLLMLM(LLM(model=path, seed=seed, **args), name=path, seed=seed)
    else:
        from cotgap.backends.hf_lm import ProgressHFLM as HFLM

        device = "cuda" if runtime.has_cuda() else "cpu"
        if model is None:
            dtype = "bfloat16" if device == "cuda" else "float32"  # never by CPU flags: same numbers on any CPU
            lm = HFLM(pretrained=path, device=device, batch_size=batch_size, dtype=dtype)
        else:
            lm = HFLM(pretrained=model, tokenizer=tokenizer, device=device, batch_size=batch_size)
    _current.update(key=key, lm=lm)
    return lm
