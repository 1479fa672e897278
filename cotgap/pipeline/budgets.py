"""Grid budgets: what the strategies of a comparison are held equal on, and how a cell is held to it.

A grid (:mod:`cotgap.pipeline.grid`) compares strategies at equal *updates* or at equal *cost*::

    budget: {updates: plain}          # the default (as equal_updates: true)
    budget: {teacher_tokens: 200000}  # every cell's training may spend 200,000 teacher tokens
    budget: {teacher_tokens: plain}   # ... as many as its reference plain cell's data cost
    budget: {seconds: 600}            # every cell's training may run 600 s (wall clock)
    budget: {seconds: plain}          # ... as long as its reference plain cell's training ran
    budget: none                      # each cell at its own epochs (as equal_updates: false)

``plain`` is the reference strategy: each other cell is measured against its reference cell
(the same reference as for equal updates, trained first). The quantities come from the compute
ledger (:mod:`cotgap.pipeline.compute`):

- ``updates``: optimizer updates; a cell gets ``training.max_steps`` = its reference's updates.
- ``teacher_tokens``: teacher tokens spent *by the training* — the ledger's
  ``teacher_tokens_generated`` + ``teacher_tokens_scored`` of the train stage (teacher forward
  passes over student samples, teacher samples drawn during training). ``plain`` resolves to the
  reference cell's whole teacher cost (generate + train stages: the tokens its rationales cost),
  so an on-policy student gets as much teacher *scoring* as plain's data cost in teacher
  *writing*. The rationales generated before training are the same cached generation for every
  cell of a comparison (they pick the questions for both); they are reported, not metered. An SFT
  cell's training spends no teacher tokens, so this budget never stops it: it trains its epochs.
- ``seconds``: wall seconds of the student's training (model loading excluded); ``plain`` = the
  reference's train-stage seconds. Generation is excluded: the shared cache makes it no cell's own.

How a cell is held to a cost budget: a training callback (:func:`stop_callback`) reads the ledger
after every optimizer update and stops the training at the first update at which the budget is
reached (it overshoots by at most that one update, recorded as ``spent``); the cell trains at most
its own epochs (or ``training.max_steps``). This was chosen over a ``max_steps`` derived from a
tokens-per-update estimate because an on-policy update's cost depends on the lengths the student
samples, which change as it learns: the stop is exact to one update whatever they become. Its
price: the learning-rate schedule is the one of the cell's epochs, cut where the budget ends.
The run's ``training.stop_teacher_tokens`` / ``training.stop_seconds`` carry the limit (so a
single ``cotgap run`` can be budgeted too, and the limit is part of the train stage's key), and
the train stage records what was spent (``training.budget`` among its records).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from cotgap.errors import UserError
from cotgap.protocol.constants import REFERENCE_STRATEGY

#: what a budget holds equal, in the order the docs list them
MODES = ("updates", "teacher_tokens", "seconds")
#: the run setting that carries each cost budget's limit
STOP_FIELD = {"teacher_tokens": "stop_teacher_tokens", "seconds": "stop_seconds"}
#: ledger counters a teacher-token budget meters (train stage)
TEACHER_COUNTERS = ("teacher_tokens_generated", "teacher_tokens_scored")
DEFAULT = {"mode": "updates", "value": REFERENCE_STRATEGY}


def parse(raw, equal_updates, where: str) -> dict | None:
    """The grid's budget as ``{"mode", "value"}`` (value: a positive number or the reference
    strategy's name), or None (each cell at its own epochs); one clear line on bad input."""
    if equal_updates is not None and not isinstance(equal_updates, bool):
        raise UserError(f"grid {where}: equal_updates must be true or false, got {equal_updates!r}")
    if raw is None:
        return dict(DEFAULT) if equal_updates in (None, True) else None
    if isinstance(raw, str) and raw.strip().lower() == "none" or raw is False:
        budget = None
    else:
        budget = _mapping(raw, where)
    if equal_updates is not None and equal_updates != (budget == DEFAULT):
        raise UserError(
            f"grid {where}: equal_updates: {str(equal_updates).lower()} contradicts budget: {describe(budget)}; give budget only"
        )
    return budget


