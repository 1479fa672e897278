"""Each default run's mechanism in numbers and its exact-test verdict (docs/strategies.md,
"Each strategy's default run: mechanism and verdict").

    python bench/mechanism_table.py RUN_DIR [RUN_DIR...] [--time-logs LOG...]

Per run: baseline -> distilled, McNemar's wins/losses, p and verdict, and the strategy's mechanism:
mind's weight spread per source x perspective (first update and final) and its probe's cost;
micota's short parent / TA / long parent lengths and ``ta_intermediate``; mix's achieved ratio in
examples and in tokens (the trained rationales of ``strategy/mix/mixed.jsonl`` in the student's
tokenizer). ``--time-logs``: ``/usr/bin/time -v`` outputs, one per run in the same order, for the
wall time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def verdict(r: dict) -> str:
    d = r["difference"]
    p = d.get("p_value")
    return (
        f"{r['baseline']['accuracy']:.1f} → {r['distilled']['accuracy']:.1f} "
        f"({d.get('wins', '?')} wins / {d.get('losses', '?')} losses, McNemar p = "
        f"{'—' if p is None else f'{p:.3g}'}): **{r['verdict']}**"
    )


def mind(run: Path, r: dict) -> str:
    t = r["strategy_records"]["mind.training"]

    def spread(summary):
        per = "; ".join(
            f"{k}: mean {v['mean']:.3f} [{v['min']:.3f}, {v['max']:.3f}]" for k, v in summary["by_source_perspective"].items()
        )
        return f"spread {summary['spread']:.3f}, {summary['differ_from_1']} ≠ 1 — {per}"

    probe = t.get("probe") or {}
    return (
        f"first update: {spread(t['weights_first_update'])}<br>final: {spread(t['weights_final'])}<br>"
        f"probe: {probe.get('examples')} rationales, {probe.get('tokens')} tokens, {probe.get('seconds')} s"
    )


def micota(run: Path, r: dict) -> str:
    v = r["strategy_records"]["micota.ta_intermediate"]
    return (
        f"mean tokens short parent / TA / long parent: {v['short_parent']} / {v['ta']} / {v['long_parent']} — "
        f"intermediate: **{v['intermediate']}**"
    )


def mix(run: Path, r: dict) -> str:
    from transformers import AutoTokenizer

    from cotgap.models import resolve

    rec = r["strategy_records"]
    strong = rec["mix.params"]["strong"]
    rows = [json.loads(line) for line in (run / "strategy" / "mix" / "mixed.jsonl").read_text().splitlines() if line]
    tok = AutoTokenizer.from_pretrained(resolve.resolve(r["student"]).path())
    n = {True: 0, False: 0}
    for row in rows:
        n[str(row.get("model")) == strong or str(row.get("source", "")).startswith(strong)] += len(
            tok(row["response"].strip(), add_special_tokens=False)["input_ids"]
        )
    share = n[True] / max(1, n[True] + n[False])
    return (
        f"target {rec['mix.ratio']['target']}, achieved in examples {rec['mix.ratio']['achieved']} "
        f"({rec['mix.examples_per_source']}), in tokens {share:.3f} ({n[True]} strong / {n[False]} easy)"
    )


def times(log: Path) -> str:
    text = log.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return f"{wall.group(1) if wall else '?'} wall, peak {int(rss.group(1)) / 1024**2:.1f} GB" if rss else "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--time-logs", nargs="*", type=Path, default=[])
    a = ap.parse_args()
    print("| strategy | mechanism | verdict | wall, peak memory |")
    print("|---|---|---|---|")
    for k, run in enumerate(a.runs):
        r = json.loads((run / "report.json").read_text())
        name = r["strategy"]["name"]
        how = {"mind": mind, "micota": micota, "mix": mix}.get(name)
        t = times(a.time_logs[k]) if k < len(a.time_logs) else "—"
        print(f"| `{name}` | {how(run, r) if how else '—'} | {verdict(r)} | {t} |")


if __name__ == "__main__":
    main()
