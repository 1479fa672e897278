"""Analysis of chain-of-thought distillation results.

Implements the practitioner guidelines of Kajitsuka et al., "Revisiting the
Capacity Gap in CoT Distillation from a Practical Perspective":

1. Distillation must beat the student's *pre-distillation* few-shot baseline.
2. When candidate teachers differ substantially, prefer the stronger one:
   stronger teachers solve (and so keep) more training examples, and a ratio of
   about 1.3x or more in kept examples consistently favoured them.

plus a task-selection rule (distil a task only when the teachers' mean
few-shot accuracy exceeds the students' by more than a threshold, 30 points
by default) and a diagnostic for the *capacity gap* (a weaker teacher giving
better students at the smallest student sizes, an advantage that shrinks or
reverses as the student grows).

Everything here is a pure function over lists of row dicts (as produced by
:func:`read_csv`, i.e. string values, although numbers are accepted too),
except :func:`read_csv` itself and :func:`render_tables` (which prints to a
``rich`` console).  Invalid input raises :class:`ValueError` with a one-line
message; the CLI turns that into exit status 2.

All accuracies are percentages (0-100).  Student sizes are strings such as
``"135M"`` or ``"1.5B"``; they are ordered by :func:`parse_size`.

Input tables
------------
task selection   ``task,model,role,accuracy``        (role: teacher | student)
distilled        ``setting,task,teacher,student,student_size,accuracy``
                 optional: ``ci_low,ci_high`` (95 % interval of distilled -
                 baseline, in points), ``updates`` (optimizer updates)
baseline         ``task,student,student_size,accuracy``
teachers         ``task,teacher,accuracy`` optional: ``kept`` (number of
                 correct, i.e. kept, training examples; may be empty)

JSON schema produced by :func:`to_json`
---------------------------------------
::

    {
      "schema_version": 1,
      "tasks": [
        {
          "task": str,
          "effective": bool,          # helped in > half of the cells
          "n_cells": int, "n_helped": int, "n_no_change": int, "n_hurt": int,
          "cells": [                  # one per (setting, teacher, student)
            {"setting": str, "teacher": str, "student": str,
             "student_size": str,     # as written, e.g. "0.5B"
             "student_size_b": float, # parameters in billions
             "distilled": float, "baseline": float,
             "diff": float,           # distilled - baseline, points
             "ci_low": float|null, "ci_high": float|null,
             "verdict": "helped" | "no significant change" | "hurt",
             "updates": int|null}
          ],
          "teachers": [               # strongest first; accuracy null if unknown
            {"teacher": str, "accuracy": float|null, "kept": int|null}
          ],
          "strongest_teacher": str|null, "weakest_teacher": str|null,
          "kept_ratio": float|null,   # kept(strongest) / kept(weakest);
                                      # null when unknown or infinite
          "kept_ratio_infinite": bool,# weakest teacher kept 0, strongest > 0
          "mean_scores": [            # mean distilled accuracy per candidate
            {"setting": str, "teacher": str, "mean": float, "n": int}
          ],
          "capacity_gaps": [
            {"setting": str, "stronger": str, "weaker": str,
             "basis": "teacher accuracy" | "mean distilled score",
             "stronger_strength": float, "weaker_strength": float,
             "sizes": [str, ...],     # common student sizes, ascending
             "advantages": [float, ...],  # weaker - stronger at each size
             "verdict": "capacity gap observed" | "no capacity gap"
                        | "insufficient data",
             "detail": str}
          ],
          "recommendation": str,
          "recommended_teacher": str|null,
          "recommended_setting": str|null,
          "reason": str,              # one sentence
          "warnings": [str, ...]
        }
      ]
    }
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "HELPED",
    "NO_CHANGE",
    "HURT",
    "GAP_OBSERVED",
    "NO_GAP",
    "INSUFFICIENT",
    "DO_NOT_DISTIL",
    "parse_size",
    "read_csv",
    "TaskSelection",
    "select_tasks",
    "Cell",
    "TeacherInfo",
    "CapacityGap",
    "MeanScore",
    "TaskAnalysis",
    "analyse",
    "to_json",
    "render_tables",
    "render_selection",
    "TASK_SELECTION_COLUMNS",
    "DISTILLED_COLUMNS",
    "BASELINE_COLUMNS",
    "TEACHER_COLUMNS",
]

# Verdicts for a (teacher, student size) cell.
HELPED = "helped"
NO_CHANGE = "no significant change"
HURT = "hurt"

# Capacity-gap verdicts.
GAP_OBSERVED = "capacity gap observed"
NO_GAP = "no capacity gap"
INSUFFICIENT = "insufficient data"

DO_NOT_DISTIL = "do not distil: use the pre-distillation student"

# Required columns of each input table (for read_csv).
TASK_SELECTION_COLUMNS = ("task", "model", "role", "accuracy")
DISTILLED_COLUMNS = ("setting", "task", "teacher", "student", "student_size", "accuracy")
BASELINE_COLUMNS = ("task", "student", "student_size", "accuracy")
TEACHER_COLUMNS = ("task", "teacher", "accuracy")

# Comparisons of floats computed from percentages: values within EPS of a
# threshold count as *equal* to it (so 30.000000000004 is "exactly 30").
EPS = 1e-9

_NUMERIC_COLUMNS = ("accuracy", "kept", "ci_low", "ci_high", "updates")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([mMbB])\s*$")


# --------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------


def parse_size(s: str) -> float:
    """Parse a model size such as ``"135M"`` or ``"1.5B"`` into billions.

    ``"135M"`` -> 0.135, ``"0.5B"`` -> 0.5, ``"7B"`` -> 7.0, ``"14b"`` -> 14.0.
    Raises ValueError for anything else (including zero sizes).
    """
    if not isinstance(s, str):
        raise ValueError(
            f"invalid model size {s!r}: expected a string such as '135M' or '1.5B'"
        )
    m = _SIZE_RE.match(s)
    if not m:
        raise ValueError(
            f"invalid model size {s!r}: expected a number followed by M or B, "
            "e.g. '135M' or '1.5B'"
        )
    value = float(m.group(1))
    if value <= 0:
        raise ValueError(f"invalid model size {s!r}: size must be positive")
    return value / 1000.0 if m.group(2) in "mM" else value


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _to_float(value: Any) -> float:
    """float() that rejects bools, NaN and infinities."""
    if isinstance(value, bool):
        raise ValueError
    x = float(value.strip()) if isinstance(value, str) else float(value)
    if not math.isfinite(x):
        raise ValueError
    return x


def read_csv(
    path: str | Path,
    required_columns: Iterable[str],
    numeric_columns: Iterable[str] | None = None,
) -> list[dict]:
    """Read a CSV file into a list of dicts (values stripped strings).

    Checks that every column in ``required_columns`` is in the header and has a
    non-empty value in every row, and that every non-empty value in
    ``numeric_columns`` is a finite number.  By default ``numeric_columns`` is
    whichever of ``accuracy, kept, ci_low, ci_high, updates`` the file has;
    a ``student_size`` column, when present, must hold valid sizes.
    Any problem raises ValueError with one line naming the file (and line).
    """
    path = Path(path)
    required = list(required_columns)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise ValueError(f"{path}: file is empty (expected a header row)") from None
            header = [h.strip() for h in header]
            dupes = sorted({h for h in header if header.count(h) > 1 and h})
            if dupes:
                raise ValueError(f"{path}: duplicate column(s) in header: {', '.join(dupes)}")
            missing = [c for c in required if c not in header]
            if missing:
                raise ValueError(
                    f"{path}: missing required column(s) {', '.join(repr(c) for c in missing)}"
                    f" (header has: {', '.join(h for h in header if h) or 'nothing'})"
                )
            if numeric_columns is None:
                numeric = [c for c in _NUMERIC_COLUMNS if c in header]
            else:
                numeric = [c for c in numeric_columns if c in header]
            rows: list[dict] = []
            for raw in reader:
                line = reader.line_num
                if not raw or all(v.strip() == "" for v in raw):
                    continue  # blank line
                if len(raw) > len(header):
                    raise ValueError(
                        f"{path}, line {line}: {len(raw)} fields but the header has {len(header)}"
                    )
                values = [v.strip() for v in raw] + [""] * (len(header) - len(raw))
                row = {h: v for h, v in zip(header, values) if h}
                for c in required:
                    if row[c] == "":
                        raise ValueError(f"{path}, line {line}: empty value in column {c!r}")
                for c in numeric:
                    v = row[c]
                    if v == "":
                        continue
                    try:
                        _to_float(v)
                    except ValueError:
                        raise ValueError(
                            f"{path}, line {line}: column {c!r} has bad value {v!r} "
                            "(expected a number)"
                        ) from None
                if "student_size" in row and row["student_size"] != "":
                    try:
                        parse_size(row["student_size"])
                    except ValueError as exc:
                        raise ValueError(f"{path}, line {line}: {exc}") from None
                rows.append(row)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV ({exc})") from None
    return rows


def _text(row: Mapping, key: str, where: str) -> str:
    value = row.get(key)
    if _is_empty(value):
        raise ValueError(f"{where}: missing value for {key!r}")
    return str(value).strip()


def _num(row: Mapping, key: str, where: str, *, optional: bool = False) -> float | None:
    value = row.get(key)
    if _is_empty(value):
        if optional:
            return None
        raise ValueError(f"{where}: missing value for {key!r}")
    try:
        return _to_float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key!r} has bad value {value!r} (expected a number)") from None


def _accuracy(row: Mapping, where: str) -> float:
    acc = _num(row, "accuracy", where)
    assert acc is not None
    if not 0.0 <= acc <= 100.0:
        raise ValueError(f"{where}: accuracy {acc:g} is outside 0-100 (expected percent)")
    return acc


def _count(row: Mapping, key: str, where: str) -> int | None:
    x = _num(row, key, where, optional=True)
    if x is None:
        return None
    if x < 0 or not float(x).is_integer():
        raise ValueError(f"{where}: {key!r} must be a non-negative whole number, got {row.get(key)!r}")
    return int(x)


def _size(row: Mapping, where: str) -> tuple[str, float]:
    label = _text(row, "student_size", where)
    try:
        return label, parse_size(label)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _fmt(x: float) -> str:
    return f"{x:.1f}"


# --------------------------------------------------------------------------
# Task selection
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSelection:
    """Result of the task-selection rule for one task.

    ``gap = teacher_mean - student_mean`` (points); ``selected`` iff
    ``gap > threshold`` strictly.
    """

    task: str
    teacher_mean: float
    student_mean: float
    gap: float
    selected: bool
    n_teachers: int = 0
    n_students: int = 0


def select_tasks(rows: Sequence[Mapping], threshold: float = 30.0) -> list[TaskSelection]:
    """Decide which tasks are worth distilling.

    ``rows`` have ``task, model, role, accuracy`` (role ``teacher`` or
    ``student``, case-insensitive; accuracy in percent).  A task is selected
    iff mean teacher accuracy minus mean student accuracy is *strictly* greater
    than ``threshold`` (a gap of exactly the threshold is not selected).
    Tasks are returned in order of first appearance.  Raises ValueError on a
    bad role, a duplicated (task, model), or a task lacking teachers or
    students.
    """
    teachers: dict[str, list[float]] = {}
    students: dict[str, list[float]] = {}
    order: list[str] = []
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(rows, start=1):
        where = f"task-selection row {i}"
        task = _text(row, "task", where)
        model = _text(row, "model", where)
        role = _text(row, "role", where).lower()
        if role not in ("teacher", "student"):
            raise ValueError(
                f"{where} (task {task!r}, model {model!r}): role must be 'teacher' or "
                f"'student', got {row.get('role')!r}"
            )
        acc = _accuracy(row, where)
        if (task, model) in seen:
            raise ValueError(f"{where}: task {task!r} lists model {model!r} more than once")
        seen.add((task, model))
        if task not in teachers:
            order.append(task)
            teachers[task] = []
            students[task] = []
        (teachers if role == "teacher" else students)[task].append(acc)
    out = []
    for task in order:
        if not teachers[task]:
            raise ValueError(f"task {task!r} has no teacher rows (role 'teacher')")
        if not students[task]:
            raise ValueError(f"task {task!r} has no student rows (role 'student')")
        tm = sum(teachers[task]) / len(teachers[task])
        sm = sum(students[task]) / len(students[task])
        gap = tm - sm
        out.append(
            TaskSelection(
                task=task,
                teacher_mean=tm,
                student_mean=sm,
                gap=gap,
                selected=gap > threshold + EPS,
                n_teachers=len(teachers[task]),
                n_students=len(students[task]),
            )
        )
    return out


# --------------------------------------------------------------------------
# Result analysis
# --------------------------------------------------------------------------


@dataclass
class Cell:
    """One distilled configuration compared with the student's baseline."""

    setting: str
    teacher: str
    student: str
    student_size: str
    size: float  # billions of parameters
    distilled: float
    baseline: float
    diff: float  # distilled - baseline, points
    ci_low: float | None
    ci_high: float | None
    verdict: str  # HELPED / NO_CHANGE / HURT
    updates: int | None = None


