"""Sweeps: run every cell of a grid (:mod:`cotgap.pipeline.grid`), one run directory per cell.

Every cell is an ordinary run (:class:`cotgap.pipeline.runner.Runner`) in ``<out>/<cell>/``, so
re-running a sweep resumes it: finished stages of finished cells are skipped. All cells share
one teacher-generation cache, keyed by (teacher, task, split, prompt, sampling settings): a
teacher's rationales for a task are computed once and reused by every student, strategy and
ablation that needs them, so generation cost grows with teachers × tasks only. The sweep counts
generations *computed* vs *reused* (a cell whose ``generate`` stage was already finished reuses
everything it needs).

Cells whose student is not strictly smaller than a teacher are *skipped* (protocol rule); a
cell that fails is recorded (message in ``sweep.json``, traceback in ``<cell>/error.log`` for
internal errors) and the sweep goes on. ``<out>/sweep.json`` (schema ``cotgap.sweep/1``,
:mod:`cotgap.pipeline.sweep_summary`) is rewritten by this process after every cell.

Executors: both first run the teacher generations and student baselines as jobs
(:mod:`cotgap.pipeline.sweep_jobs`), in engine sessions — a model's jobs one after the other on
one engine, so each teacher and each student is loaded once, not once per task — and then the
cells, which find their generations and baselines in the cache. ``local`` (the default) runs the
sessions and then the cells here, one after the other (:mod:`cotgap.pipeline.sweep_cell`); ``ray``
runs each session on a Ray actor of its own and each cell as a Ray task
(:mod:`cotgap.pipeline.ray_executor`). Both use the same run folders and the same shared cache, so
a sweep started under one resumes under the other. ``sweep.json`` counts the engines started per
model and the seconds spent starting them vs generating (the dry run predicts the starts). The
local executor evaluates the LoRA students of one base model on one engine of the base, adapters
per request, once all their cells have trained (:mod:`cotgap.pipeline.sweep_adapters`).

Equal updates: reference cells (plain, no ablation) run first (under Ray: each finishes before
the cells that depend on it start); every cell with a reference (see :mod:`cotgap.pipeline.grid`)
is then trained with ``training.max_steps`` = the updates its reference made, so strategies are
compared at equal optimizer updates whatever their data sizes. A cell whose reference did not
train runs at its own epochs and its record says so; a strategy that opts out of the budget
(``Strategy.unequal_updates``) is flagged ``unequal_updates``.
"""

from __future__ import annotations

from pathlib import Path

from cotgap.errors import UserError
from cotgap.pipeline import budgets, sweep_adapters, sweep_jobs
from cotgap.pipeline.grid import Cell, Grid, short_spec
from cotgap.pipeline.sweep_cell import DEFERRED, new_record, precheck, run_cell  # noqa: F401 (precheck: this module's API)
from cotgap.pipeline.sweep_summary import JOB_KINDS, STATUSES, SweepSummary
from cotgap.rundir import RunDir

#: Where a sweep's cells run: this process, one after the other; or a Ray cluster.
EXECUTORS = ("local", "ray")


def run_order(cells: list[Cell]) -> list[Cell]:
    """Reference cells first (their updates set the others' budget), otherwise grid order."""
    return sorted(cells, key=lambda c: c.reference is not None)


def run_sweep(grid: Grid, console, *, log=None, force: bool = False, executor: str = "local", ray: dict | None = None) -> dict:
    """Run every cell (resuming finished work) while holding the sweep directory's lock (a second
    sweep on it is refused); returns (and writes) the sweep summary. ``ray``: the Ray executor's
    options (``address``, ``threads``, ``init``: ``ray.init`` options for a local instance)."""
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r} (known: {', '.join(EXECUTORS)})")
    log = log or console.print
    guard = RunDir(grid.out)
    guard.lock()
    try:
        order = run_order(grid.cells)
        summary = SweepSummary(grid, executor, order)
        if executor == "ray":
            from cotgap.pipeline import ray_executor

            ray_executor.run(grid, summary, order, log, force=force, **(ray or {}))
        else:
            _run_local(grid, summary, order, console, log, force=force)
        return summary.save()
    finally:
        guard.unlock()


