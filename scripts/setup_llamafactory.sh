#!/usr/bin/env bash
# Builds ./.venv-llamafactory: the real LLaMA-Factory 0.9.5 from PyPI, in an environment of its own
# (its pins — transformers<=5.6, peft<=0.18.1, datasets<=4.0, accelerate<=1.11 — clash with cotgap's).
# Used by bench/llamafactory_parity.py and tests/test_llamafactory_parity.py; cotgap itself never imports it.
# LLaMA-Factory imports torchaudio at start-up (llamafactory/data/mm_plugin.py). PyPI's torchaudio wheels are
# CUDA builds that link libtorch_cuda.so, so they cannot load next to the CPU torch in ./.venv; PyPI has no
# CPU torch 2.11, so this environment takes PyPI's CUDA torch 2.11.0 with torchaudio 2.11.0 and
# torchvision 0.26.0 (a pair that loads together, and runs on a CPU). That pulls the nvidia-* libraries:
# measured on the 2-core CI machine from an empty pip cache: 1 min 28 s and 2 min 37 s (busy machine),
# 5.7 GiB (nvidia-* 2.7 GiB, torch 1.2 GiB, triton 0.6 GiB); a re-run on a built environment: 8 s.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${COTGAP_LLAMAFACTORY_VENV:-.venv-llamafactory}  # the same variable the harness reads
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q torch==2.11.0 torchaudio==2.11.0 torchvision==0.26.0 llamafactory==0.9.5
"$venv/bin/python" -c "import torchaudio, llamafactory; print('llamafactory', llamafactory.__version__)"
echo "LLaMA-Factory installed in $(cd "$venv" && pwd)"
