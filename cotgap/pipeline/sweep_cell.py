"""One sweep cell, run in whatever process an executor gives it: the protocol precheck, the
budget (equal updates, or a cost budget: :mod:`cotgap.pipeline.budgets`), the runner, and the cell's record for ``sweep.json``.

The record is built here and returned, never written: ``sweep.json`` is the driver's alone (the
local executor and the Ray executor both collect records and write the file). A cell that fails
is recorded (one line in the record, the traceback of an internal error in ``<cell>/error.log``)
and never raised, so the other cells go on; only an interrupt propagates.
"""

from __future__ import annotations

import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from cotgap.errors import ProtocolError, UserError
from cotgap.pipeline import budgets
from cotgap.pipeline.grid import Cell, cell_teachers
from cotgap.rundir import RunDir

#: A cell's status between its training and its deferred distilled evaluation (never in sweep.json).
DEFERRED = "deferred"


def precheck(cell: Cell) -> str | None:
    """Why the cell must be skipped (the student is not smaller than a teacher), or None."""
    from cotgap.models.resolve import resolve
    from cotgap.protocol import rules

    try:
        rules.check_student_smaller(resolve(cell.student), [resolve(t) for t in cell_teachers(cell)])
    except ProtocolError as exc:
        return str(exc)
    return None


def apply_budget(cell: Cell, out: Path) -> dict | None:
    """Set the cell's ``training.max_steps`` to its reference's optimizer updates; what was done, for
    the cell's record (None: the cell has no reference, or its grid's budget is a cost budget)."""
    if cell.reference is None or (getattr(cell, "budget", None) or {}).get("mode", "updates") != "updates":
        return None
    train = RunDir(out / cell.reference, create=False).record("train") if (out / cell.reference).is_dir() else None
    updates = ((train or {}).get("result") or {}).get("updates")
    if not updates:
        return {
            "reference": cell.reference,
            "max_steps": None,
            "note": "the reference cell did not train: this cell ran at its own epochs (updates not equalised)",
        }
    cell.config.training.max_steps = int(updates)
    return {"reference": cell.reference, "max_steps": int(updates)}


def generation_stats(runner) -> dict:
    """Generations the runner computed and reused (a finished ``generate`` stage: all reused)."""
    book = getattr(runner, "book", None)
    stats = dict(book.generation_stats) if book is not None else {"computed": 0, "reused": 0}
    run = getattr(runner, "run", None)
    if run is not None and "generate" in run.skipped:
        # nothing generated now: everything the cell needs was produced earlier (reused)
        prev = (run.record("generate") or {}).get("generation_cache") or {}
        stats["reused"] += int(prev.get("computed", 0)) + int(prev.get("reused", 0))
    return stats


def baseline_stat(runner) -> str | None:
    """computed | reused (another run's identical baseline, or this run's finished stage) | None."""
    run = getattr(runner, "run", None)
    if run is None:
        return None
    if "baseline" in run.computed:
        return "reused" if (run.record("baseline") or {}).get("shared") else "computed"
    return "reused" if "baseline" in run.skipped else None


def _trained(runner) -> tuple[int | None, dict | None]:
    """The cell's optimizer updates and its strategy's ``unequal_updates`` record, if any."""
    run = getattr(runner, "run", None)
    train = (run.record("train") if run is not None else None) or {}
    return (train.get("result") or {}).get("updates"), train.get("unequal_updates")


def _record_cost(rec: dict, run) -> None:
    """The cell's compute ledger totals and what its training spent against its budget."""
    from cotgap.pipeline import compute

    if run is None:
        return
    total = compute.from_records({s: run.record(s) for s in compute.STAGES})["total"]
    rec["compute"] = {k: total.get(k, 0) for k in (*compute.COUNTERS, *compute.SECONDS)}
    train = run.record("train") or {}
    rec["compute"]["train_seconds"] = round(float(train.get("seconds") or 0.0), 1)
    if rec.get("budget") is not None:
        rec["budget"]["spent"] = budgets.spent(run)