def _run_local(grid: Grid, summary: SweepSummary, order: list[Cell], console, log, *, force: bool) -> None:
    """The jobs in engine sessions, then every cell, in this process, in run order; the summary is
    rewritten after each job and each cell."""
    from cotgap.backends import generation
    from cotgap.pipeline import plan as plan_mod

    generation.close()
    generation.take_usage()  # what this process used before the sweep is not the sweep's
    plan = plan_mod.build_plan(grid)
    jobs, _ = sweep_jobs.from_plan(grid, plan)
    summary.expect_jobs([j.id for j in jobs])
    run_sessions(grid, summary, jobs, console, log)
    deferred = sweep_adapters.deferrable(grid, plan, log)  # LoRA students: evaluated on adapter sessions
    pending: list = []
    try:
        for i, cell in enumerate(order, 1):
            console.rule(f"[bold]sweep {grid.name}[/] · cell {i}/{len(order)} · {cell.name}")
            rec = new_record(cell, grid.out)
            try:
                run_cell(cell, rec, grid.out, grid.cache, console, log, force=force, defer=cell.name in deferred)
            finally:  # an interrupted cell is recorded too
                if rec["status"] == DEFERRED:
                    pending.append((cell, rec))
                else:
                    summary.add_cell(rec)
        sweep_adapters.evaluate(grid, summary, pending, deferred, console, log)
    finally:
        sweep_adapters.unfinished(pending, summary)


def run_sessions(grid: Grid, summary: SweepSummary, jobs: list[sweep_jobs.Job], console, log) -> None:
    """Each engine session's jobs one after the other, the engine kept open from the first to the
    last; each job's record goes to the summary as it finishes (an interrupted one too)."""
    from rich.markup import escape

    groups = sweep_jobs.sessions(jobs)
    for n, group in enumerate(groups, 1):
        for k, job in enumerate(group, 1):
            what = f"{job.kind} · {job.task}" + (f" · {job.sampling}" if job.kind == "generation" else "")
            console.rule(
                f"[bold]sweep {escape(grid.name)}[/] · session {n}/{len(groups)} ({escape(job.model)}) · "
                f"job {k}/{len(group)}: {escape(what)}"
            )
            rec = {**job.record(), "reason": "interrupted"}
            try:
                rec = sweep_jobs.run_job(job, grid.out, grid.cache, console, log, close=k == len(group))
            finally:
                summary.add_job(rec)


def updates_label(c: dict) -> str:
    """A cell's updates as the summary shows them: "= <n>" when set to its reference's budget,
    flagged when unequal."""
    n = "-" if c.get("updates") is None else str(c["updates"])
    if c.get("unequal_updates"):
        return f"[red]{n} (unequal)[/]"
    eq = c.get("equal_updates") or {}
    if eq.get("max_steps"):
        return f"{n} (= plain)"
    return f"[yellow]{n} (own epochs)[/]" if eq else n


