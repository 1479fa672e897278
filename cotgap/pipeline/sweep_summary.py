"""``<out>/sweep.json`` (schema ``cotgap.sweep/1``): the sweep's summary, kept by the driver only.

Executors hand the driver one record per cell (and, under the Ray executor, one per generation or
baseline job); :class:`SweepSummary` keeps them and rewrites the file after each, so a killed sweep
leaves a summary of what finished. Cells are listed in run order (references first) whatever order
they finished in (jobs in the plan's order), so two executors give comparable files. Totals count cells and jobs together:
``generations.computed`` is what was generated (once per distinct teacher × task × sampling), and
``reused`` how many times a cell or job found its generation in the shared cache. ``engines``
counts the engines started, per model (a job or cell records what its process started and used
while it ran; an engine session's start is in its first job's record) and in total, with the
seconds spent starting them and the seconds spent generating on them.
"""

from __future__ import annotations

import time

from cotgap.jsonio import write_json
from cotgap.pipeline.grid import Cell, Grid
from cotgap.report.sweep_file import SCHEMA

STATUSES = ("done", "skipped", "failed")
#: The kinds of job the Ray executor runs before the cells.
JOB_KINDS = ("generation", "baseline")


class SweepSummary:
    def __init__(self, grid: Grid, executor: str, order: list[Cell]):
        self.grid = grid
        self.order = [c.name for c in order]
        self.t0 = time.time()
        self.cells: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        self.job_order: list[str] = []
        self.data = {
            "schema": SCHEMA,
            "name": grid.name,
            "config": grid.source,
            "dir": str(grid.out),
            "generation_cache": str(grid.cache),
            "executor": executor,
            "grid": grid.grid,
            "cells": [],
            "jobs": [],
            "generations": {"computed": 0, "reused": 0},
            "baselines": {"computed": 0, "reused": 0},
            "engines": engine_totals([]),
            "counts": {},
        }

    def add_cell(self, rec: dict) -> None:
        self.cells[rec["name"]] = rec
        self.save()

    def expect_jobs(self, ids: list[str]) -> None:
        """The jobs the executor will run, in the order they are listed (the plan's)."""
        self.job_order = list(ids)

    def add_job(self, rec: dict) -> None:
        self.jobs[rec["id"]] = rec
        if rec["id"] not in self.job_order:
            self.job_order.append(rec["id"])
        self.save()

    def save(self) -> dict:
        """Recompute the totals and rewrite ``sweep.json``; returns the summary."""
        cells = [self.cells[n] for n in self.order if n in self.cells]
        jobs = [self.jobs[i] for i in self.job_order if i in self.jobs]
        both = cells + jobs
        d = self.data
        d["cells"], d["jobs"] = cells, jobs
        d["generations"] = {k: sum((r.get("generations") or {}).get(k, 0) for r in both) for k in ("computed", "reused")}
        d["baselines"] = {k: sum(r.get("baseline") == k for r in both) for k in ("computed", "reused")}
        d["engines"] = engine_totals(both)
        d["counts"] = {s: sum(c["status"] == s for c in cells) for s in STATUSES}
        d["seconds"] = round(time.time() - self.t0, 1)
        d["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json(self.grid.out / "sweep.json", d)
        return d


def engine_totals(records: list[dict]) -> dict:
    """The records' engine use summed: starts, seconds starting and seconds generating, in total
    and per model (``models``: label → starts / start_s / generate_s, in first-seen order)."""
    models: dict[str, dict] = {}
    for r in records:
        for label, u in (r.get("engines") or {}).items():
            m = models.setdefault(label, {"starts": 0, "start_s": 0.0, "generate_s": 0.0})
            for k in m:
                m[k] += u.get(k, 0)
    totals = {
        "starts": sum(m["starts"] for m in models.values()),
        "start_seconds": round(sum(m["start_s"] for m in models.values()), 3),
        "generate_seconds": round(sum(m["generate_s"] for m in models.values()), 3),
    }
    # rounded after summing (a tiny model starts in hundredths of a second: summed rounded values were 0)
    models = {k: {**m, "start_s": round(m["start_s"], 3), "generate_s": round(m["generate_s"], 3)} for k, m in models.items()}
    return {**totals, "models": models}
