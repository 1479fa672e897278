"""strict vs robust accuracy of zoo models on BBH and synthetic tasks, with wall times.

Usage: python bench/scoring_table.py --model smollm2-135m-instruct --model qwen2.5-coder-1.5b-instruct \
           --task word_sorting --task synthetic_navigate --data-dir ../shared/data/bbh --limit 10 --csv out.csv

One lm-eval run per (model, task) on the test split; both filters score the same generations.
Loads each model once (vLLM if available) and prints/writes rows:
model,task,n,strict,robust,seconds.
"""

import argparse
import csv
import sys
import time

from cotgap.backends import runtime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--task", action="append", required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--csv", default=None)
    a = ap.parse_args()
    runtime.configure()
    from cotgap.backends import evaluation, generation
    from cotgap.models.resolve import resolve

    rows = []
    for m in a.model:
        path = resolve(m).path()
        for t in a.task:
            settings = evaluation.TaskSettings(name=t, limit=a.limit, data_dir=a.data_dir)
            task = evaluation.load_task(settings)
            lm = generation.open_lm(path)
            t0 = time.time()
            summary, _ = evaluation.run(lm, task)
            acc = summary["accuracy_by_scoring"]
            row = {
                "model": m,
                "task": t,
                "n": summary["n"],
                "strict": round(100 * acc.get("strict", float("nan")), 1),
                "robust": round(100 * acc.get("robust", float("nan")), 1),
                "seconds": round(time.time() - t0, 1),
            }
            rows.append(row)
            print("ROW", row, flush=True)
        generation.close()
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