def render_summary(summary: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"sweep {escape(summary['name'])}: {len(summary['cells'])} cells in {summary['dir']}")
    for c in (
        "task",
        "setting",
        "student",
        "teachers",
        "status",
        "verdict",
        "updates",
        "budget",
        "teacher tokens / train s",
        "generations computed / reused",
        "baseline",
        "stages computed",
        "s",
    ):
        t.add_column(c, justify="right" if c == "s" else "left")
    style = {"done": "green", "skipped": "yellow", "failed": "red"}
    for c in summary["cells"]:
        status = f"[{style[c['status']]}]{c['status']}[/]"
        if c["status"] != "done" and c.get("reason"):
            status += f": {escape(c['reason'])}"
        g = c["generations"]
        setting = c["setting"] + (" (teacher alone)" if c.get("alone_of") else "")
        t.add_row(
            escape(c["task"]),
            escape(setting),
            escape(short_spec(c["student"])),
            escape(" + ".join(short_spec(x) for x in c["teachers"]) or "(default)"),
            status,
            escape(c.get("verdict") or "-"),
            updates_label(c),
            escape(budgets.label(c.get("budget"))),
            budgets.cost_label(c.get("compute")),
            f"{g['computed']} / {g['reused']}",
            c.get("baseline") or "-",
            ", ".join(c["computed"]) or "nothing",
            str(c.get("seconds", "")),
        )
    console.print(t)
    console.print(escape(budgets.grid_line(budgets.of_grid(summary["grid"]))))
    from cotgap.report import limits

    for c in summary["cells"]:
        for flag in c.get("budget_flags") or []:
            console.print(f"[yellow]generation budget[/] ({escape(c['name'])}): {escape(limits.budget_line(flag))}")
    g = summary["generations"]
    counts = summary["counts"]
    teachers = {t for s in summary["grid"]["strategies"] for ts in s["teachers"] for t in ts}
    console.print(
        f"teacher generations: [bold]{g['computed']} computed[/], [bold]{g['reused']} reused[/] "
        f"({len(teachers)} teacher(s) × {len(summary['grid']['tasks'])} task(s); "
        f"cache {summary['generation_cache']})"
    )
    b = summary.get("baselines") or {}
    console.print(f"student baselines: {b.get('computed', 0)} computed, {b.get('reused', 0)} reused")
    _render_jobs(summary.get("jobs") or [], console)
    _render_engines(summary.get("engines") or {}, console)
    console.print(
        f"cells: {counts.get('done', 0)} done, {counts.get('skipped', 0)} skipped, "
        f"{counts.get('failed', 0)} failed  (run directories and summary: {Path(summary['dir']) / 'sweep.json'})"
    )


def _render_engines(e: dict, console) -> None:
    """Engine starts and seconds in one line, then one line per model that was started (the
    distilled students, one each, summed in one line)."""
    from rich.markup import escape

    if not e.get("starts"):
        return
    console.print(
        f"engines: [bold]{e['starts']} started[/], {e['start_seconds']:g} s starting, {e['generate_seconds']:g} s generating"
    )
    distilled = {k: m for k, m in e["models"].items() if " distilled (" in k}
    for label, m in e["models"].items():
        if label not in distilled:
            console.print(
                f"  {escape(short_spec(label))}: {m['starts']} start(s), {m['start_s']:g} s starting, "
                f"{m['generate_s']:g} s generating"
            )
    if distilled:
        console.print(
            f"  distilled students: {sum(m['starts'] for m in distilled.values())} start(s), "
            f"{sum(m['start_s'] for m in distilled.values()):.1f} s starting, "
            f"{sum(m['generate_s'] for m in distilled.values()):.1f} s generating"
        )


def _render_jobs(jobs: list[dict], console) -> None:
    """The jobs in one line, and each one that did not finish in a line of its own."""
    from rich.markup import escape

    if not jobs:
        return
    kinds = ", ".join(f"{sum(j['kind'] == k for j in jobs)} {k}" for k in JOB_KINDS)
    states = ", ".join(f"{sum(j['status'] == s for j in jobs)} {s}" for s in STATUSES)
    console.print(f"jobs before the cells: {kinds} ({states})")
    for j in jobs:
        if j["status"] != "done":
            who = j.get("teacher") or j.get("student")
            after = " (its cells compute it themselves)" if j["status"] == "failed" else ""
            console.print(
                f"  [yellow]{j['kind']} job {escape(str(who))} on {escape(j['task'])}: {j['status']}[/]: "
                f"{escape(j.get('reason') or '')}{after}"
            )
