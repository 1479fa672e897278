"""Generation backends as lm-eval ``LM`` objects: vLLM when importable, else transformers.

Both evaluation and teacher generation go through lm-eval with one of these, so prompts,
stop strings and answer extraction are identical everywhere. At most one engine is alive at a
time (models are large relative to this machine); :func:`open_lm` reuses it for the same model,
so consecutive work on one model (a sweep's engine session: a teacher's generations for every
task) pays its start once.

Engine use is counted per process (:func:`take_usage`): starts per model, the seconds spent
starting engines and the seconds spent inside ``generate_until``, so a sweep can say where its
time went.
"""

from __future__ import annotations

import time
from typing import Any

from cotgap.backends import runtime
from cotgap.backends.engine_slot import _current, _timed, _use, close, count_start, take_usage, timed  # noqa: F401
from cotgap.errors import UserError


def fresh_state() -> None:
    """Make a kept engine answer the next work as a just-started one would: vLLM's prefix cache
    (blocks computed for earlier prompts) is emptied, so a session's later jobs compute every
    prompt as a job with an engine of its own did."""
    llm = getattr(_current.get("lm"), "llm", None)
    if hasattr(llm, "reset_prefix_cache"):
        llm.reset_prefix_cache()


def pick_backend(requested: str = "auto") -> str:
    if requested == "auto":
        return "vllm" if runtime.vllm_available() else "hf"
    if requested == "vllm" and not runtime.vllm_available():
        raise UserError("backend 'vllm' requested but vLLM is not installed (pip install 'cotgap[cpu]' or '[gpu]')")
    if requested not in ("vllm", "hf"):
        raise UserError(f"unknown backend {requested!r} (auto, vllm, hf)")
    return requested


def open_lm(
    path: str,
    *,
    backend: str = "auto",
    seed: int = 0,
    engine_args: dict | None = None,
    batch_size: int = 8,
    model: Any = None,
    tokenizer: Any = None,
    api: Any = None,
    label: str | None = None,
):
    """An lm-eval LM for ``path`` (or for an in-memory ``model``, transformers backend only).

    ``engine_args``: the ``vllm.LLM`` arguments (``engines.for_model``; default: this machine's);
    with data parallel > 1 the model is served by a local ``vllm serve``. ``api``: an
    ``ApiTeacher``, answered by lm-eval's chat-completions client. ``label``: the model's name in
    the engine counts (:func:`take_usage`; default ``path``).

    The open engine is reused when the same model is asked for again with the same settings (the
    seed is not part of that: sampled requests carry their own seeds, greedy ones need none; the
    batch size only for transformers, the only backend it changes).
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
    if model is None:
        from cotgap.backends import adapter_sessions

        routed = adapter_sessions.route(path, backend, args, label or path)  # a LoRA student on its base's engine
        if routed is not None:
            return routed
    key = f"{backend}:{path}:{id(model) if model is not None else ''}:{sorted(args.items())}:" + (
        str(batch_size) if backend == "hf" else ""
    )
    if _current.get("key") == key:
        return _current["lm"]
    close()
    t0 = time.perf_counter()
    lm = _start(path, backend, seed, args, batch_size, model, tokenizer)
    label = label or path
    use = _use(label)
    use["starts"] += 1
    use["start_s"] += time.perf_counter() - t0
    _current.update(key=key, lm=_timed(lm, label))
    return lm


def _start(path: str, backend: str, seed: int, args: dict, batch_size: int, model: Any, tokenizer: Any):
    """A new engine (vLLM in process, a local ``vllm serve``, or transformers) for the model."""
    from cotgap.backends import engines

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
    return lm
