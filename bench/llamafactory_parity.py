"""cotgap's SFT next to the real LLaMA-Factory 0.9.5 (``llamafactory-cli train``) on the same data.

Usage: python bench/llamafactory_parity.py [--cases full,full-cut256,lora] [--examples 24] [--out FILE]
(needs ``bash scripts/setup_llamafactory.sh``: LLaMA-Factory lives in ``.venv-llamafactory``, an
environment of its own; ``COTGAP_LLAMAFACTORY_VENV`` points elsewhere.)

What it does, per case:

1. A tiny student (``cotgap.testing.build_model``: a 2-layer Llama whose tokenizer has a ChatML chat
   template, what LLaMA-Factory's ``template: qwen`` writes) and ``synthetic_object_counting``
   examples as chat turns: system = the task's instruction, user = lm-eval's question text,
   assistant = a scripted rationale (short and long alternate: ~55-630 target tokens).
2. LLaMA-Factory trains it from a ShareGPT dataset (``stage: sft``, fp32 on the CPU, ``seed: 42``)
   and saves its tokenised dataset (``tokenized_path``) and ``trainer_state.json``.
3. cotgap's ``train_sft`` trains it on the same messages with the same hyperparameters. Only
   hyperparameters both tools have are set (method, learning rate, epochs, batch, scheduler,
   warmup, seed, cutoff length, fp32); cotgap's loss and template handling are its defaults.
4. The comparison: input ids and labels per example, updates, per-step loss, final weights.

It prints one line per case and writes the whole result as JSON (``--out``). The suite's
``tests/test_llamafactory_parity.py`` runs a small case of the same harness (CI builds the environment).

Measured 2026-12-04 at be79e7a (24 examples, 24 updates per side, 3 min for all three cases):
full: all 24 rows' ids and labels identical, max |Δloss| 1.4e-6, weights max |Δ| 3.2e-7 (rel L2 2.3e-8);
full-cut256 (18 rows cut, 15 of them in the rationale): identical rows, 1.9e-6, 7.6e-8 (9.8e-9);
lora (r 8, alpha 16, dropout 0 on both sides by default): identical rows, 1.4e-6, adapter 2.3e-8 (1.5e-8).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASK = "synthetic_object_counting"
DATASET = "cotgap_parity"


@dataclass(frozen=True)
class Case:
    """One side-by-side training: LLaMA-Factory's ``finetuning_type`` and ``cutoff_len``, and the
    hyperparameters both sides get."""

    name: str
    method: str = "full"  # LLaMA-Factory finetuning_type; cotgap training.method
    cutoff_len: int = 8192
    n_examples: int = 24
    epochs: float = 2.0
    batch_size: int = 2  # per device; one process on each side
    learning_rate: float = 1e-4
    seed: int = 42


CASES = {
    "full": Case("full"),
    "full-cut256": Case("full-cut256", cutoff_len=256),
    "lora": Case("lora", method="lora"),
}


def llamafactory_venv() -> Path:
    return Path(os.environ.get("COTGAP_LLAMAFACTORY_VENV", REPO / ".venv-llamafactory"))


def llamafactory_cli() -> Path | None:
    """``llamafactory-cli`` of the LLaMA-Factory environment, or None when it is not built."""
    cli = llamafactory_venv() / "bin" / "llamafactory-cli"
    return cli if cli.exists() else None


def build_student(path: Path) -> Path:
    """The tiny student both sides train (float32 random init, ChatML template)."""
    from cotgap.testing import build_model

    return build_model(path, hidden=64, layers=2, seed=0)


def instruction() -> str:
    """The task's instruction (its lm-eval ``description``): the system turn of every example."""
    import yaml

    text = (REPO / "task_configs" / "synthetic" / f"{TASK}.yaml").read_text()
    text = "\n".join(line for line in text.splitlines() if "!function" not in line)  # lm-eval-only YAML tags
    return yaml.safe_load(text)["description"].strip()


