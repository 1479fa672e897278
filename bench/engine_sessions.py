"""Engine sessions, before / after (issue 26): one small real grid swept twice with vLLM on CPU.

The grid: 3 synthetic tasks × 1 zoo teacher (smollm2-135m-instruct, real weights) × 2 students
(tiny random Llama models built here, hidden 128 and 256: vLLM's CPU attention needs head_dim >=
32), plain CoT distillation, 1 epoch — small enough for a shared 2-core machine, large enough that
every model is needed on several tasks.

- *before*: cotgap as it was before engine sessions (``--before-tree``, a ``git worktree`` of that
  commit, put first on ``PYTHONPATH``): every generation, baseline and distilled evaluation on an
  engine of its own;
- *after*: a model's jobs in one engine session (``--after-tree``: the same commit with the
  engine-session change applied, so nothing else differs; default: this tree).

Engine starts are counted the same way in both: vLLM's own log line for each engine it starts
("Initializing a V1 LLM engine ... model=<path>", logged at INFO, which the sweep is run with),
per model; the after-sweep's ``sweep.json`` counts (starts, seconds starting vs generating) are
reported beside them. Results are compared cell by cell: statuses, verdicts, the baseline and
distilled answers (``samples.jsonl``) and the teacher's generation cache files, byte for byte.

    .venv/bin/python bench/engine_sessions.py --work /work/exp26/bench --before-tree /work/exp26/before

LoRA students as adapters (issue 26.2): the same tree twice, *before* with adapter sessions turned
off (every LoRA student merged, on an engine of its own), *after* with them (one engine per student
base model, adapters per request):

    .venv/bin/python bench/engine_sessions.py --work /work/exp26/adapters --before-tree . \
        --before-env COTGAP_ADAPTER_SESSIONS=0
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("synthetic_navigate", "synthetic_object_counting", "synthetic_boolean_expressions")
TEACHER = "smollm2-135m-instruct"
ENGINE_LINE = re.compile(r"Initializing a V1 LLM engine .*? with config: model='([^']+)'")


def build_students(folder: Path) -> list[Path]:
    """The two tiny students (built once, reused by both sweeps)."""
    from cotgap.testing import build_model

    out = []
    for name, hidden, seed in (("student-a", 128, 0), ("student-b", 256, 1)):
        path = folder / name
        if not (path / "config.json").is_file():
            build_model(path, hidden=hidden, layers=2, seed=seed, init_std=0.2)
        out.append(path)
    return out


def write_grid(folder: Path, students: list[Path], limit: int) -> Path:
    grid = folder / "grid.yaml"
    grid.write_text(f"""name: engine-sessions
tasks: [{", ".join(TASKS)}]
students: [{", ".join(f'"{s}"' for s in students)}]
teachers: [{TEACHER}]
strategies: [plain]
limit: {limit}
synthetic_n: 20
bootstrap_iters: 200
training: {{epochs: 1}}
generation:
  backend: vllm
  max_new_tokens: 320
  engines: {{default: {{max_model_len: 2048}}}}
""")
    return grid


def sweep(which: str, grid: Path, work: Path, tree: Path, extra_env: dict | None = None) -> dict:
    """Run ``cotgap sweep`` of the source ``tree`` into ``work/<which>``; its wall time and the
    engines vLLM logged starting, per model path."""
    out, log = work / which, work / f"{which}.log"
    env = {
        **os.environ,
        "VLLM_LOGGING_LEVEL": "INFO",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "COTGAP_GENERATION_CACHE": str(out / "_generations"),
        **(extra_env or {}),
    }
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "plugins"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "cotgap.cli", "sweep", "--config", str(grid), "--out", str(out), "--no-report"]
    t0 = time.time()
    with log.open("w") as fh:
        rc = subprocess.run(cmd, cwd=tree, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    wall = time.time() - t0
    starts: dict[str, int] = {}
    # library output goes to the sweep's logs/engines.log (cotgap.output), the rest to the terminal
    text = "".join(p.read_text(errors="replace") for p in [log, *sorted(out.rglob("engines.log"))])
    for m in ENGINE_LINE.finditer(text):
        starts[m.group(1)] = starts.get(m.group(1), 0) + 1
    return {
        "rc": rc,
        "wall_s": round(wall, 1),
        "engine_starts": sum(starts.values()),
        "starts_per_model": starts,
        "summary": json.loads((out / "sweep.json").read_text()),
    }


def _bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def compare(work: Path) -> dict:
    """Cell by cell: status, verdict, baseline and distilled answers; the generation cache files."""
    before, after = (json.loads((work / w / "sweep.json").read_text()) for w in ("before", "after"))
    cells = {}
    for b, a in zip(before["cells"], after["cells"]):
        assert b["name"] == a["name"], (b["name"], a["name"])
        same = {k: b.get(k) == a.get(k) for k in ("status", "verdict", "updates")}
        for stage in ("baseline", "distilled"):
            # both absent (a cell that stopped before the stage) counts as the same
            same[f"{stage} samples"] = _bytes(Path(b["dir"]) / stage / "samples.jsonl") == _bytes(
                Path(a["dir"]) / stage / "samples.jsonl"
            )
        cells[a["name"]] = {"status": a["status"], "verdict": a.get("verdict"), "same": same}
    files = {
        w: {p.name: p.read_bytes() for p in (work / w / "_generations" / "generations").glob("*.jsonl")}
        for w in ("before", "after")
    }
    return {
        "cells": cells,
        "all_cells_identical": all(all(c["same"].values()) for c in cells.values()),
        "generation_files": sorted(files["after"]),
        "generations_identical": files["before"] == files["after"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--before-tree", type=Path, required=True, help="a git worktree of the commit before sessions")
    ap.add_argument("--after-tree", type=Path, default=ROOT, help="the same commit with engine sessions")
    ap.add_argument("--which", choices=("before", "after", "both"), default="both")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--before-env", action="append", default=[], metavar="NAME=VALUE", help="set in the before sweep only")
    args = ap.parse_args()
    before_env = dict(kv.split("=", 1) for kv in args.before_env)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    grid = write_grid(work, build_students(work / "models"), args.limit)
    results = json.loads((work / "results.json").read_text()) if (work / "results.json").is_file() else {}
    for which in ("before", "after") if args.which == "both" else (args.which,):
        tree = (args.before_tree if which == "before" else args.after_tree).resolve()
        r = sweep(which, grid, work, tree, before_env if which == "before" else None)
        s = r.pop("summary")
        r.update(
            counts=s["counts"],
            generations=s["generations"],
            baselines=s["baselines"],
            sweep_json_engines=s.get("engines"),
            adapter_sessions=s.get("adapter_sessions"),
        )
        results[which] = r
        (work / "results.json").write_text(json.dumps(results, indent=1))
        print(which, json.dumps({k: v for k, v in r.items() if k not in ("sweep_json_engines", "adapter_sessions")}), flush=True)
    if {"before", "after"} <= set(results):
        results["comparison"] = compare(work)
        (work / "results.json").write_text(json.dumps(results, indent=1))
        print(json.dumps(results["comparison"], indent=1))


if __name__ == "__main__":
    main()
