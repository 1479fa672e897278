"""A sweep's shared work as jobs of their own: one per teacher generation (teacher × task ×
sampling setting) and one per student baseline (student × task), run before the cells that need
them, under either executor (:mod:`cotgap.pipeline.sweep`, :mod:`cotgap.pipeline.ray_executor`).

Jobs run in *engine sessions* (:mod:`cotgap.pipeline.plan_engines`): the jobs of one model (same
backend and engine settings) run one after the other in one process, and the engine the first
opens is kept for the next (:func:`run_job` with ``close=False``) and closed after the last, so a
teacher is loaded once for all its tasks, a student once for all its baselines. A kept engine's
prefix cache is emptied before each job, so a job computes what it would have on an engine of its
own.

The jobs are the dry run's (:mod:`cotgap.pipeline.plan`): the same identities, the same per-model
``resources``. A job fills the shared generation cache exactly as a cell would, through the same
code: it takes the configuration of one cell that needs it (the *representative*), prepares a
:class:`~cotgap.pipeline.runner.Runner` for it in a scratch run directory of its own
(``<out>/.jobs/<kind>-<id>/``, so it never locks a cell's folder), and calls only what fills the
cache — ``ctx.generate_rationales`` with the planned teacher and sampling settings, or the
runner's baseline stage. The cache keys are computed where they always are, so a cell that runs
later finds the entry (reused) and a sweep resumed under another executor recomputes nothing.

Jobs the plan marks ``exact: false`` (a strategy with a ``generate`` of its own that the plan can
only approximate) are not run: their cells generate what they need themselves.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

from cotgap.errors import ProtocolError
from cotgap.pipeline.grid import Cell, Grid
from cotgap.pipeline.sweep_cell import baseline_stat, recorded

#: Where jobs keep their scratch run directories, inside the sweep folder (hidden: reports skip it).
JOBS_DIR = ".jobs"


@dataclass
class Job:
    id: str
    kind: str  # "generation" | "baseline" (sweep_summary.JOB_KINDS)
    cell: Cell  # the representative: its configuration is the job's
    model: str  # the teacher (generation) or the student (baseline), as the grid writes it
    task: str
    resources: dict
    cells: list[str]  # every cell that needs the job
    sampling: dict = field(default_factory=dict)  # generate_rationales' samples / temperature / description
    session: str = ""  # the engine session (plan_engines): jobs of one model and engine settings

    def record(self) -> dict:
        """The job's record before it runs (``sweep.json`` → ``jobs``)."""
        role = "teacher" if self.kind == "generation" else "student"
        return {
            "id": self.id,
            "kind": self.kind,
            role: self.model,
            "task": self.task,
            **({"sampling": dict(self.sampling)} if self.kind == "generation" else {}),
            "resources": dict(self.resources),
            "cells": list(self.cells),
            "representative": self.cell.name,
            "session": self.session,
            "status": "failed",
            "reason": None,
            "generations": {"computed": 0, "reused": 0},
            "baseline": None,
            "engines": {},
        }


def _representative(entry: dict, status: dict[str, str], cells: dict[str, Cell]) -> Cell:
    """The first cell needing the job that the plan says will run (else the first needing it)."""
    names = [n for n in entry["cells"] if status[n] == "run"] or entry["cells"]
    return cells[names[0]]


def from_plan(grid: Grid, plan: dict) -> tuple[list[Job], dict[str, list[str]]]:
    """The jobs to run (skipped cells need none; inexact generation jobs are left to their cells)
    and, per cell name, the ids of the jobs it must wait for."""
    cells = {c.name: c for c in grid.cells}
    status = {c["name"]: c["status"] for c in plan["cells"]}
    jobs = [
        Job(
            e["id"],
            "generation",
            _representative(e, status, cells),
            e["teacher"],
            e["task"],
            e["resources"],
            list(e["cells"]),
            dict(e["sampling"]),
            e["session"],
        )
        for e in plan["generation_jobs"]
        if e.get("exact", True)
    ]
    jobs += [
        Job(
            e["id"],
            "baseline",
            _representative(e, status, cells),
            e["student"],
            e["task"],
            e["resources"],
            list(e["cells"]),
            session=e["session"],
        )
        for e in plan["baselines"]
    ]
    ids = {j.id for j in jobs}
    needs = {c["name"]: [i for i in [*c["generation_jobs"], c["baseline"]] if i in ids] for c in plan["cells"]}
    return jobs, needs


def sessions(jobs: list[Job]) -> list[list[Job]]:
    """The jobs grouped by engine session, sessions in the order their first job comes, each
    session's jobs in their own order."""
    groups: dict[str, list[Job]] = {}
    for j in jobs:
        groups.setdefault(j.session or j.id, []).append(j)
    return list(groups.values())


def run_job(job: Job, out: Path, cache: Path, console, log, *, close: bool = True) -> dict:
    """Fill the shared cache with the job's generation or baseline; returns the job's record. A
    failure is recorded, not raised (the cells that need the job then compute it themselves); a
    job whose model the size rule refuses is ``skipped``, as its cells will be. ``close=False``
    keeps the engine open for the session's next job (a failed job closes it all the same: an
    engine that failed is not trusted with the next)."""
    from cotgap.backends import generation
    from cotgap.pipeline.runner import Runner

    rec, t0, runner = job.record(), time.time(), None
    scratch = out / JOBS_DIR / f"{job.kind}-{job.id}"
    generation.fresh_state()
    try:
        with recorded(rec, scratch, log, what=f"{job.kind} job"):
            try:
                cfg = copy.deepcopy(job.cell.config)
                cfg.out = str(scratch)
                # force: the scratch folder is the job's vehicle only; a changed config starts it afresh
                runner = Runner(cfg, console, log, generation_cache=cache, force=True).prepare()
            except ProtocolError as exc:
                rec.update(status="skipped", reason=f"protocol: {exc}")
                return rec
            try:
                if job.kind == "baseline":
                    runner.baseline_stage()
                else:
                    runner.ctx.generate_rationales(job.model, **job.sampling)
            finally:
                runner.run.unlock()
            rec["status"] = "done"
    finally:
        if runner is not None:
            rec["generations"] = dict(runner.book.generation_stats)
            rec["baseline"] = baseline_stat(runner)
        if close or rec["status"] == "failed":
            generation.close()
        rec["engines"] = generation.take_usage()
        rec["seconds"] = round(time.time() - t0, 1)
    return rec


def job_task(job: Job, out: Path, cache: Path, threads: int | None, close: bool = True) -> dict:
    """A job as a task of its own (e.g. on a Ray worker, or a session's worker that runs the
    session's jobs in turn: ``close=False`` but for the last): this process's threads, its own
    console."""
    from rich.console import Console
    from rich.markup import escape

    from cotgap.backends import runtime

    runtime.configure(threads)
    console = Console()
    what = f"{job.model} on {job.task}" + (f" {job.sampling}" if job.kind == "generation" else "")
    console.rule(f"[bold]{job.kind} job[/] {escape(what)}")
    return run_job(job, out, cache, console, console.print, close=close)