def make_examples(n: int, seed: int = 0) -> list[dict]:
    """``n`` chat examples (cotgap's training-example shape: ``messages`` and ``source``); the
    rationale is short for even and long for odd examples, so lengths spread over ~55-630 tokens."""
    from cotgap.tasks import synthetic

    task = synthetic.get(TASK)
    system = instruction()
    out = []
    for i, ex in enumerate(task.generate(n, seed=seed)):
        rationale = task.rationale(ex, verbosity="long" if i % 2 else "short")
        out.append(
            {
                "source": "scripted",
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": f"Q: {ex['input']}\nA: Let's think step by step.\n"},
                    {"role": "assistant", "content": rationale},
                ],
            }
        )
    return out


def write_llamafactory_dataset(examples: list[dict], data_dir: Path) -> None:
    """The examples as a ShareGPT dataset with a ``system`` column (without one, the qwen template
    would insert its own default system prompt), and the ``dataset_info.json`` naming it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tags = {"user": "human", "assistant": "gpt"}
    rows = []
    for ex in examples:
        system = [m["content"] for m in ex["messages"] if m["role"] == "system"]
        turns = [{"from": tags[m["role"]], "value": m["content"]} for m in ex["messages"] if m["role"] != "system"]
        rows.append({"conversations": turns, "system": system[0] if system else ""})
    (data_dir / f"{DATASET}.json").write_text(json.dumps(rows, indent=1))
    info = {
        DATASET: {
            "file_name": f"{DATASET}.json",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
        }
    }
    (data_dir / "dataset_info.json").write_text(json.dumps(info, indent=1))


def llamafactory_config(case: Case, model: Path, data_dir: Path, out: Path) -> dict:
    """The ``llamafactory-cli train`` YAML for ``case`` (LoRA: LLaMA-Factory's default rank, alpha and
    dropout on all linear layers)."""
    cfg = {
        "model_name_or_path": str(model),
        "trust_remote_code": False,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": case.method,
        "dataset": DATASET,
        "dataset_dir": str(data_dir),
        "template": "qwen",
        "cutoff_len": case.cutoff_len,
        "tokenized_path": str(out / "tokenized"),
        "overwrite_cache": True,
        "preprocessing_num_workers": None,
        "output_dir": str(out / "model"),
        "overwrite_output_dir": True,
        "save_strategy": "no",
        "logging_steps": 1,
        "plot_loss": False,
        "report_to": "none",
        "per_device_train_batch_size": case.batch_size,
        "gradient_accumulation_steps": 1,
        "learning_rate": case.learning_rate,
        "num_train_epochs": case.epochs,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.0,
        "seed": case.seed,
        "bf16": False,
        "fp16": False,
        "dataloader_num_workers": 0,
    }
    if case.method == "lora":
        cfg["lora_target"] = "all"
    return cfg


def run_llamafactory(case: Case, model: Path, data_dir: Path, out: Path, *, timeout: float = 900) -> dict:
    """Train with ``llamafactory-cli train`` (CPU, one process); its tokenised rows, per-step losses,
    updates and the folder it saved the model (or adapter) in."""
    import yaml

    cli = llamafactory_cli()
    if cli is None:
        raise FileNotFoundError(f"no LLaMA-Factory environment at {llamafactory_venv()} (bash scripts/setup_llamafactory.sh)")
    out.mkdir(parents=True, exist_ok=True)
    config = out / "train.yaml"
    config.write_text(yaml.safe_dump(llamafactory_config(case, model, data_dir, out)))
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "DISABLE_VERSION_CHECK": "1",
        "WANDB_DISABLED": "true",
        "HF_HUB_OFFLINE": "1",
        "FORCE_TORCHRUN": "0",
        "USE_MODELSCOPE_HUB": "0",
    }
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    proc = subprocess.run([str(cli), "train", str(config)], env=env, cwd=out, capture_output=True, text=True, timeout=timeout)
    (out / "llamafactory.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"llamafactory-cli train failed ({proc.returncode}); tail:\n{(proc.stdout + proc.stderr)[-3000:]}")
    state = json.loads((out / "model" / "trainer_state.json").read_text())
    return {
        "rows": tokenized_rows(out / "tokenized"),
        "losses": step_losses(state["log_history"]),
        "updates": int(state["global_step"]),
        "weights": out / "model",
        "seconds": time.monotonic() - started,
    }


def tokenized_rows(path: Path) -> list[dict]:
    """LLaMA-Factory's saved train split (``tokenized_path``): input ids and labels, in dataset order."""
    from datasets import load_from_disk

    train = load_from_disk(str(path))["train"]
    return [{"input_ids": list(r["input_ids"]), "labels": list(r["labels"])} for r in train]