def _mapping(raw, where: str) -> dict:
    """One ``{mode: value}`` pair, checked."""
    hint = (
        f"write budget: {{updates: {REFERENCE_STRATEGY}}}, {{teacher_tokens: N or {REFERENCE_STRATEGY}}}, "
        f"{{seconds: N or {REFERENCE_STRATEGY}}} or none"
    )
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in MODES:
        raise UserError(f"grid {where}: budget must name one of {', '.join(MODES)}, got {raw!r}; {hint}")
    mode, value = next(iter(raw.items()))
    if value == REFERENCE_STRATEGY:
        return {"mode": mode, "value": value}
    if mode == "updates":
        raise UserError(
            f"grid {where}: budget: {{updates: {value!r}}}: updates are equalised to the "
            f"{REFERENCE_STRATEGY} cell's (write {REFERENCE_STRATEGY}); a fixed count is training.max_steps"
        )
    number_ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")
    if not number_ok or (mode == "teacher_tokens" and not isinstance(value, int)):
        kind = "a positive integer" if mode == "teacher_tokens" else "a positive number"
        raise UserError(f"grid {where}: budget.{mode} must be {kind} or {REFERENCE_STRATEGY}, got {value!r}")
    return {"mode": mode, "value": value}


def describe(budget: dict | None) -> str:
    """``updates: plain`` / ``teacher_tokens: 200000`` / ``none``, as a grid writes it."""
    return "none" if budget is None else f"{budget['mode']}: {budget['value']}"


def needs_reference(budget: dict | None) -> bool:
    """Whether cells are measured against a reference cell (the value is the reference strategy)."""
    return budget is not None and budget["value"] == REFERENCE_STRATEGY


def set_fixed(cfg, budget: dict | None) -> None:
    """A fixed cost budget (a number) is every cell's limit from the start (a run setting)."""
    if budget is not None and budget["mode"] in STOP_FIELD and budget["value"] != REFERENCE_STRATEGY:
        setattr(cfg.training, STOP_FIELD[budget["mode"]], budget["value"])


# -- what a reference cost ------------------------------------------------------------------------
def reference_cost(ref_dir: Path, mode: str) -> float | None:
    """The reference cell's measure for ``mode`` from its stage records (None: it did not train)."""
    from cotgap.pipeline import compute
    from cotgap.rundir import RunDir

    if not ref_dir.is_dir():
        return None
    run = RunDir(ref_dir, create=False)
    train = run.record("train")
    if not train or not (train.get("result") or {}).get("updates"):
        return None
    if mode == "updates":
        return int(train["result"]["updates"])
    if mode == "seconds":
        return round(float(train.get("seconds") or 0.0), 1) or None
    total = compute.from_records({s: run.record(s) for s in compute.STAGES})["total"]
    return int(sum(total.get(k, 0) for k in TEACHER_COUNTERS)) or None


def apply(cell, out: Path) -> dict | None:
    """Hold ``cell`` to its grid's budget (a cost budget measured on its reference: the limit set
    now, the reference having finished); what was set, for the cell's record (None: no budget)."""
    budget = getattr(cell, "budget", None)
    if budget is None:
        return None
    rec = {"mode": budget["mode"], "value": budget["value"], "reference": cell.reference}
    field = STOP_FIELD.get(budget["mode"])
    if budget["mode"] == "updates":
        steps = cell.config.training.max_steps
        return {**rec, "limit": steps if steps > 0 else None}
    if not needs_reference(budget):
        return {**rec, "limit": budget["value"]}
    if cell.reference is None:  # a reference cell itself, or a group without one: its own epochs
        return {**rec, "limit": None}
    cost = reference_cost(out / cell.reference, budget["mode"])
    if cost is None:
        return {
            **rec,
            "limit": None,
            "note": "the reference cell did not train: this cell ran at its own epochs (budget not applied)",
        }
    setattr(cell.config.training, field, cost)
    return {**rec, "limit": cost}


def spent(run) -> dict | None:
    """What the cell's training spent against its limit (the train stage's ``training.budget``)."""
    if run is None:
        return None
    train = run.record("train") or {}
    return (train.get("strategy_records") or {}).get("training.budget")


