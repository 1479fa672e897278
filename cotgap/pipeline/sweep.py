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
internal errors) and the sweep goes on. ``<out>/sweep.json`` (schema ``cotgap.sweep/1``) is
rewritten after every cell.

Equal updates: reference cells (plain, no ablation) run first; every cell with a reference (see
:mod:`cotgap.pipeline.grid`) is then trained with ``training.max_steps`` = the updates its reference
made, so strategies are compared at equal optimizer updates whatever their data sizes. A cell
whose reference did not train runs at its own epochs and its record says so; a strategy that
opts out of the budget (mix's ``published_batching``) is flagged ``unequal_updates``.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from cotgap.errors import ProtocolError, UserError
from cotgap.jsonio import write_json
from cotgap.pipeline.grid import Cell, Grid, cell_teachers, short_spec
from cotgap.report.sweep_file import SCHEMA
from cotgap.rundir import RunDir


def precheck(cell: Cell) -> str | None:
    """Why the cell must be skipped (the student is not smaller than a teacher), or None."""
    from cotgap.models.resolve import resolve
    from cotgap.protocol import rules

    try:
        rules.check_student_smaller(resolve(cell.student), [resolve(t) for t in cell_teachers(cell)])
    except ProtocolError as exc:
        return str(exc)
    return None


def _gen_stats(runner) -> dict:
    ctx = getattr(runner, "ctx", None)
    stats = dict(ctx.generation_stats) if ctx is not None else {"computed": 0, "reused": 0}
    run = getattr(runner, "run", None)
    if run is not None and "generate" in run.skipped:
        # nothing generated now: everything the cell needs was produced earlier (reused)
        prev = (run.record("generate") or {}).get("generation_cache") or {}
        stats["reused"] += int(prev.get("computed", 0)) + int(prev.get("reused", 0))
    return stats


def _baseline_stat(runner) -> str | None:
    """computed | reused (another cell's identical baseline, or this cell's finished stage) | None."""
    run = getattr(runner, "run", None)
    if run is None:
        return None
    if "baseline" in run.computed:
        return "reused" if (run.record("baseline") or {}).get("shared") else "computed"
    return "reused" if "baseline" in run.skipped else None


def run_order(cells: list[Cell]) -> list[Cell]:
    """Reference cells first (their updates set the others' budget), otherwise grid order."""
    return sorted(cells, key=lambda c: c.reference is not None)


def apply_budget(cell: Cell, out: Path) -> dict | None:
    """Set the cell's ``training.max_steps`` to its reference's optimizer updates; what was done, for
    the cell's record (None: the cell has no reference)."""
    if cell.reference is None:
        return None
    train = RunDir(out / cell.reference, create=False).record("train") if (out / cell.reference).is_dir() else None
    updates = ((train or {}).get("result") or {}).get("updates")
    if not updates:
        return {"reference": cell.reference, "max_steps": None,
                "note": "the reference cell did not train: this cell ran at its own epochs (updates not equalised)"}
    cell.config.training.max_steps = int(updates)
    return {"reference": cell.reference, "max_steps": int(updates)}


def _trained(runner) -> tuple[int | None, dict | None]:
    """The cell's optimizer updates and its strategy's ``unequal_updates`` record, if any."""
    run = getattr(runner, "run", None)
    train = (run.record("train") if run is not None else None) or {}
    return (train.get("result") or {}).get("updates"), (train.get("strategy_records") or {}).get("unequal_updates")


def run_sweep(grid: Grid, console, *, log=None, force: bool = False) -> dict:
    """Run every cell (resuming finished work) while holding the sweep directory's lock (a second
    sweep on it is refused); returns (and writes) the sweep summary."""
    guard = RunDir(grid.out)
    guard.lock()
    try:
        return _run_cells(grid, console, log=log or console.print, force=force)
    finally:
        guard.unlock()


def _run_cells(grid: Grid, console, *, log, force: bool) -> dict:
    from cotgap.backends import generation
    from cotgap.pipeline.runner import Runner

    summary = {"schema": SCHEMA, "name": grid.name, "config": grid.source, "dir": str(grid.out),
               "generation_cache": str(grid.cache), "grid": grid.grid, "cells": [],
               "generations": {"computed": 0, "reused": 0}, "baselines": {"computed": 0, "reused": 0},
               "counts": {}}
    t_all = time.time()

    def save():
        cells = summary["cells"]
        summary["generations"] = {"computed": sum(c["generations"]["computed"] for c in cells),
                                  "reused": sum(c["generations"]["reused"] for c in cells)}
        summary["baselines"] = {k: sum(c.get("baseline") == k for c in cells) for k in ("computed", "reused")}
        summary["counts"] = {s: sum(c["status"] == s for c in cells) for s in ("done", "skipped", "failed")}
        summary["seconds"] = round(time.time() - t_all, 1)
        summary["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json(grid.out / "sweep.json", summary)

    n = len(grid.cells)
    for i, cell in enumerate(run_order(grid.cells), 1):
        console.rule(f"[bold]sweep {grid.name}[/] · cell {i}/{n} · {cell.name}")
        rec = {**cell.describe(), "dir": str(grid.out / cell.name), "status": "failed", "reason": None,
               "verdict": None, "computed": [], "cached": [], "generations": {"computed": 0, "reused": 0},
               "baseline": None, "updates": None, "equal_updates": None}
        t0 = time.time()
        runner = None
        try:
            reason = precheck(cell)
            if reason:
                rec.update(status="skipped", reason=f"protocol: {reason}")
                log(f"[yellow]skipped[/]: {reason}")
            else:
                rec["equal_updates"] = apply_budget(cell, grid.out)
                runner = Runner(cell.config, console, log, generation_cache=grid.cache, force=force,
                                ablation_peers=cell.peers).prepare()
                report = runner.execute()
                rec.update(status="done", verdict=report.get("verdict"), computed=list(runner.run.computed),
                           cached=list(runner.run.skipped))
        except KeyboardInterrupt:
            rec.update(reason="interrupted")
            summary["cells"].append(rec)
            save()
            raise
        except UserError as exc:
            rec.update(reason=str(exc))
            log(f"[red]cell failed[/]: {exc}")
        except Exception as exc:  # an internal error in one cell must not lose the others
            cell_dir = grid.out / cell.name
            cell_dir.mkdir(parents=True, exist_ok=True)
            (cell_dir / "error.log").write_text(traceback.format_exc())
            first = str(exc).splitlines()[0] if str(exc) else ""
            rec.update(reason=f"internal error: {type(exc).__name__}: {first} (traceback in {cell_dir / 'error.log'})")
            log(f"[red]cell failed[/]: {rec['reason']}")
        finally:
            if runner is not None:
                rec["generations"] = _gen_stats(runner)
                rec["baseline"] = _baseline_stat(runner)
                rec["updates"], unequal = _trained(runner)
                if unequal:
                    rec["unequal_updates"] = unequal
                if rec["status"] != "done":
                    rec["computed"], rec["cached"] = list(runner.run.computed), list(runner.run.skipped)
            generation.close()
        rec["seconds"] = round(time.time() - t0, 1)
        summary["cells"].append(rec)
        save()
    save()
    return summary


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
    for c in ("task", "setting", "student", "teachers", "status", "verdict", "updates", "generations computed / reused",
              "baseline", "stages computed", "s"):
        t.add_column(c, justify="right" if c == "s" else "left")
    style = {"done": "green", "skipped": "yellow", "failed": "red"}
    for c in summary["cells"]:
        status = f"[{style[c['status']]}]{c['status']}[/]"
        if c["status"] != "done" and c.get("reason"):
            status += f": {escape(c['reason'])}"
        g = c["generations"]
        t.add_row(escape(c["task"]), escape(c["setting"]), escape(short_spec(c["student"])),
                  escape(" + ".join(short_spec(x) for x in c["teachers"]) or "(default)"), status,
                  escape(c.get("verdict") or "-"), updates_label(c), f"{g['computed']} / {g['reused']}", c.get("baseline") or "-",
                  ", ".join(c["computed"]) or "nothing", str(c.get("seconds", "")))
    console.print(t)
    g = summary["generations"]
    counts = summary["counts"]
    teachers = {t for s in summary["grid"]["strategies"] for ts in s["teachers"] for t in ts}
    console.print(f"teacher generations: [bold]{g['computed']} computed[/], [bold]{g['reused']} reused[/] "
                  f"({len(teachers)} teacher(s) × {len(summary['grid']['tasks'])} task(s); "
                  f"cache {summary['generation_cache']})")
    b = summary.get("baselines") or {}
    console.print(f"student baselines: {b.get('computed', 0)} computed, {b.get('reused', 0)} reused")
    console.print(f"cells: {counts.get('done', 0)} done, {counts.get('skipped', 0)} skipped, "
                  f"{counts.get('failed', 0)} failed  (run directories and summary: {Path(summary['dir']) / 'sweep.json'})")
