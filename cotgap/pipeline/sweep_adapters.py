"""Distilled evaluations of a sweep's LoRA students as adapters on one engine per base model.

The plan gives each cell whose student trains with LoRA and is evaluated by vLLM a
``distilled_session`` (:func:`cotgap.pipeline.plan_engines.adapter_session`): the students of one
base model (same engine settings) share it. The local executor runs such a cell up to its
training only (``run_cell(..., defer=True)``), and once every cell has trained it opens one engine
of the base per session with LoRA enabled (:mod:`cotgap.backends.adapter_sessions`) and runs each
deferred cell again: every stage before ``distilled`` is found finished, and the distilled
evaluation is answered by the base engine with that cell's adapter. The evaluation is lm-eval's
through the same runner code, so the samples, scores and report are written as for a merged model.

Where the engine cannot serve adapters here (``adapter_sessions.unsupported``: the transformers
backend, a vLLM without LoRA, a data-parallel model), the cells are not deferred and evaluate their
merged models as before; a session whose engine fails to start, or a cell whose strategy left no
adapter of the student beside its merged model, is evaluated merged too. Each case is one line in
the log and in ``sweep.json`` (``adapter_sessions``: per session its student, cells, ``mode``
``adapters`` | ``merged`` | ``cached`` and the note); each cell's record says where its distilled evaluation ran
(``distilled_on``).
"""

from __future__ import annotations

from pathlib import Path

from cotgap.pipeline.grid import Cell, Grid
from cotgap.pipeline.sweep_cell import DEFERRED, new_record, run_cell
from cotgap.pipeline.sweep_summary import SweepSummary, engine_totals


def deferrable(grid: Grid, plan: dict, log) -> dict[str, str]:
    """The cells to run up to their training now and evaluate later on an adapter session: cell
    name -> session id, for the planned sessions this machine's engine can serve (a session it
    cannot is said in one line)."""
    from cotgap.backends import adapter_sessions, generation

    cells = {c.name: c for c in grid.cells}
    out, refused = {}, {}
    for entry in plan["cells"]:
        sid = entry.get("distilled_session")
        if not sid or entry["status"] == "skipped":
            continue
        cfg = cells[entry["name"]].config
        why = adapter_sessions.unsupported(
            generation.pick_backend(cfg.generation.backend), cfg.generation.engine_args(entry["student"])
        )
        if why is None:
            out[entry["name"]] = sid
        elif sid not in refused:
            refused[sid] = why
            log(f"[yellow]LoRA students of {entry['student']} are evaluated merged[/]: {why}")
    return out


def merge_records(first: dict, second: dict) -> dict:
    """One cell record from its two passes: what the first computed (generations, baseline,
    training) and the second finished (distilled evaluation, verdict, report); engines and seconds
    summed."""
    rec = {**second}
    rec["generations"], rec["baseline"] = first["generations"], first["baseline"]
    rec["computed"] = list(dict.fromkeys([*first["computed"], *second["computed"]]))
    rec["cached"] = [s for s in second["cached"] if s not in rec["computed"]]
    rec["engines"] = {
        k: {"starts": m["starts"], "start_s": m["start_s"], "generate_s": m["generate_s"]}
        for k, m in engine_totals([first, second])["models"].items()
    }
    rec["seconds"] = round(float(first.get("seconds") or 0) + float(second.get("seconds") or 0), 1)
    rec.pop("trained_model", None)
    return rec


def _adapters(cells: list[tuple[Cell, dict]], log) -> tuple[str | None, dict, list[str]]:
    """The session's base model path, the adapters of the cells that left one of it (merged model
    path -> adapter) and the names of those that did not."""
    from cotgap.backends import adapter_sessions
    from cotgap.models.resolve import resolve

    base = resolve(cells[0][0].student).path(log=log)
    adapters, without = {}, []
    for cell, rec in cells:
        a = adapter_sessions.adapter_of(rec["trained_model"], base)
        if a is None:
            without.append(cell.name)
        else:
            adapters[rec["trained_model"]] = a
    return base, adapters, without


def _open(sid: str, cells: list[tuple[Cell, dict]], log) -> dict:
    """Register the session's students (its engine starts on the first evaluation asked for); its
    entry for ``sweep.json``."""
    from cotgap.backends import adapter_sessions

    cell0 = cells[0][0]
    entry = {"id": sid, "student": cell0.student, "cells": [c.name for c, _ in cells], "mode": "merged", "note": None}
    base, adapters, without = _adapters(cells, log)
    if without:
        entry["note"] = f"no adapter of the student beside the merged model: {', '.join(without)} evaluated merged"
        log(f"[yellow]{entry['note']}[/]")
    if adapters:
        args = cell0.config.generation.engine_args(cell0.student)
        adapter_sessions.open_session(base, args, adapters, seed=cell0.config.seed, label=f"{cell0.student} adapters")
    entry["adapters"] = len(adapters)
    return entry


def _close(entry: dict, log) -> None:
    """End the open session; its entry says how its students were evaluated (``adapters`` when any
    was served as an adapter, ``merged``, or ``cached``: every evaluation was already finished)."""
    from cotgap.backends import adapter_sessions

    s = adapter_sessions.current()
    adapter_sessions.close()
    if s is None:
        return
    if s.failure:
        entry["note"] = f"{s.failure}: the students are evaluated merged"
        log(f"[yellow]{entry['note']}[/]")
    entry["mode"] = "adapters" if s.served else ("merged" if s.failure else "cached")


def evaluate(grid: Grid, summary: SweepSummary, pending: list[tuple[Cell, dict]], sessions: dict[str, str], console, log) -> None:
    """Each session's deferred cells finished on one adapter engine (or merged, see the module),
    their records merged and handed to the summary."""
    from cotgap.backends import adapter_sessions

    groups: dict[str, list[tuple[Cell, dict]]] = {}
    for cell, rec in pending:
        groups.setdefault(sessions[cell.name], []).append((cell, rec))
    done: list[dict] = summary.data.setdefault("adapter_sessions", [])
    try:
        for sid, cells in groups.items():
            entry = _open(sid, cells, log)
            done.append(entry)
            for cell, first in cells:
                way = "adapter session" if entry["adapters"] else "merged"
                console.rule(f"[bold]sweep {grid.name}[/] · distilled evaluation ({way}) · {cell.name}")
                second, session = new_record(cell, grid.out), adapter_sessions.current()
                try:
                    run_cell(cell, second, grid.out, grid.cache, console, log)
                finally:
                    rec = merge_records(first, second)
                    served = session is not None and str(Path(first["trained_model"])) in session.served
                    rec["distilled_on"] = {"session": sid, "mode": "adapter" if served else "merged"}
                    summary.add_cell(rec)
            _close(entry, log)
    finally:
        adapter_sessions.close()


def unfinished(pending: list[tuple[Cell, dict]], summary: SweepSummary) -> None:
    """Deferred cells a stopped sweep did not evaluate: recorded as failed (a resumed sweep finds
    their training done)."""
    for cell, rec in pending:
        if cell.name not in summary.cells and rec["status"] == DEFERRED:
            rec.update(status="failed", reason="interrupted before its distilled evaluation")
            rec.pop("trained_model", None)
            summary.add_cell(rec)
