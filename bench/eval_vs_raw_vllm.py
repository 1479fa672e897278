"""cotgap's evaluation path against raw ``vllm.LLM.generate``, each as a whole process.

Usage: python bench/eval_vs_raw_vllm.py --model smollm2-135m-instruct [--task T] [--synthetic-n N] [--repeats 3]

1. ``prompts`` mode (not timed): cotgap renders the task's test prompts (few-shot chat turns) and
   its sampling settings (max tokens, stops, greedy) into a JSON file, as lm-eval would send them.
2. ``cotgap`` mode: a process runs ``evaluation.run`` (lm-eval ``simple_evaluate`` with cotgap's
   vLLM model: prompts, generation, the task's filters, scoring) — imports and engine load included.
3. ``raw`` mode: a process builds ``vllm.LLM`` with the same engine arguments and calls
   ``generate`` on the same prompt strings with the same ``SamplingParams`` — nothing else.

The two alternate ``--repeats`` times; the script prints each wall time, the median ratio
cotgap / raw (goal <= 1.03) and whether the texts are identical. The goal is a statement about
overhead: what cotgap adds around the engine (lm-eval's task building, filters, records).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def task_settings(a):
    from cotgap.backends import evaluation

    return evaluation.TaskSettings(name=a.task, synthetic_n=a.synthetic_n, limit=a.limit)


def engine_args(path: str) -> dict:
    """The same engine arguments for both processes: cotgap's defaults for this machine."""
    from cotgap.backends import engines

    return engines.machine_defaults()


def mode_prompts(a, path: str, out: Path) -> None:
    """The exact prompts and sampling settings cotgap's evaluation sends to the engine."""
    from lm_eval.api.model import LM

    from cotgap.backends import evaluation

    captured = []

    class CaptureLM(LM):
        def __init__(self, tokenizer):
            super().__init__()
            self.tokenizer = tokenizer

        def chat_template(self, chat_template=False):
            return self.tokenizer.chat_template

        def apply_chat_template(self, chat_history, add_generation_prompt=True):
            return self.tokenizer.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt)

        @property
        def tokenizer_name(self):
            return path.replace("/", "__")

        def generate_until(self, requests, disable_tqdm=False):
            for r in requests:
                context, kw = r.args
                captured.append(
                    {"prompt": context, "max_tokens": int(kw.get("max_gen_toks", 256)), "stop": list(kw.get("until") or [])}
                )
            return [""] * len(requests)

        def loglikelihood(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

    from transformers import AutoTokenizer

    evaluation.run(CaptureLM(AutoTokenizer.from_pretrained(path)), evaluation.load_task(task_settings(a)))
    out.write_text(json.dumps(captured))


def mode_cotgap(a, path: str, out: Path) -> None:
    from cotgap.backends import evaluation, generation

    lm = generation.open_lm(path, backend="vllm", seed=1234, engine_args=engine_args(path))
    lm.show_progress = False
    _, records = evaluation.run(lm, evaluation.load_task(task_settings(a)))
    out.write_text(json.dumps([r["response"] for r in records]))


def mode_raw(a, path: str, out: Path, prompts: Path) -> None:
    from vllm import LLM, SamplingParams

    reqs = json.loads(prompts.read_text())
    llm = LLM(model=path, seed=1234, **engine_args(path))
    params = [SamplingParams(max_tokens=r["max_tokens"], stop=r["stop"], temperature=0.0) for r in reqs]
    outputs = llm.generate([r["prompt"] for r in reqs], params, use_tqdm=False)
    out.write_text(json.dumps([o.outputs[0].text for o in outputs]))


def run_mode(mode: str, a, tmp: Path, i: int) -> tuple[float, list[str]]:
    out = tmp / f"{mode}-{i}.json"
    cmd = [
        sys.executable,
        __file__,
        "--model",
        a.model,
        "--task",
        a.task,
        "--synthetic-n",
        str(a.synthetic_n),
        "--mode",
        mode,
        "--out",
        str(out),
        "--prompts",
        str(tmp / "prompts.json"),
    ]
    if a.limit:
        cmd += ["--limit", str(a.limit)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--task", default="synthetic_object_counting")
    ap.add_argument("--synthetic-n", type=int, default=50)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mode", choices=["prompts", "cotgap", "raw"], default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--prompts", default=None)
    a = ap.parse_args()
    from cotgap.backends import runtime

    runtime.configure()
    from cotgap.models.resolve import resolve

    path = resolve(a.model).path()
    if a.mode == "prompts":
        mode_prompts(a, path, Path(a.out))
        return 0
    if a.mode == "cotgap":
        mode_cotgap(a, path, Path(a.out))
        return 0
    if a.mode == "raw":
        mode_raw(a, path, Path(a.out), Path(a.prompts))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="cotgap-bench-"))
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--model",
            a.model,
            "--task",
            a.task,
            "--synthetic-n",
            str(a.synthetic_n),
            "--mode",
            "prompts",
            "--out",
            str(tmp / "prompts.json"),
        ]
        + (["--limit", str(a.limit)] if a.limit else []),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    n = len(json.loads((tmp / "prompts.json").read_text()))
    times = {"cotgap": [], "raw": []}
    texts = {}
    for i in range(a.repeats):
        for mode in ("raw", "cotgap") if i % 2 else ("cotgap", "raw"):
            seconds, texts[mode] = run_mode(mode, a, tmp, i)
            times[mode].append(seconds)
            print(f"{mode:7s} run {i + 1}: {seconds:7.1f} s", flush=True)
    ratio = statistics.median(times["cotgap"]) / statistics.median(times["raw"])
    same = sum(x == y for x, y in zip(texts["cotgap"], texts["raw"]))
    print(
        json.dumps(
            {
                "model": a.model,
                "task": a.task,
                "prompts": n,
                "cotgap_s": times["cotgap"],
                "raw_s": times["raw"],
                "ratio_median": round(ratio, 3),
                "identical_texts": f"{same}/{n}",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
