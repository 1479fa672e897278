"""Analysis of chain-of-thought distillation results.

Implements the practitioner guidelines of Kajitsuka et al., "Revisiting the
Capacity Gap in CoT Distillation from a Practical Perspective":

1. Distillation must beat the student's *pre-distillation* few-shot baseline.
2. When candidate teachers differ substantially, prefer the stronger one:
   stronger teachers solve (and so keep) more training examples, and a ratio of
   about 1.3x or more in kept examples consistently favoured them.

plus a diagnostic for the *capacity gap* (a weaker teacher giving better
students at the smallest student sizes, an advantage that shrinks or reverses
as the student grows).  The task-selection rule that comes before distilling
lives in :mod:`cotgap.report.selection`.

:func:`analyse` is a pure function over lists of row dicts (the distilled,
baseline and teachers tables described in :mod:`cotgap.report.tables`, e.g.
from :func:`cotgap.report.tables.read_csv`).  Invalid input raises
:class:`ValueError` with a one-line message; the CLI turns that into exit
status 2.  Its results are written as JSON by :mod:`cotgap.report.analysis_json`
and printed by :mod:`cotgap.report.terminal`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cotgap.report.tables import EPS, row_accuracy, row_count, row_num, row_size, row_text

__all__ = [
    "HELPED",
    "NO_CHANGE",
    "HURT",
    "GAP_OBSERVED",
    "NO_GAP",
    "INSUFFICIENT",
    "DO_NOT_DISTIL",
    "Cell",
    "TeacherInfo",
    "CapacityGap",
    "MeanScore",
    "TaskAnalysis",
    "analyse",
    "one_decimal",
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


def one_decimal(x: float) -> str:
    """A percentage or a gap in points as shown in reasons and tables: one decimal."""
    return f"{x:.1f}"


# --------------------------------------------------------------------------
# Results
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
    """A teacher of one task: its accuracy and kept training examples (None when unknown)."""

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
    """Mean distilled accuracy of one (setting, teacher) over its ``n`` cells."""

    setting: str
    teacher: str
    mean: float
    n: int


@dataclass
class TaskAnalysis:
    """Everything :func:`analyse` concludes for one task (fields as in the JSON of :mod:`cotgap.report.analysis_json`)."""

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
        """How many (setting, teacher, student) cells the task has."""
        return len(self.cells)


# --------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------


def _verdict(diff: float, ci_low: float | None, ci_high: float | None, margin: float) -> str:
    """Helped / no change / hurt for one cell: by its interval when given, else by the noise margin."""
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
    """Capacity-gap verdict for teachers ``a`` and ``b`` in one setting (rule in :func:`analyse`)."""
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
        """The diagnostic with this verdict and explanation."""
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




# --------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------


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
    _check_parameters(noise_margin, kept_ratio_threshold)
    base = _baselines(baseline)
    teacher_rows = _teachers_by_task(teachers or [])
    cells_by_task = _cells_by_task(distilled, base, noise_margin)
    fractions = _looks_like_fractions(cells_by_task)
    return [
        _analyse_task(task, cells, teacher_rows.get(task, {}), fractions, noise_margin, kept_ratio_threshold)
        for task, cells in cells_by_task.items()
    ]


def _check_parameters(noise_margin: float, kept_ratio_threshold: float) -> None:
    """Reject a negative or non-finite noise margin and a non-positive kept-ratio threshold."""
    if noise_margin < 0 or not math.isfinite(noise_margin):
        raise ValueError(f"noise margin must be a non-negative number, got {noise_margin!r}")
    if not kept_ratio_threshold > 0 or not math.isfinite(kept_ratio_threshold):
        raise ValueError(f"kept-ratio threshold must be positive, got {kept_ratio_threshold!r}")


# ---- reading the three tables ----------------------------------------------


def _baselines(baseline: Sequence[Mapping]) -> dict[tuple[str, str], tuple[float, str, float]]:
    """(task, student) -> (baseline accuracy, size label, size) from the baseline rows, one per student."""
    base: dict[tuple[str, str], tuple[float, str, float]] = {}
    for i, row in enumerate(baseline, start=1):
        where = f"baseline row {i}"
        task = row_text(row, "task", where)
        student = row_text(row, "student", where)
        label, size = row_size(row, where)
        acc = row_accuracy(row, where)
        if (task, student) in base:
            raise ValueError(f"{where}: duplicate baseline for task {task!r}, student {student!r}")
        base[(task, student)] = (acc, label, size)
    return base


def _teachers_by_task(teachers: Sequence[Mapping]) -> dict[str, dict[str, TeacherInfo]]:
    """task -> teacher name -> TeacherInfo from the teacher rows, one per teacher and task."""
    teacher_rows: dict[str, dict[str, TeacherInfo]] = {}
    for i, row in enumerate(teachers, start=1):
        where = f"teacher row {i}"
        task = row_text(row, "task", where)
        name = row_text(row, "teacher", where)
        acc = row_accuracy(row, where)
        kept = row_count(row, "kept", where)
        per = teacher_rows.setdefault(task, {})
        if name in per:
            raise ValueError(f"{where}: duplicate teacher {name!r} for task {task!r}")
        per[name] = TeacherInfo(name, acc, kept)
    return teacher_rows


def _cells_by_task(
    distilled: Sequence[Mapping],
    base: Mapping[tuple[str, str], tuple[float, str, float]],
    noise_margin: float,
) -> dict[str, list[Cell]]:
    """Every distilled row as a Cell, grouped per task (tasks and cells in input order)."""
    cells_by_task: dict[str, list[Cell]] = {}
    seen: set[tuple[str, str, str, str]] = set()
    for i, row in enumerate(distilled, start=1):
        cell_task, cell = _cell(row, f"distilled row {i}", base, seen, noise_margin)
        cells_by_task.setdefault(cell_task, []).append(cell)
    return cells_by_task


def _cell(
    row: Mapping,
    where: str,
    base: Mapping[tuple[str, str], tuple[float, str, float]],
    seen: set[tuple[str, str, str, str]],
    noise_margin: float,
) -> tuple[str, Cell]:
    """(task, cell) of one distilled row, checked for duplicates (recorded in ``seen``) and against its baseline."""
    setting = row_text(row, "setting", where)
    task = row_text(row, "task", where)
    teacher = row_text(row, "teacher", where)
    student = row_text(row, "student", where)
    label, size = row_size(row, where)
    acc = row_accuracy(row, where)
    lo = row_num(row, "ci_low", where, optional=True)
    hi = row_num(row, "ci_high", where, optional=True)
    if (lo is None) != (hi is None):
        raise ValueError(f"{where}: give both 'ci_low' and 'ci_high' or neither")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"{where}: ci_low {lo:g} is greater than ci_high {hi:g}")
    updates = row_count(row, "updates", where)
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
    return task, Cell(setting, teacher, student, label, size, acc, b_acc, diff, lo, hi,
                      _verdict(diff, lo, hi, noise_margin), updates)


def _looks_like_fractions(cells_by_task: Mapping[str, Sequence[Cell]]) -> bool:
    """Whether every accuracy (distilled and baseline) is at most 1 and some is positive."""
    all_acc = [a for cells in cells_by_task.values() for c in cells for a in (c.distilled, c.baseline)]
    return bool(all_acc) and max(all_acc) <= 1.0 and any(a > 0 for a in all_acc)


# ---- one task ---------------------------------------------------------------


@dataclass
class _Ranking:
    """The teachers of one task, strongest first, and the strongest / weakest pair when they differ."""

    teachers: list[TeacherInfo]
    strongest: TeacherInfo | None
    weakest: TeacherInfo | None
    kept_ratio: float | None


def _analyse_task(
    task: str,
    cells: Sequence[Cell],
    per: Mapping[str, TeacherInfo],
    fractions: bool,
    noise_margin: float,
    kept_ratio_threshold: float,
) -> TaskAnalysis:
    """The TaskAnalysis of one task from its cells (input order) and its teacher rows."""
    warnings: list[str] = []
    if fractions:
        warnings.append(
            "every accuracy is at most 1: were fractions given instead of percentages?"
        )
    settings = list(dict.fromkeys(c.setting for c in cells))
    cells = sorted(cells, key=lambda c: (c.size, c.setting, c.teacher, c.student))
    n_helped = sum(c.verdict == HELPED for c in cells)
    n_hurt = sum(c.verdict == HURT for c in cells)
    effective = 2 * n_helped > len(cells)
    ranking = _rank_teachers(per, cells, warnings)
    means = _mean_scores(cells, warnings)
    accuracy = {t.teacher: t.accuracy for t in ranking.teachers}
    gaps = _capacity_gaps(cells, settings, accuracy, noise_margin)
    warnings.extend(_updates_warnings(cells))
    if effective:
        recommendation, rec_teacher, rec_setting, reason = _recommend(cells, ranking, means, kept_ratio_threshold)
    else:
        recommendation, rec_teacher, rec_setting = DO_NOT_DISTIL, None, None
        reason = (
            f"Distillation beat the pre-distillation baseline in only {n_helped} of "
            f"{len(cells)} (teacher, student-size) cells, which is not more than half."
        )
    return TaskAnalysis(
        task=task,
        cells=cells,
        n_helped=n_helped,
        n_no_change=len(cells) - n_helped - n_hurt,
        n_hurt=n_hurt,
        effective=effective,
        teachers=ranking.teachers,
        strongest_teacher=ranking.strongest.teacher if ranking.strongest else None,
        weakest_teacher=ranking.weakest.teacher if ranking.weakest else None,
        kept_ratio=ranking.kept_ratio,
        mean_scores=means,
        capacity_gaps=gaps,
        recommendation=recommendation,
        recommended_teacher=rec_teacher,
        recommended_setting=rec_setting,
        reason=reason,
        warnings=warnings,
    )


def _rank_teachers(per: Mapping[str, TeacherInfo], cells: Sequence[Cell], warnings: list[str]) -> _Ranking:
    """Teachers with rows by accuracy, then the distilled ones without; appends ranking warnings."""
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
    return _Ranking(tinfo, strongest, weakest, kept_ratio)


def _mean_scores(cells: Sequence[Cell], warnings: list[str]) -> list[MeanScore]:
    """Mean distilled score per (setting, teacher), best first; warns when their student sizes differ."""
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
    return means


def _capacity_gaps(
    cells: Sequence[Cell],
    settings: Sequence[str],
    accuracy: Mapping[str, float | None],
    noise_margin: float,
) -> list[CapacityGap]:
    """The capacity-gap diagnostic for every setting (in ``settings`` order) and pair of its teachers."""
    gaps: list[CapacityGap] = []
    for setting in settings:
        scores: dict[str, dict[float, float]] = {}
        labels: dict[float, str] = {}
        for c in cells:
            if c.setting == setting:
                scores.setdefault(c.teacher, {})[c.size] = c.distilled
                labels.setdefault(c.size, c.student_size)
        for a, b in itertools.combinations(sorted(scores), 2):
            gaps.append(_capacity_gap(setting, a, b, scores, labels, accuracy, noise_margin))
    return gaps


def _updates_warnings(cells: Sequence[Cell]) -> list[str]:
    """A warning per student whose compared configurations were trained for different numbers of updates."""
    by_student: dict[str, list[Cell]] = {}
    for c in cells:
        if c.updates is not None:
            by_student.setdefault(c.student, []).append(c)
    warnings = []
    for student, cs in by_student.items():
        if len({c.updates for c in cs}) > 1:
            listing = ", ".join(f"{c.setting}/{c.teacher}={c.updates}" for c in cs)
            warnings.append(
                f"student {student} ({cs[0].student_size}): configurations differ in "
                f"optimizer updates ({listing}); differences may reflect training length"
            )
    return warnings


# ---- recommendation (distillation effective) --------------------------------


def _recommend(
    cells: Sequence[Cell], ranking: _Ranking, means: Sequence[MeanScore], kept_ratio_threshold: float
) -> tuple[str, str | None, str | None, str]:
    """(recommendation, teacher, setting, reason) by rule 2 (kept ratio) or else rule 3 (best mean)."""
    kept_ratio, strongest, weakest = ranking.kept_ratio, ranking.strongest, ranking.weakest
    if (
        kept_ratio is not None
        and strongest is not None
        and weakest is not None
        and kept_ratio >= kept_ratio_threshold - EPS
    ):
        ratio_txt = "infinitely many" if math.isinf(kept_ratio) else f"{kept_ratio:.2f}x as many"
        reason = (
            f"{strongest.teacher} ({one_decimal(strongest.accuracy or 0)}%) keeps {ratio_txt} correct "
            f"training examples as {weakest.teacher} ({one_decimal(weakest.accuracy or 0)}%), at or "
            f"above the {kept_ratio_threshold:g}x ratio that consistently favoured stronger teachers."
        )
        return f"prefer the stronger teacher: {strongest.teacher}", strongest.teacher, None, reason
    return _recommend_best_mean(cells, ranking, means, kept_ratio_threshold)


def _recommend_best_mean(
    cells: Sequence[Cell], ranking: _Ranking, means: Sequence[MeanScore], kept_ratio_threshold: float
) -> tuple[str, str | None, str | None, str]:
    """(recommendation, teacher, setting, reason) for rule 3: the configuration whose students score best."""
    kept_ratio, strongest, weakest = ranking.kept_ratio, ranking.strongest, ranking.weakest
    multi_setting = len({c.setting for c in cells}) > 1
    best = means[0]
    label = f"{best.teacher} ({best.setting})" if multi_setting else best.teacher
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
        tail = f", ahead of {nlabel} at {one_decimal(nxt.mean)}%"
    else:
        tail = ""
    reason = (
        f"{lead}, so prefer the teacher whose students score best on average: {label} "
        f"with a mean distilled accuracy of {one_decimal(best.mean)}%{tail}."
    )
    return f"prefer teacher {label}", best.teacher, best.setting, reason
