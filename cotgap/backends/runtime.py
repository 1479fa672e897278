"""Process-wide runtime settings: threads and the environment vLLM needs on a CPU.

Must run before torch/vLLM are imported (the CLI calls :func:`configure` first thing).
On machines with <= 2 cores torch is often faster on 1 thread, so that is the default there.
"""

from __future__ import annotations

import contextlib
import os

# vLLM's CPU KV cache, in GiB, unless VLLM_CPU_KVCACHE_SPACE is set: 1 GiB holds about 18k tokens
# of the 1.5B default teacher's float32 cache, room for every default run's batches; at 2 GiB the
# default runs with a 1.5B teacher peaked at 13.1 GB instead of 12.0 (docs/strategies.md). A GPU engine
# sizes its cache from gpu_memory_utilization and ignores this.
CPU_KV_CACHE_GIB = 1


def default_threads() -> int:
    n = os.cpu_count() or 1
    return 1 if n <= 2 else min(n, 16)


def configure(threads: int | None = None) -> int:
    threads = int(threads or os.environ.get("COTGAP_THREADS") or default_threads())
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # vLLM on CPU: run the engine in this process, with a bounded KV cache.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(CPU_KV_CACHE_GIB))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import sys

    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
    return threads


def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def cpu_supports_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def device_description() -> dict:
    """The machine's compute device for reports: the GPU's name where there is one, else the CPU's
    model and whether it has bf16 instructions (recorded, never used to choose a default)."""
    info = {"cpu": _cpu_model(), "cpu_bf16": cpu_supports_bf16(), "gpu": None}
    if has_cuda():
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
    info["device"] = "cuda" if info["gpu"] else "cpu"
    return info


def _cpu_model() -> str | None:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``), so that a model freed before the
    next one is loaded no longer counts against the machine; a no-op elsewhere."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def environment(values: dict[str, str]):
    """Set environment variables for the duration of a block, then put the previous values back
    (unset ones are unset again)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