# -- the stop ---------------------------------------------------------------------------------------
def teacher_tokens(counts: dict) -> int:
    """Teacher tokens in a ledger row (generated + scored)."""
    return int(sum(counts.get(k, 0) for k in TEACHER_COUNTERS))


@functools.cache
def _callback_class():
    from transformers import TrainerCallback

    class BudgetStop(TrainerCallback):
        """Stops the training at the first optimizer update at which its teacher tokens (``meter()``)
        or its wall seconds reach the limit; reports what was spent through ``report(dict)``."""

        def __init__(self, teacher_tokens: int, seconds: float, meter, report):
            self.limits = {"teacher_tokens": int(teacher_tokens or 0), "seconds": float(seconds or 0.0)}
            self.meter, self.report = meter, report
            self.started = None

        def _spent(self) -> dict:
            """What was spent, exactly (compared with the limits; rounded only where reported)."""
            return {"teacher_tokens": int(self.meter()), "seconds": time.time() - self.started}

        @staticmethod
        def _shown(spent: dict) -> dict:
            return {**spent, "seconds": round(spent["seconds"], 3)}

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.time()

        def on_step_end(self, args, state, control, **kwargs):
            now = self._spent()
            hit = [k for k, lim in self.limits.items() if lim and now[k] >= lim]
            if hit:
                control.should_training_stop = True
                self.report(
                    {
                        "limits": self.limits,
                        "spent": self._shown(now),
                        "stopped_by": hit[0],
                        "stopped_at_update": int(state.global_step),
                    }
                )

        def on_train_end(self, args, state, control, **kwargs):
            if not control.should_training_stop:  # the epochs ended first
                self.report(
                    {
                        "limits": self.limits,
                        "spent": self._shown(self._spent()),
                        "stopped_by": None,
                        "stopped_at_update": int(state.global_step),
                    }
                )

    return BudgetStop


def stop_callback(training, meter, report):
    """The budget stop for a training under ``training`` (a TrainConfig), or None when it has no
    limit. ``meter()``: teacher tokens the training has spent so far; ``report(dict)``: where
    what it spent goes (the train stage's ``training.budget`` record)."""
    if not (training.stop_teacher_tokens or training.stop_seconds):
        return None
    return _callback_class()(training.stop_teacher_tokens, training.stop_seconds, meter, report)


def label(rec: dict | None) -> str:
    """A cell's budget as the sweep table shows it: ``teacher_tokens ≤ 12,345 (spent 12,401)``."""
    if not rec or rec.get("mode") in (None, "updates"):
        return "-"
    limit = rec.get("limit")
    if limit is None:
        return f"{rec['mode']}: own epochs" if rec.get("reference") or rec.get("note") else f"{rec['mode']} (reference)"
    unit = "s" if rec["mode"] == "seconds" else " tok"
    used = (rec.get("spent") or {}).get("spent", {}).get(rec["mode"])
    return f"≤ {limit:,}{unit}" + (f" (spent {used:,})" if used is not None else "")


def cost_label(compute: dict | None) -> str:
    """A cell's ledger totals in the sweep table: teacher tokens (generated + scored) / train seconds."""
    if not compute:
        return "-"
    return f"{teacher_tokens(compute):,} / {compute.get('train_seconds', 0):.0f}"


def grid_line(budget: dict | None) -> str:
    """The sweep's budget in one line, under its table."""
    if budget is None:
        return "budget: none (each cell at its own epochs)"
    what = {
        "updates": "optimizer updates",
        "teacher_tokens": "teacher tokens spent by the training",
        "seconds": "training wall seconds",
    }[budget["mode"]]
    if needs_reference(budget):
        return f"budget: {describe(budget)} — each cell held to its reference {budget['value']} cell's {what}"
    return f"budget: {describe(budget)} — every cell's training stopped at {budget['value']:,} {what}"


def of_grid(grid: dict) -> dict | None:
    """The budget of a ``sweep.json`` grid (one written before budgets existed: its equal_updates)."""
    if "budget" in grid:
        return grid["budget"]
    return dict(DEFAULT) if grid.get("equal_updates", True) else None