@dataclass
class TeacherInfo:
    teacher: str
    accuracy: float | None
    kept: int | None


@dataclass
class CapacityGap:
    """Capacity-gap diagnostic for one pair of teachers within one setting."""

    setting: str
    stronger: str
    weaker: str
    basis: str  # "teacher accuracy" | "mean distilled score"
    stronger_strength: float
    weaker_strength: float
    sizes: list[str]
    advantages: list[float]  # weaker - stronger student accuracy, per size
    verdict: str
    detail: str


@dataclass
class MeanScore:
    setting: str
    teacher: str
    mean: float
    n: int


@dataclass
class TaskAnalysis:
    task: str
    cells: list[Cell]
    n_helped: int
    n_no_change: int
    n_hurt: int
    effective: bool
    teachers: list[TeacherInfo]
    strongest_teacher: str | None
    weakest_teacher: str | None
    kept_ratio: float | None  # math.inf if the weakest teacher kept nothing
    mean_scores: list[MeanScore]
    capacity_gaps: list[CapacityGap]
    recommendation: str
    recommended_teacher: str | None
    recommended_setting: str | None
    reason: str
    warnings: list[str] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        return len(self.cells)


def _verdict(diff: float, ci_low: float | None, ci_high: float | None, margin: float) -> str:
    if ci_low is not None and ci_high is not None:
        if ci_low > 0:
            return HELPED
        if ci_high < 0:
            return HURT
        return NO_CHANGE
    if diff > margin + EPS:
        return HELPED
    if diff < -margin - EPS:
        return HURT
    return NO_CHANGE


