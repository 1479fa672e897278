"""Few-shot CoT accuracy of models on tasks (test split), for choosing the embedded default task.

Usage: python bench/measure_icl.py --task synthetic_navigate --model smollm2-135m-instruct ... [--limit N]
Writes CSV rows task,model,accuracy,seconds,mean_words to stdout (and --csv FILE).
"""

import argparse
import csv
import sys
import time

from cotgap.backends import runtime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", action="append", required=True)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--synthetic-n", type=int, default=100)
    ap.add_argument("--csv", default=None)
    a = ap.parse_args()
    runtime.configure()
    from cotgap.backends import evaluation, generation
    from cotgap.models.resolve import resolve

    rows = []
    for m in a.model:
        ref = resolve(m)
        for t in a.task:
            settings = evaluation.TaskSettings(name=t, limit=a.limit, synthetic_n=a.synthetic_n)
            task = evaluation.load_task(settings)
            lm = generation.open_lm(ref.path())
            t0 = time.time()
            summary, recs = evaluation.run(lm, task)
            words = sum(len(r["response"].split()) for r in recs) / max(1, len(recs))
            row = {
                "task": t,
                "model": m,
                "accuracy": round(100 * summary["accuracy"], 1),
                "seconds": round(time.time() - t0, 1),
                "mean_words": round(words, 1),
                "n": summary["n"],
            }
            rows.append(row)
            print(row, flush=True)
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    sys.exit(main())
