"""What teacher generations a cell asks for, known before anything runs (for the sweep's plan).

A cell's strategy asks ``ctx.generate_rationales(model, samples=, temperature=, description=)``
during its ``generate`` hook; the generation cache computes each distinct (model, task, data,
sampling) once and shares it. The plan does not run the hook: the strategy declares the calls
(``Strategy.planned_generations(params, teachers)``; the base class's ``generate`` makes one per
teacher), and ``Strategy.plan_note`` says what it cannot declare (e.g. a model merged during the
run). A strategy that declares nothing is planned as one call per teacher with its ``samples`` /
``temperature``, marked ``exact: false``.

A cross-teacher-filter cell also generates with its peers (the sweep's other teachers of the
strategy) that are not its own teachers, with the strategy's sampling settings, as the runner does.
"""

from __future__ import annotations

from cotgap.models.resolve import resolve
from cotgap.strategy import PlannedGeneration as Need


def _sampled(teachers: list[str], p: dict, exact: bool = True) -> list[Need]:
    return [Need(t, int(p.get("samples", 1)), float(p.get("temperature", 0.0)), exact=exact) for t in teachers]


def _strategy_needs(info, teachers: list[str], p: dict) -> tuple[list[Need], list[str]]:
    declared = info.impl.planned_generations(p, list(teachers))
    notes = [f"{info.name}: {info.impl.plan_note}"] if info.impl.plan_note else []
    if declared is not None:
        return list(declared), notes
    return _sampled(teachers, p, exact=False), notes + [
        f"strategy {info.name} generates in its own way: planned as one job per teacher × task with its "
        "samples / temperature (an approximation)"
    ]


def cell_needs(cell, teachers: list[str], info) -> tuple[list[Need], list[str]]:
    """The generations ``cell`` (run with ``teachers``, strategy ``info``) will ask for, and notes on
    what the plan cannot see. Bad strategy parameters are refused here (a ``UserError``)."""
    p = info.validate_params(cell.params)
    needs, notes = _strategy_needs(info, teachers, p)
    if cell.ablation and cell.peers:
        own = {resolve(t).spec for t in teachers}
        needs += _sampled([s for s in cell.peers if s not in own], p)
    return list(dict.fromkeys(needs)), notes