def _capacity_gap(
    setting: str,
    a: str,
    b: str,
    scores: Mapping[str, Mapping[float, float]],
    size_labels: Mapping[float, str],
    accuracy: Mapping[str, float | None],
    margin: float,
) -> CapacityGap:
    common = sorted(set(scores[a]) & set(scores[b]))
    acc_a, acc_b = accuracy.get(a), accuracy.get(b)
    if acc_a is not None and acc_b is not None:
        basis, str_a, str_b = "teacher accuracy", acc_a, acc_b
    else:
        basis = "mean distilled score"
        pool_a = common or sorted(scores[a])
        pool_b = common or sorted(scores[b])
        str_a = sum(scores[a][s] for s in pool_a) / len(pool_a)
        str_b = sum(scores[b][s] for s in pool_b) / len(pool_b)
    if str_a >= str_b:
        stronger, weaker, s_str, s_weak = a, b, str_a, str_b
    else:
        stronger, weaker, s_str, s_weak = b, a, str_b, str_a
    sizes = [size_labels[s] for s in common]
    adv = [scores[weaker][s] - scores[stronger][s] for s in common]

    def make(verdict: str, detail: str) -> CapacityGap:
        return CapacityGap(setting, stronger, weaker, basis, s_str, s_weak, sizes, adv, verdict, detail)

    if abs(str_a - str_b) <= EPS:
        return make(INSUFFICIENT, f"{a} and {b} have equal {basis}, so neither is the stronger teacher")
    if len(common) < 2:
        return make(
            INSUFFICIENT,
            f"{stronger} and {weaker} share {len(common)} student size(s); at least 2 are needed",
        )
    a_small, a_large = adv[0], adv[-1]
    s_small, s_large = sizes[0], sizes[-1]
    if a_small > margin + EPS and (a_small - a_large) > margin + EPS:
        how = "reverses" if a_large < -margin - EPS else "shrinks"
        return make(
            GAP_OBSERVED,
            f"weaker teacher {weaker} leads by {a_small:+.1f} at {s_small}, "
            f"{a_large:+.1f} at {s_large} (advantage {how})",
        )
    if a_small > margin + EPS:
        why = "persists" if a_large > margin + EPS else "does not shrink by more than the margin"
        return make(
            NO_GAP,
            f"weaker teacher {weaker} leads by {a_small:+.1f} at {s_small} and {a_large:+.1f} "
            f"at {s_large}: the advantage {why}",
        )
    return make(
        NO_GAP,
        f"weaker teacher {weaker} does not beat {stronger} by more than {margin:g} at the "
        f"smallest size {s_small} ({a_small:+.1f})",
    )


