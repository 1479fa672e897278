"""What teacher generations a cell asks for, known before anything runs (for the sweep's plan).

A cell's strategy asks ``ctx.generate_rationales(model, samples=, temperature=, description=)``
during its ``generate`` hook; the generation cache computes each distinct (model, task, data,
sampling) once and shares it. The plan predicts those calls without running the hook:

- a strategy that keeps the base class's ``generate`` (``plain`` and its like): every teacher,
  with the strategy's ``samples`` / ``temperature`` — exact;
- the built-in ``mix``: every teacher, greedy, one sample — exact;
- the built-in ``mind``: every teacher × perspective prompt, with ``samples`` / ``temperature`` —
  exact (a perspective is identified by its instruction text);
- the built-in ``micota``: every teacher, greedy, and the short parent when
  ``measure_short_parent`` — the teacher assistant's generations are *not* planned: it is a model
  merged during the run, so it has no name before it exists (the cell says so in a note);
- any other strategy with a ``generate`` of its own: one job per teacher with its ``samples`` /
  ``temperature`` if it has them — an approximation, marked ``exact: false``.

A cross-teacher-filter cell also generates with its peers (the sweep's other teachers of the
strategy) that are not its own teachers, with the strategy's sampling settings, as the runner does.
"""

from __future__ import annotations

from dataclasses import dataclass

from cotgap.models.resolve import resolve
from cotgap.strategy import Strategy


@dataclass(frozen=True)
class Need:
    """One ``generate_rationales`` call a cell will make."""

    model: str  # the spec as the grid (or the strategy's parameters) wrote it
    samples: int = 1
    temperature: float = 0.0
    description: str | None = None  # a perspective instruction (mind); None: the task's own prompt
    exact: bool = True

    def sampling(self) -> dict:
        """The settings of this call that enter the generation cache key."""
        return {"samples": self.samples, "temperature": self.temperature, "description": self.description}


def _sampled(teachers: list[str], p: dict, exact: bool = True) -> list[Need]:
    return [Need(t, int(p.get("samples", 1)), float(p.get("temperature", 0.0)), exact=exact) for t in teachers]


def _greedy(teachers: list[str], p: dict) -> tuple[list[Need], list[str]]:
    return [Need(t) for t in teachers], []


def _mind(teachers: list[str], p: dict) -> tuple[list[Need], list[str]]:
    perspectives = [x if isinstance(x, str) and x.strip() else None for x in p.get("perspectives") or [None]]
    return [Need(t, int(p["samples"]), float(p["temperature"]), instr) for t in teachers for instr in perspectives], []


def _micota(teachers: list[str], p: dict) -> tuple[list[Need], list[str]]:
    needs = [Need(t) for t in teachers]
    if p.get("measure_short_parent") and p.get("short_parent"):
        needs.append(Need(str(p["short_parent"])))
    return needs, ["micota: the teacher assistant's generations (a model merged during the run) are not "
                   "planned as a generation job"]


#: Built-in strategies whose ``generate`` is their own, and what it asks for.
KNOWN = {"mix": _greedy, "mind": _mind, "micota": _micota}


def _strategy_needs(info, teachers: list[str], p: dict) -> tuple[list[Need], list[str]]:
    if info.impl is not None and type(info.impl).generate is Strategy.generate:
        return _sampled(teachers, p), []
    if info.name in KNOWN:
        return KNOWN[info.name](teachers, p)
    return _sampled(teachers, p, exact=False), [
        f"strategy {info.name} generates in its own way: planned as one job per teacher × task with its "
        "samples / temperature (an approximation)"]


def cell_needs(cell, teachers: list[str], info) -> tuple[list[Need], list[str]]:
    """The generations ``cell`` (run with ``teachers``, strategy ``info``) will ask for, and notes on
    what the plan cannot see. Bad strategy parameters are refused here (a ``UserError``)."""
    p = info.validate_params(cell.params)
    needs, notes = _strategy_needs(info, teachers, p)
    if cell.ablation and cell.peers:
        own = {resolve(t).spec for t in teachers}
        needs += _sampled([s for s in cell.peers if s not in own], p)
    return list(dict.fromkeys(needs)), notes