@contextmanager
def recorded(rec: dict, folder: Path, log, what: str = "cell"):
    """Run the body, recording a failure in ``rec["reason"]`` instead of raising it: a bad input in
    one line, an internal error in one line plus its traceback in ``<folder>/error.log``."""
    try:
        yield
    except UserError as exc:
        rec.update(status="failed", reason=str(exc))
        log(f"[red]{what} failed[/]: {exc}")
    except Exception as exc:  # an internal error in one cell or job must not lose the others
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.log").write_text(traceback.format_exc())
        first = str(exc).splitlines()[0] if str(exc) else ""
        rec.update(status="failed", reason=f"internal error: {type(exc).__name__}: {first} (traceback in {folder / 'error.log'})")
        log(f"[red]{what} failed[/]: {rec['reason']}")


def new_record(cell: Cell, out: Path) -> dict:
    """The cell's record before it runs (a cell that never finishes stays ``failed``)."""
    return {
        **cell.describe(),
        "dir": str(out / cell.name),
        "status": "failed",
        "reason": None,
        "verdict": None,
        "computed": [],
        "cached": [],
        "generations": {"computed": 0, "reused": 0},
        "baseline": None,
        "updates": None,
        "equal_updates": None,
        "budget": None,
        "compute": None,
        "engines": {},
    }


def run_cell(cell: Cell, rec: dict, out: Path, cache: Path, console, log, *, force: bool = False, defer: bool = False) -> dict:
    """Run ``cell`` (skipping it when the protocol says so, at its reference's updates) and fill
    ``rec`` in place; returns it. Only an interrupt is raised (``rec`` then says so). ``defer``: stop
    after training (status ``deferred``, the trained model in ``rec["trained_model"]``); the cell
    is run again later for its distilled evaluation (:mod:`cotgap.pipeline.sweep_adapters`)."""
    from cotgap.backends import generation
    from cotgap.pipeline.runner import Runner

    t0 = time.time()
    runner = None
    try:
        with recorded(rec, out / cell.name, log):
            reason = precheck(cell)
            if reason:
                rec.update(status="skipped", reason=f"protocol: {reason}")
                log(f"[yellow]skipped[/]: {reason}")
            else:
                rec["equal_updates"] = apply_budget(cell, out)
                rec["budget"] = budgets.apply(cell, out)
                unprepared = Runner(cell.config, console, log, generation_cache=cache, force=force, ablation_peers=cell.peers)
                unprepared.defer_distilled = defer  # stop after training: sweep_adapters evaluates it later
                runner = unprepared.prepare()  # stays None when prepare refuses: nothing ran to record
                report = runner.execute()
                if report.get("deferred"):
                    rec.update(status=DEFERRED, trained_model=report["deferred"])
                    rec["computed"], rec["cached"] = list(runner.run.computed), list(runner.run.skipped)
                    return rec
                rec.update(
                    status="done",
                    verdict=report.get("verdict"),
                    computed=list(runner.run.computed),
                    cached=list(runner.run.skipped),
                )
                if report.get("budget_flags"):  # sources whose rationales ran out of generation budget
                    rec["budget_flags"] = report["budget_flags"]
    except KeyboardInterrupt:
        rec.update(status="failed", reason="interrupted")
        raise
    finally:
        if runner is not None:
            rec["generations"] = generation_stats(runner)
            rec["baseline"] = baseline_stat(runner)
            rec["updates"], unequal = _trained(runner)
            if unequal:
                rec["unequal_updates"] = unequal
            _record_cost(rec, runner.run)
            if rec["status"] not in ("done", DEFERRED):
                rec["computed"], rec["cached"] = list(runner.run.computed), list(runner.run.skipped)
        generation.close()
        rec["engines"] = generation.take_usage()
        rec["seconds"] = round(time.time() - t0, 1)
    return rec


def cell_task(cell: Cell, out: Path, cache: Path, force: bool, threads: int | None) -> dict:
    """A cell as a task of its own (e.g. on a Ray worker): this process's threads set, its own
    console, the cell run, its record returned to the driver."""
    from rich.console import Console

    from cotgap.backends import runtime

    runtime.configure(threads)
    console = Console()
    console.rule(f"[bold]cell[/] {cell.name}")
    return run_cell(cell, new_record(cell, out), out, cache, console, console.print, force=force)