def analyse(
    distilled: Sequence[Mapping],
    baseline: Sequence[Mapping],
    teachers: Sequence[Mapping] | None = None,
    noise_margin: float = 1.0,
    kept_ratio_threshold: float = 1.3,
) -> list[TaskAnalysis]:
    """Analyse distillation results per task (tasks in order of first appearance).

    **Effectiveness.**  Every distilled row is a *cell* (setting, teacher,
    student) compared with the baseline row of the same task and student:
    ``diff = distilled - baseline``.  If the row has ``ci_low`` and
    ``ci_high`` (a 95 % interval of the difference) the verdict is *helped*
    when ``ci_low > 0``, *hurt* when ``ci_high < 0`` and *no significant
    change* otherwise; without an interval it is *helped* when
    ``diff > noise_margin``, *hurt* when ``diff < -noise_margin``.  The task is
    ``effective`` iff strictly more than half of its cells (over all settings)
    are *helped*.

    **Teachers.**  From the optional teacher rows (``task, teacher, accuracy``
    and optional ``kept``).  The strongest / weakest teachers are those with
    the highest / lowest accuracy; ``kept_ratio = kept(strongest) /
    kept(weakest)`` when both counts are known and the accuracies differ
    (``math.inf`` if the weakest kept none).

    **Capacity gap.**  For each setting and each pair of teachers distilled in
    it, the *stronger* teacher is the one with higher teacher accuracy (when
    both have teacher rows), otherwise the one whose students have the higher
    mean distilled score over the student sizes both teachers share.  Let
    ``s_1 < ... < s_n`` be those shared sizes and
    ``adv(s) = acc(weaker's student at s) - acc(stronger's student at s)``.
    Verdict:

    * ``insufficient data`` if ``n < 2`` or the two strengths are equal;
    * ``capacity gap observed`` iff ``adv(s_1) > noise_margin`` (the weaker
      teacher wins clearly at the smallest size) **and**
      ``adv(s_1) - adv(s_n) > noise_margin`` (at the largest size that
      advantage has shrunk by more than the margin - which includes every
      reversal, since then ``adv(s_n) < 0``);
    * ``no capacity gap`` otherwise (stronger teacher as good or better at the
      smallest size, or the weaker teacher's advantage persists).

    Intermediate sizes are reported in ``advantages`` but do not affect the
    verdict; ``noise_margin`` is used even when intervals are given (they are
    intervals of distilled - baseline, not of teacher-vs-teacher differences).

    **Recommendation** (one-sentence ``reason``):

    1. not effective -> ``"do not distil: use the pre-distillation student"``;
    2. else if ``kept_ratio >= kept_ratio_threshold`` -> prefer the strongest
       teacher;
    3. else prefer the (setting, teacher) whose students have the best mean
       distilled accuracy over its cells.

    **Warnings.**  If rows carry an ``updates`` column and, for the same task
    and student, the compared distilled configurations were trained with
    different numbers of optimizer updates, a warning names them.  Also warns
    when the teachers were evaluated on different student sizes (their means
    are not directly comparable), and when every accuracy is <= 1 (fractions
    instead of percent?).

    Raises ValueError for malformed rows, duplicate rows, or a distilled row
    without a matching baseline row.
    """
    if noise_margin < 0 or not math.isfinite(noise_margin):
        raise ValueError(f"noise margin must be a non-negative number, got {noise_margin!r}")
    if not kept_ratio_threshold > 0 or not math.isfinite(kept_ratio_threshold):
        raise ValueError(f"kept-ratio threshold must be positive, got {kept_ratio_threshold!r}")

    # ---- baseline ---------------------------------------------------------
    base: dict[tuple[str, str], tuple[float, str, float]] = {}
    for i, row in enumerate(baseline, start=1):
        where = f"baseline row {i}"
        task = _text(row, "task", where)
        student = _text(row, "student", where)
        label, size = _size(row, where)
        acc = _accuracy(row, where)
        if (task, student) in base:
            raise ValueError(f"{where}: duplicate baseline for task {task!r}, student {student!r}")
        base[(task, student)] = (acc, label, size)

    # ---- teachers ---------------------------------------------------------
    teacher_rows: dict[str, dict[str, TeacherInfo]] = {}
    for i, row in enumerate(teachers or [], start=1):
        where = f"teacher row {i}"
        task = _text(row, "task", where)
        name = _text(row, "teacher", where)
        acc = _accuracy(row, where)
        kept = _count(row, "kept", where)
        per = teacher_rows.setdefault(task, {})
        if name in per:
            raise ValueError(f"{where}: duplicate teacher {name!r} for task {task!r}")
        per[name] = TeacherInfo(name, acc, kept)

    # ---- distilled cells --------------------------------------------------
    cells_by_task: dict[str, list[Cell]] = {}
    seen: set[tuple[str, str, str, str]] = set()
    all_acc: list[float] = []
    for i, row in enumerate(distilled, start=1):
        where = f"distilled row {i}"
        setting = _text(row, "setting", where)
        task = _text(row, "task", where)
        teacher = _text(row, "teacher", where)
        student = _text(row, "student", where)
        label, size = _size(row, where)
        acc = _accuracy(row, where)
        lo = _num(row, "ci_low", where, optional=True)
        hi = _num(row, "ci_high", where, optional=True)
        if (lo is None) != (hi is None):
            raise ValueError(f"{where}: give both 'ci_low' and 'ci_high' or neither")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{where}: ci_low {lo:g} is greater than ci_high {hi:g}")
        updates = _count(row, "updates", where)
        key = (task, setting, teacher, student)
        if key in seen:
            raise ValueError(
                f"{where}: duplicate result for task {task!r}, setting {setting!r}, "
                f"teacher {teacher!r}, student {student!r}"
            )
        seen.add(key)
        if (task, student) not in base:
            raise ValueError(
                f"{where}: no baseline row for task {task!r}, student {student!r} "
                "(the pre-distillation baseline is required)"
            )
        b_acc, b_label, b_size = base[(task, student)]
        if abs(b_size - size) > EPS:
            raise ValueError(
                f"{where}: student {student!r} has size {label} here but {b_label} in the baseline"
            )
        diff = acc - b_acc
        all_acc.extend([acc, b_acc])
        cells_by_task.setdefault(task, []).append(
            Cell(setting, teacher, student, label, size, acc, b_acc, diff, lo, hi,
                 _verdict(diff, lo, hi, noise_margin), updates)
        )

    fraction_warning = bool(all_acc) and max(all_acc) <= 1.0 and any(a > 0 for a in all_acc)

    out: list[TaskAnalysis] = []
    for task, cells in cells_by_task.items():
        warnings: list[str] = []
        if fraction_warning:
            warnings.append(
                "every accuracy is at most 1: were fractions given instead of percentages?"
            )
        cells = sorted(cells, key=lambda c: (c.size, c.setting, c.teacher, c.student))
        n_helped = sum(c.verdict == HELPED for c in cells)
        n_hurt = sum(c.verdict == HURT for c in cells)
        n_no = len(cells) - n_helped - n_hurt
        effective = 2 * n_helped > len(cells)

        # teachers: those with rows (by accuracy, strongest first), then the
        # distilled teachers without a row.
        per = teacher_rows.get(task, {})
        tinfo = sorted(per.values(), key=lambda t: (-(t.accuracy or 0.0), t.teacher))
        for name in dict.fromkeys(c.teacher for c in cells):
            if name not in per:
                tinfo.append(TeacherInfo(name, None, None))
        ranked = [t for t in tinfo if t.accuracy is not None]
        strongest = weakest = None
        kept_ratio: float | None = None
        if len(ranked) >= 2 and ranked[0].accuracy - ranked[-1].accuracy > EPS:  # type: ignore[operator]
            strongest, weakest = ranked[0], ranked[-1]
            if strongest.kept is not None and weakest.kept is not None:
                if weakest.kept > 0:
                    kept_ratio = strongest.kept / weakest.kept
                elif strongest.kept > 0:
                    kept_ratio = math.inf
                    warnings.append(
                        f"weakest teacher {weakest.teacher} kept no training examples: "
                        "the kept ratio is infinite"
                    )
        elif len(ranked) >= 2:
            warnings.append("all teachers have the same accuracy: no stronger teacher to compare")
        accuracy = {t.teacher: t.accuracy for t in tinfo}

        # mean distilled score per (setting, teacher)
        groups: dict[tuple[str, str], list[Cell]] = {}
        for c in cells:
            groups.setdefault((c.setting, c.teacher), []).append(c)
        means = [
            MeanScore(s, t, sum(c.distilled for c in cs) / len(cs), len(cs))
            for (s, t), cs in groups.items()
        ]
        means.sort(key=lambda m: (-m.mean, m.setting, m.teacher))
        size_sets = {k: frozenset(c.size for c in cs) for k, cs in groups.items()}
        if len(set(size_sets.values())) > 1:
            warnings.append(
                "the compared configurations were evaluated on different student sizes, "
                "so their mean scores are not directly comparable"
            )

        # capacity gap per setting and teacher pair
        gaps: list[CapacityGap] = []
        settings = list(dict.fromkeys(c.setting for c in cells_by_task[task]))
        for setting in settings:
            scores: dict[str, dict[float, float]] = {}
            labels: dict[float, str] = {}
            for c in cells:
                if c.setting == setting:
                    scores.setdefault(c.teacher, {})[c.size] = c.distilled
                    labels.setdefault(c.size, c.student_size)
            for a, b in itertools.combinations(sorted(scores), 2):
                gaps.append(_capacity_gap(setting, a, b, scores, labels, accuracy, noise_margin))

        # optimizer-updates check: compared configurations = same student
        by_student: dict[str, list[Cell]] = {}
        for c in cells:
            if c.updates is not None:
                by_student.setdefault(c.student, []).append(c)
        for student, cs in by_student.items():
            if len({c.updates for c in cs}) > 1:
                listing = ", ".join(f"{c.setting}/{c.teacher}={c.updates}" for c in cs)
                warnings.append(
                    f"student {student} ({cs[0].student_size}): configurations differ in "
                    f"optimizer updates ({listing}); differences may reflect training length"
                )

        # recommendation
        multi_setting = len({c.setting for c in cells}) > 1
        rec_teacher: str | None = None
        rec_setting: str | None = None
        if not effective:
            recommendation = DO_NOT_DISTIL
            reason = (
                f"Distillation beat the pre-distillation baseline in only {n_helped} of "
                f"{len(cells)} (teacher, student-size) cells, which is not more than half."
            )
        elif (
            kept_ratio is not None
            and strongest is not None
            and weakest is not None
            and kept_ratio >= kept_ratio_threshold - EPS
        ):
            rec_teacher = strongest.teacher
            recommendation = f"prefer the stronger teacher: {rec_teacher}"
            ratio_txt = "infinitely many" if math.isinf(kept_ratio) else f"{kept_ratio:.2f}x as many"
            reason = (
                f"{strongest.teacher} ({_fmt(strongest.accuracy or 0)}%) keeps {ratio_txt} correct "
                f"training examples as {weakest.teacher} ({_fmt(weakest.accuracy or 0)}%), at or "
                f"above the {kept_ratio_threshold:g}x ratio that consistently favoured stronger teachers."
            )
        else:
            best = means[0]
            rec_teacher, rec_setting = best.teacher, best.setting
            label = f"{best.teacher} ({best.setting})" if multi_setting else best.teacher
            recommendation = f"prefer teacher {label}"
            if kept_ratio is not None and strongest is not None and weakest is not None:
                lead = (
                    f"The kept-example ratio {strongest.teacher}/{weakest.teacher} is "
                    f"{kept_ratio:.2f}x, below {kept_ratio_threshold:g}x"
                )
            elif strongest is not None:
                lead = "Kept-example counts are unknown"
            else:
                lead = "No teacher-strength comparison is available"
            if len(means) > 1:
                nxt = means[1]
                nlabel = f"{nxt.teacher} ({nxt.setting})" if multi_setting else nxt.teacher
                tail = f", ahead of {nlabel} at {_fmt(nxt.mean)}%"
            else:
                tail = ""
            reason = (
                f"{lead}, so prefer the teacher whose students score best on average: {label} "
                f"with a mean distilled accuracy of {_fmt(best.mean)}%{tail}."
            )

        out.append(
            TaskAnalysis(
                task=task,
                cells=cells,
                n_helped=n_helped,
                n_no_change=n_no,
                n_hurt=n_hurt,
                effective=effective,
                teachers=tinfo,
                strongest_teacher=strongest.teacher if strongest else None,
                weakest_teacher=weakest.teacher if weakest else None,
                kept_ratio=kept_ratio,
                mean_scores=means,
                capacity_gaps=gaps,
                recommendation=recommendation,
                recommended_teacher=rec_teacher,
                recommended_setting=rec_setting,
                reason=reason,
                warnings=warnings,
            )
        )
    return out


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def to_json(analyses: Sequence[TaskAnalysis]) -> dict:
    """JSON-serialisable dict of the analyses (schema in the module docstring)."""
    tasks = []
    for a in analyses:
        infinite = a.kept_ratio is not None and math.isinf(a.kept_ratio)
        tasks.append(
            {
                "task": a.task,
                "effective": a.effective,
                "n_cells": a.n_cells,
                "n_helped": a.n_helped,
                "n_no_change": a.n_no_change,
                "n_hurt": a.n_hurt,
                "cells": [
                    {
                        "setting": c.setting,
                        "teacher": c.teacher,
                        "student": c.student,
                        "student_size": c.student_size,
                        "student_size_b": c.size,
                        "distilled": c.distilled,
                        "baseline": c.baseline,
                        "diff": c.diff,
                        "ci_low": c.ci_low,
                        "ci_high": c.ci_high,
                        "verdict": c.verdict,
                        "updates": c.updates,
                    }
                    for c in a.cells
                ],
                "teachers": [
                    {"teacher": t.teacher, "accuracy": t.accuracy, "kept": t.kept} for t in a.teachers
                ],
                "strongest_teacher": a.strongest_teacher,
                "weakest_teacher": a.weakest_teacher,
                "kept_ratio": None if infinite else a.kept_ratio,
                "kept_ratio_infinite": infinite,
                "mean_scores": [
                    {"setting": m.setting, "teacher": m.teacher, "mean": m.mean, "n": m.n}
                    for m in a.mean_scores
                ],
                "capacity_gaps": [
                    {
                        "setting": g.setting,
                        "stronger": g.stronger,
                        "weaker": g.weaker,
                        "basis": g.basis,
                        "stronger_strength": g.stronger_strength,
                        "weaker_strength": g.weaker_strength,
                        "sizes": list(g.sizes),
                        "advantages": list(g.advantages),
                        "verdict": g.verdict,
                        "detail": g.detail,
                    }
                    for g in a.capacity_gaps
                ],
                "recommendation": a.recommendation,
                "recommended_teacher": a.recommended_teacher,
                "recommended_setting": a.recommended_setting,
                "reason": a.reason,
                "warnings": list(a.warnings),
            }
        )
    return {"schema_version": 1, "tasks": tasks}


