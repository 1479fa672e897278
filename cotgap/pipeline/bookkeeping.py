"""The core's bookkeeping of one run, owned by the runner and out of the plugins' reach.

What the runner reads to build the stage records and to decide what it evaluates — the strategy
records, the generation counts, the compute ledger, the extra models to convert early and the
folders ``train_student`` wrote (the only ones the distilled evaluation accepts) — lives here, on
the :class:`RunBook` the runner creates. The context a plugin holds writes to it only through its
own methods (``record``, ``generate_rationales``, ``will_need``, ``train_student``), each doing
what the protocol allows, and offers the compute ledger only as :class:`ComputeMeter` (add and
watch, never take). Python has no private members: a plugin reaching for underscored names is
outside the plugin API (docs/api.md), which names none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cotgap.pipeline.compute import ComputeLedger


class RunBook:
    """One run's bookkeeping: filled while the stages compute, read by the runner for their records."""

    def __init__(self):
        self.records: dict[str, Any] = {}  # the strategy's ``ctx.record`` facts -> report.json strategy_records
        self.generation_stats = {"computed": 0, "reused": 0}  # generate_rationales calls computed / from the cache
        self.compute = ComputeLedger()  # tokens and seconds per stage (cotgap.pipeline.compute)
        self.models_needed: list[str] = []  # beyond student and teachers (``ctx.will_need``)
        self._students: set[str] = set()  # folders train_student wrote: the only evaluable ones

    def accept_student(self, path) -> None:
        """``path`` is a model the core fine-tuned from the student (called by the context's
        ``train_student`` / ``train_student_with`` only)."""
        self._students.add(str(Path(path).resolve()))

    def is_student(self, path) -> bool:
        """Whether ``path`` is a folder the core's student training wrote in this run."""
        return str(Path(path).resolve()) in self._students


class ComputeMeter:
    """What a strategy may do with the run's compute ledger: add its training's counts and let a
    budget stop watch a library trainer's counts. Taking a stage's counts for its record is the
    runner's (:class:`RunBook`)."""

    __slots__ = ("_ledger",)

    def __init__(self, ledger: ComputeLedger):
        self._ledger = ledger

    def add(self, stage: str, **counts) -> None:
        """Add ``counts`` (names from ``cotgap.pipeline.compute.COUNTERS``) to ``stage``."""
        self._ledger.add(stage, **counts)

    def watch(self, stage: str, counts_fn) -> None:
        """While a library trainer runs, ``counts_fn()`` gives its counts so far (None: stop)."""
        self._ledger.watch(stage, counts_fn)

    def running(self, stage: str) -> dict:
        """The stage's counters so far (read only)."""
        return self._ledger.running(stage)


@dataclass(frozen=True)
class RunPlace:
    """Where the run directory is (``ctx.run.path``), without its stages, records or lock."""

    path: Path
