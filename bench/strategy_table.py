"""Markdown table of finished runs' reports (one row per source): the numbers docs/strategies.md quotes.

    python bench/strategy_table.py runs/plain-... runs/mix-... [--times TIMES.json]

``--times`` maps a run directory to {"cold": seconds, "rerun": seconds} measured outside the run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(run: Path, times: dict) -> list[str]:
    r = json.loads((run / "report.json").read_text())
    d = r["difference"]
    t = times.get(str(run), {})
    stage = ", ".join(f"{k} {v:.0f}" for k, v in r.get("stage_seconds", {}).items() if v >= 1)
    head = (
        f"| `{r['strategy']['name']}` | {r['baseline']['accuracy']:.1f} | "
        f"{r['distilled']['accuracy']:.1f} | {d['diff']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}] | {r['verdict']} | "
        f"{r['training']['examples']} / {r['training']['updates']} | "
    )
    out = []
    for s in r["sources"]:
        kept = s.get("rationale_length_kept") or {}
        src = (
            f"{s['source']}: {s.get('correct', '?')}/{s.get('generated', '?')} correct, "
            f"{s.get('trained', s.get('kept'))} trained, {kept.get('mean_tokens', 0):.0f} tok"
        )
        out.append(src)
    cold = f"{t['cold']:.0f} s" if "cold" in t else "—"
    rerun = f"{t['rerun']:.1f} s" if "rerun" in t else "—"
    return [head + "<br>".join(out) + f" | {cold} / {rerun} | {stage} |"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--times", type=Path)
    a = ap.parse_args()
    times = json.loads(a.times.read_text()) if a.times else {}
    print(
        "| strategy | baseline | distilled | diff [95% CI] | verdict | examples / updates "
        "| sources (correct, trained, mean kept rationale tokens) | cold / re-run | stages (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for run in a.runs:
        for line in rows(run, times):
            print(line)


if __name__ == "__main__":
    main()