def step_losses(log_history: list[dict]) -> dict[int, float]:
    """``{step: training loss}`` from a Trainer's ``log_history`` (logging_steps 1)."""
    return {int(h["step"]): float(h["loss"]) for h in log_history if "loss" in h}


def cotgap_config(case: Case):
    """cotgap's ``TrainConfig`` with the case's hyperparameters; everything else its default."""
    from cotgap.backends.training import TrainConfig

    return TrainConfig(
        method=case.method,
        learning_rate=case.learning_rate,
        epochs=case.epochs,
        per_device_batch_size=case.batch_size,
        grad_accum=1,
        scheduler="cosine",
        warmup_ratio=0.0,
        max_length=case.cutoff_len,
        bf16=False,
        seed=case.seed,
    )


def cotgap_rows(model: Path, examples: list[dict], cfg) -> list[dict]:
    """The input ids and labels cotgap trains on: ``training.tokenize``, what ``train_sft`` feeds its
    Trainer, with the student's tokenizer as ``train_sft`` loads it."""
    from transformers import AutoTokenizer

    from cotgap.backends import training

    rows, _ = training.tokenize(AutoTokenizer.from_pretrained(model), examples, cfg)
    return [{"input_ids": list(r["input_ids"]), "labels": list(r["labels"])} for r in rows]


def run_cotgap(case: Case, model: Path, examples: list[dict], out: Path) -> dict:
    """Train with cotgap's ``train_sft`` in this process; the same fields as :func:`run_llamafactory`."""
    from cotgap.backends.training import train_sft

    cfg = cotgap_config(case)
    started = time.monotonic()
    result = train_sft(str(model), examples, out, cfg, progress=False, log=lambda *_: None)
    weights = Path(result.adapter_path) if case.method == "lora" else Path(result.path)
    return {
        "rows": cotgap_rows(model, examples, cfg),
        "losses": {int(h["step"]): float(h["loss"]) for h in result.loss_history},
        "updates": int(result.updates),
        "weights": weights,
        "seconds": time.monotonic() - started,
    }


def weight_difference(a: Path, b: Path) -> dict:
    """Max |Δ| and relative L2 distance (‖a-b‖ / ‖b‖) over the tensors both folders saved, and the
    names only one of them has (``lm_head.weight`` of a tied model may be saved by one side only)."""
    from safetensors.torch import load_file

    def tensors(folder: Path) -> dict:
        out = {}
        for f in sorted(folder.glob("*.safetensors")):
            out.update(load_file(f))
        return out

    ta, tb = tensors(a), tensors(b)
    common = sorted(set(ta) & set(tb))
    if not common:
        raise ValueError(f"no tensor names in common between {a} and {b}")
    max_abs, diff_sq, ref_sq = 0.0, 0.0, 0.0
    for k in common:
        x, y = ta[k].double(), tb[k].double()
        max_abs = max(max_abs, (x - y).abs().max().item())
        diff_sq += (x - y).pow(2).sum().item()
        ref_sq += y.pow(2).sum().item()
    return {
        "tensors": len(common),
        "only_one_side": sorted(set(ta) ^ set(tb)),
        "max_abs": max_abs,
        "rel_l2": math.sqrt(diff_sq) / max(math.sqrt(ref_sq), 1e-30),
    }


