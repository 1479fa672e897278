"""One prepared check of cotgap's CUDA training path (run on a GPU machine; CI has none).

Trains a tiny model (``cotgap.testing.build_model``) with cotgap's default training settings
three times — on the GPU with the default ``bf16: auto``, on the GPU in float32, and on the CPU
in float32 — and prints, as JSON: whether ``auto`` chose bf16 on CUDA (it must: bf16 on GPUs,
float32 on CPUs), the updates, the per-step losses, and the largest per-step loss difference
between GPU-fp32 and CPU-fp32 (the same config must give the same training on any device, up to
float rounding).

    python bench/cuda_check.py --out cuda_check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def examples(n: int = 12) -> list[dict]:
    out = []
    for i in range(n):
        steps = " ".join(f"step {k} adds {i}." for k in range(1 + i % 5))
        out.append(
            {
                "messages": [
                    {"role": "system", "content": "Add the numbers."},
                    {"role": "user", "content": f"Q: what is {i} + {i}?"},
                    {"role": "assistant", "content": f"{steps} So the answer is {2 * i}."},
                ],
                "source": "synthetic",
            }
        )
    return out


def train(model: Path, out: Path, *, cuda: bool, bf16) -> dict:
    from cotgap.backends import runtime
    from cotgap.backends.training import TrainConfig, train_sft

    cfg = TrainConfig(epochs=2, per_device_batch_size=2, learning_rate=1e-3, bf16=bf16)
    with mock.patch.object(runtime, "has_cuda", lambda: cuda):
        used = cfg.use_bf16()
        res = train_sft(str(model), examples(), out, cfg, progress=False, log=lambda *_: None)
    return {
        "bf16": used,
        "updates": res.updates,
        "losses": [h["loss"] for h in res.loss_history],
        "semantics": res.extra.get("semantics"),
    }


def main() -> None:
    import torch

    from cotgap.testing import build_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="cuda_check.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    model = build_model(tmp / "tiny", hidden=64, layers=2, seed=0)
    result = {
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }
    if result["cuda"]:
        result["gpu_auto"] = train(model, tmp / "a", cuda=True, bf16="auto")
        result["gpu_fp32"] = train(model, tmp / "b", cuda=True, bf16=False)
    result["cpu_fp32"] = train(model, tmp / "c", cuda=False, bf16="auto")
    if result["cuda"]:
        a, b = result["gpu_fp32"]["losses"], result["cpu_fp32"]["losses"]
        result["max_abs_loss_diff_gpu_fp32_vs_cpu_fp32"] = max(abs(x - y) for x, y in zip(a, b))
        result["auto_is_bf16_on_gpu_and_fp32_on_cpu"] = result["gpu_auto"]["bf16"] and not result["cpu_fp32"]["bf16"]
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
