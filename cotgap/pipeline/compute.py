"""The compute ledger: what each stage of a run cost, in tokens and seconds.

Comparisons at equal epochs or equal updates hide cost: on-policy distillation spends teacher
*forward passes* over student samples instead of teacher *generation*, and an API teacher costs
requests. So every run records, per stage (``generate``, ``train``, the two evaluations):

- ``teacher_tokens_generated``: tokens the teachers wrote (rationales; in the teacher's own
  tokenizer where it has one, the student's otherwise — the scripted teacher is not a model);
- ``teacher_tokens_scored``: tokens whose teacher distribution a loss used (teacher forward passes
  over student samples or over rationales), and ``teacher_forward_tokens`` (every token those
  forward passes read, prompts included);
- ``student_tokens_sampled``: tokens the student generated during training (on-policy samples);
- ``tokens_trained``: tokens a training loss covered, summed over updates (repeats count);
- ``api_requests`` / ``api_tokens``: requests sent to an API teacher and the tokens it returned;
- ``wall_seconds`` (the stage record's duration) and ``device_seconds`` (wall seconds times the
  accelerators the process used; 0 on a CPU-only machine, where ``cpu_seconds`` says the work).

Strategies add what their training did with ``ctx.compute.add("train", ...)``; the core counts
generation and reads durations from the stage records. A stage taken from an earlier run's
record (resumed, cached) keeps the counts it recorded then. Report: ``report.json`` -> ``compute``.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from pathlib import Path

#: Token and request counters, in the order the report shows them.
COUNTERS = (
    "teacher_tokens_generated",
    "teacher_tokens_scored",
    "teacher_forward_tokens",
    "student_tokens_sampled",
    "tokens_trained",
    "api_requests",
    "api_tokens",
)
#: Seconds, from stage records and the process clock.
SECONDS = ("wall_seconds", "device_seconds", "cpu_seconds")
#: Stages of a run whose cost is recorded, in run order.
STAGES = ("baseline", "generate", "train", "distilled")


class ComputeLedger:
    """Counters per stage for one run, filled while the stages compute."""

    def __init__(self):
        self.counts: dict[str, dict[str, float]] = defaultdict(dict)
        self.live: dict[str, object] = {}  # stage -> a function giving counts not yet added (a training's)

    def watch(self, stage: str, counts_fn) -> None:
        """While a library trainer runs, ``counts_fn()`` gives its counts so far (not yet added):
        a budget stop reads them through :meth:`running`. ``counts_fn`` None stops watching."""
        if counts_fn is None:
            self.live.pop(stage, None)
        else:
            self.live[stage] = counts_fn

    def running(self, stage: str) -> dict:
        """The stage's counters so far: what was added plus what a watched trainer has counted."""
        fn = self.live.get(stage)
        extra = fn() if fn is not None else {}
        return {name: int(self.counts.get(stage, {}).get(name, 0)) + int(extra.get(name, 0)) for name in COUNTERS}

    def add(self, stage: str, **counts) -> None:
        """Add ``counts`` (names from ``COUNTERS``) to ``stage``; an unknown name is a bug."""
        for name, value in counts.items():
            if name not in COUNTERS:
                raise ValueError(f"unknown compute counter {name!r} (known: {', '.join(COUNTERS)})")
            self.counts[stage][name] = self.counts[stage].get(name, 0) + int(value)

    def take(self, stage: str) -> dict:
        """The stage's counters (every counter present, 0 if nothing was added), for its record."""
        got = self.counts.pop(stage, {})
        return {name: int(got.get(name, 0)) for name in COUNTERS}


class StageClock:
    """Process CPU time and accelerator count over a stage, for its record."""

    def __init__(self):
        self.cpu0 = time.process_time()
        self.wall0 = time.time()

    def seconds(self) -> dict:
        wall = time.time() - self.wall0
        return {"cpu_seconds": round(time.process_time() - self.cpu0, 2), "device_seconds": round(wall * _accelerators(), 2)}


@functools.cache
def tokenizer_of(path: str):
    """The tokenizer that counts a model's tokens (loaded once per process)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _accelerators() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def sft_tokens_trained(run_path, result, training, student_path: str) -> int:
    """Tokens an SFT training's loss covered: the completion tokens of the examples it trained on
    (``student/examples.jsonl``, student tokenizer), times the passes its updates made over them
    (updates x global batch / examples; a fraction for a ``max_steps`` budget below one epoch)."""
    import math

    from cotgap.jsonio import read_jsonl

    path = Path(run_path) / "student" / "examples.jsonl"
    if not path.is_file() or not result.examples:
        return 0
    tok = tokenizer_of(student_path)
    eos = tok.eos_token or ""
    rows = [r for r in read_jsonl(path) if r.get("trained", True)]
    per_pass = sum(len(tok(str(r["completion"]) + eos, add_special_tokens=False)["input_ids"]) for r in rows)
    batch = training.global_batch()
    per_epoch = math.ceil(len(rows) / batch) if rows else 1
    return round(per_pass * result.updates / max(per_epoch, 1))


def from_records(records: dict[str, dict | None]) -> dict:
    """``report.json`` -> ``compute``: ``{"stages": {stage: counters + seconds}, "total": ...}`` from
    the run's stage records (``RunDir.record``); a stage recorded before the ledger existed shows
    its seconds only."""
    stages = {}
    for name in STAGES:
        rec = records.get(name)
        if not rec:
            continue
        row = {name_: 0 for name_ in COUNTERS}
        row.update((rec.get("result") or {}).get("compute") or rec.get("compute") or {})
        row["wall_seconds"] = float(rec.get("seconds") or 0.0)
        row.setdefault("device_seconds", 0.0)
        row.setdefault("cpu_seconds", 0.0)
        stages[name] = row
    total = {k: round(sum(s.get(k, 0) for s in stages.values()), 2) for k in (*COUNTERS, *SECONDS)}
    return {"stages": stages, "total": total}


def table_rows(ledger: dict | None) -> list[tuple[str, str]]:
    """The run table's compute rows (``cotgap run`` / ``cotgap report``): the run's totals."""
    if not ledger or not ledger.get("total"):
        return []
    t = ledger["total"]
    rows = [
        (
            "compute: teacher tokens generated / scored (forward)",
            f"{int(t['teacher_tokens_generated']):,} / {int(t['teacher_tokens_scored']):,} "
            f"({int(t.get('teacher_forward_tokens', 0)):,})",
        ),
        (
            "compute: student tokens sampled / tokens trained",
            f"{int(t['student_tokens_sampled']):,} / {int(t['tokens_trained']):,}",
        ),
        ("compute: wall / device / CPU seconds", f"{t['wall_seconds']:.0f} / {t['device_seconds']:.0f} / {t['cpu_seconds']:.0f}"),
    ]
    if t.get("api_requests"):
        rows.append(("compute: API requests / tokens", f"{int(t['api_requests']):,} / {int(t['api_tokens']):,}"))
    return rows