def compare(lf: dict, cg: dict) -> dict:
    """Tokens, labels, updates, per-step losses and weights of the two trainings."""
    pairs = list(zip(lf["rows"], cg["rows"]))
    steps = sorted(set(lf["losses"]) & set(cg["losses"]))
    deltas = [abs(lf["losses"][s] - cg["losses"][s]) for s in steps]
    return {
        "rows": {"llamafactory": len(lf["rows"]), "cotgap": len(cg["rows"])},
        "input_ids_identical": sum(a["input_ids"] == b["input_ids"] for a, b in pairs),
        "labels_identical": sum(a["labels"] == b["labels"] for a, b in pairs),
        "trained_tokens": {
            "llamafactory": sum(sum(t != -100 for t in r["labels"]) for r in lf["rows"]),
            "cotgap": sum(sum(t != -100 for t in r["labels"]) for r in cg["rows"]),
        },
        "updates": {"llamafactory": lf["updates"], "cotgap": cg["updates"]},
        "logged_steps": {"llamafactory": len(lf["losses"]), "cotgap": len(cg["losses"]), "common": len(steps)},
        "max_abs_delta_loss": max(deltas) if deltas else None,
        "first_step_loss": {"llamafactory": lf["losses"].get(1), "cotgap": cg["losses"].get(1)},
        "weights": weight_difference(cg["weights"], lf["weights"]),
        "seconds": {"llamafactory": round(lf["seconds"], 1), "cotgap": round(cg["seconds"], 1)},
    }


def identical(result: dict) -> bool:
    """The parity criterion: every row's tokens and labels equal, the same updates, every step's
    loss within 1e-5."""
    n = result["rows"]["llamafactory"]
    return (
        result["rows"]["cotgap"] == n
        and result["input_ids_identical"] == n
        and result["labels_identical"] == n
        and result["updates"]["llamafactory"] == result["updates"]["cotgap"]
        and result["logged_steps"]["common"] == result["updates"]["cotgap"]
        and result["max_abs_delta_loss"] is not None
        and result["max_abs_delta_loss"] < 1e-5
    )


def run_case(case: Case, work: Path) -> dict:
    """Both trainings of ``case`` in ``work``, compared."""
    model = build_student(work / "student")
    examples = make_examples(case.n_examples)
    write_llamafactory_dataset(examples, work / "data")
    lf = run_llamafactory(case, model, work / "data", work / "llamafactory")
    cg = run_cotgap(case, model, examples, work / "cotgap")
    result = {"case": asdict(case), **compare(lf, cg)}
    result["rows_cut_to_cutoff"] = sum(len(r["input_ids"]) == case.cutoff_len for r in lf["rows"])  # LLaMA-Factory's
    result["parity"] = identical(result)
    return result


def summary(name: str, r: dict) -> str:
    """One line for a case's result."""
    w, delta = r["weights"], r["max_abs_delta_loss"]
    return (
        f"{name:12s} parity={r['parity']} rows LF {r['rows']['llamafactory']} cotgap {r['rows']['cotgap']}, "
        f"ids identical {r['input_ids_identical']}, labels identical {r['labels_identical']}, "
        f"updates LF {r['updates']['llamafactory']} cotgap {r['updates']['cotgap']}, "
        f"max|Δloss| {float('nan') if delta is None else delta:.2e}, "
        f"weights max|Δ| {w['max_abs']:.2e} rel L2 {w['rel_l2']:.2e}"
    )


def versions() -> dict:
    """LLaMA-Factory's environment (its pip freeze, the lines that matter) and cotgap's."""
    import torch
    import transformers

    freeze = subprocess.run(
        [str(llamafactory_venv() / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True
    ).stdout.splitlines()
    keep = ("llamafactory", "torch", "transformers", "peft", "accelerate", "datasets", "trl")
    return {
        "llamafactory_env": [line for line in freeze if line.split("==")[0].lower() in keep],
        "cotgap_env": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--examples", type=int, default=24)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "llamafactory_parity.json")
    ap.add_argument("--work", type=Path, default=None, help="keep the trainings here (default: a temporary folder)")
    a = ap.parse_args(argv)
    if llamafactory_cli() is None:
        print(f"no LLaMA-Factory environment at {llamafactory_venv()}: run bash scripts/setup_llamafactory.sh", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.cases.split(","):
            case = Case(**{**asdict(CASES[name]), "n_examples": a.examples})
            r = run_case(case, (a.work or Path(tmp)) / name)
            results.append(r)
            print(summary(name, r), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            {
                "command": "python bench/llamafactory_parity.py " + " ".join(argv or sys.argv[1:]),
                "versions": versions(),
                "results": results,
            },
            indent=2,
            default=str,
        )
    )
    print(f"written {a.out}")
    return 0 if all(r["parity"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