_VERDICT_STYLE = {HELPED: "green", NO_CHANGE: "yellow", HURT: "red"}
_GAP_STYLE = {GAP_OBSERVED: "magenta", NO_GAP: "", INSUFFICIENT: "dim"}


def render_selection(selections: Sequence[TaskSelection], console: Any, threshold: float = 30.0) -> None:
    """Print the task-selection results as a rich table."""
    from rich.table import Table

    table = Table(title=f"Task selection (teacher mean - student mean > {threshold:g} points)")
    for col in ("task", "teacher mean", "student mean", "gap", "selected"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for s in selections:
        table.add_row(
            s.task,
            _fmt(s.teacher_mean),
            _fmt(s.student_mean),
            _fmt(s.gap),
            "[green]yes[/green]" if s.selected else "[red]no[/red]",
        )
    console.print(table)


def render_tables(analyses: Sequence[TaskAnalysis], console: Any) -> None:
    """Print the analyses to a ``rich`` console: a summary, then per-task tables."""
    from rich.markup import escape
    from rich.table import Table

    summary = Table(title="Distillation analysis")
    for col in ("task", "effective", "helped / cells", "kept ratio", "recommendation"):
        summary.add_column(col)
    for a in analyses:
        if a.kept_ratio is None:
            ratio = "-"
        elif math.isinf(a.kept_ratio):
            ratio = "inf"
        else:
            ratio = f"{a.kept_ratio:.2f}x"
        summary.add_row(
            escape(a.task),
            "[green]yes[/green]" if a.effective else "[red]no[/red]",
            f"{a.n_helped} / {a.n_cells}",
            ratio,
            escape(a.recommendation),
        )
    console.print(summary)

    for a in analyses:
        cells = Table(title=f"{escape(a.task)}: distilled vs pre-distillation baseline")
        for col in ("setting", "teacher", "student", "size", "distilled", "baseline", "diff", "95% CI", "verdict"):
            cells.add_column(col, justify="right" if col in ("distilled", "baseline", "diff", "95% CI") else "left")
        for c in a.cells:
            ci = "-" if c.ci_low is None else f"[{c.ci_low:+.1f}, {c.ci_high:+.1f}]"
            style = _VERDICT_STYLE[c.verdict]
            cells.add_row(
                escape(c.setting), escape(c.teacher), escape(c.student), escape(c.student_size),
                _fmt(c.distilled), _fmt(c.baseline), f"{c.diff:+.1f}", ci,
                f"[{style}]{c.verdict}[/{style}]",
            )
        console.print(cells)

        if any(t.accuracy is not None or t.kept is not None for t in a.teachers):
            tt = Table(title=f"{escape(a.task)}: teachers")
            tt.add_column("teacher")
            tt.add_column("accuracy", justify="right")
            tt.add_column("kept", justify="right")
            for t in a.teachers:
                tt.add_row(
                    escape(t.teacher),
                    "-" if t.accuracy is None else _fmt(t.accuracy),
                    "-" if t.kept is None else str(t.kept),
                )
            console.print(tt)

        if a.capacity_gaps:
            gt = Table(title=f"{escape(a.task)}: capacity gap (weaker - stronger teacher's student)")
            for col in ("setting", "stronger", "weaker", "basis", "advantage by size", "verdict"):
                gt.add_column(col)
            for g in a.capacity_gaps:
                adv = ", ".join(f"{s}: {v:+.1f}" for s, v in zip(g.sizes, g.advantages)) or "-"
                style = _GAP_STYLE[g.verdict]
                verdict = f"[{style}]{g.verdict}[/{style}]" if style else g.verdict
                gt.add_row(escape(g.setting), escape(g.stronger), escape(g.weaker), g.basis, adv, verdict)
            console.print(gt)

        console.print(f"[bold]{escape(a.task)}[/bold]: {escape(a.recommendation)}. {escape(a.reason)}")
        for w in a.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(a.task)}: {escape(w)}")
        console.print()
