"""Analysis of chain-of-thought distillation results.

Implements the practitioner guidelines of Kajitsuka et al., "Revisiting the
Capacity Gap in CoT Distillation from a Practical Perspective":

1. Distillation must beat the student's *pre-distillation* few-shot baseline.
2. Where candidate teachers' distilled students are tied within noise, prefer
   the teacher yielding about 1.3x or more kept (correct) training examples:
   that ratio consistently favoured stronger teachers.

plus a diagnostic for the *capacity gap* (a less capable teacher giving better
students at the smallest student sizes, an advantage that shrinks or reverses
as the student grows).  The task-selection rule that comes before distilling
lives in :mod:`cotgap.report.selection`.

:func:`analyse` is a pure function over lists of row dicts (the distilled,
baseline and teachers tables described in :mod:`cotgap.report.tables`, e.g.
from :func:`cotgap.report.tables.read_csv`).  Invalid input raises
:class:`ValueError` with a one-line message; the CLI turns that into exit
status 2.  Its results are written as JSON by :mod:`cotgap.report.analysis_json`
and printed by :mod:`cotgap.report.terminal`; the rules live in their own
modules: :mod:`~cotgap.report.capacity`, :mod:`~cotgap.report.capacity_gap`,
:mod:`~cotgap.report.recommend`, :mod:`~cotgap.report.replicates`,
:mod:`~cotgap.report.noise`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from cotgap.protocol.constants import ALPHA, CAPACITY_RATIO, KEPT_RATIO, NOISE_Z
from cotgap.protocol.stats import holm, mcnemar_p
from cotgap.protocol.stats import verdict as exact_verdict
from cotgap.report import capacity, capacity_gap, recommend, replicates
from cotgap.report import teacher_rows as teacher_rows_mod
from cotgap.report.noise import Noise
from cotgap.report.results import (
    BY_EFFECTIVENESS,
    DO_NOT_DISTIL,
    GAP_OBSERVED,
    HELPED,
    HURT,
    INSUFFICIENT,
    NO_CHANGE,
    NO_GAP,
    CapacityGap,
    Cell,
    MeanScore,
    ReplicateGroup,
    TaskAnalysis,
    TeacherInfo,
    one_decimal,
)
from cotgap.report.tables import EPS, parse_size, row_accuracy, row_count, row_num, row_size, row_text

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
    "ReplicateGroup",
    "TaskAnalysis",
    "analyse",
    "one_decimal",
]

_Base = Mapping[tuple[str, str], tuple[float, str, float]]  # (task, student) -> (accuracy, size label, size)


def analyse(
    distilled: Sequence[Mapping],
    baseline: Sequence[Mapping],
    teachers: Sequence[Mapping] | None = None,
    noise_margin: float | None = None,
    kept_ratio_threshold: float = KEPT_RATIO,
    *,
    alpha: float = ALPHA,
    noise_z: float = NOISE_Z,
    capacity_ratio: float = CAPACITY_RATIO,
) -> list[TaskAnalysis]:
    """Analyse distillation results per task (tasks in order of first appearance).

    **Cells.**  Every distilled row is a *cell* (setting, teacher, student,
    seed) compared with the baseline row of the same task and student:
    ``diff = distilled - baseline``.  Its verdict, by the first rule its row
    allows:

    1. with a ``p_value`` (or ``wins``/``losses``, from which McNemar's exact
       p-value is computed): the p-values of *all* cells of this call (every
       task) are one family, adjusted by Holm's step-down method; *helped* if
       the adjusted p < ``alpha`` and wins > losses (or diff > 0 without
       counts), *hurt* if adjusted p < ``alpha`` the other way, else *no
       significant change*;
    2. with ``ci_low``/``ci_high``: *helped* if ``ci_low > 0``, *hurt* if
       ``ci_high < 0``;
    3. otherwise *helped* / *hurt* when ``|diff|`` exceeds the noise margin
       of a difference of two accuracies (:mod:`cotgap.report.noise`).

    The task is ``effective`` iff strictly more than half of its cells (each
    run once, replicate seeds included) are *helped*.

    **Teachers.**  From the optional teacher rows, completed with the
    ``capacity`` / ``role`` / ``teacher_size`` the distilled rows declare, and
    sized from their names where nothing else sizes them
    (:mod:`cotgap.report.teacher_rows`).  Capacity orders them
    (:mod:`cotgap.report.capacity`: declared ``capacity`` / ``role``, else
    parameters, else CoT length; ``capacity_ratio`` is the factor within
    which two measures are equal), never accuracy.  ``strongest`` /
    ``weakest`` exist when the order is total; ``kept_ratio = kept(strongest)
    / kept(weakest)`` (``math.inf`` if the weakest kept none), kept counting
    distinct questions.

    **Capacity gap** per setting and pair of its teachers:
    :mod:`cotgap.report.capacity_gap` (smaller half of the shared student
    sizes against the larger half, margins from the test-set size).

    **Recommendation**: not effective -> ``"do not distil: use the
    pre-distillation student"``; else :mod:`cotgap.report.recommend`
    (distilled accuracy decides; the kept ratio ``kept_ratio_threshold``
    only breaks ties within noise).  ``decided_by`` names the rule.

    **Noise margins**: ``noise_z`` standard errors at the rows' test-set size
    ``n``; ``noise_margin`` (points), when given, overrides them everywhere.

    **Warnings / notes.**  Compared configurations of one student trained for
    different numbers of optimizer updates (a warning), or all at the same
    count (``updates_note``: "trained at N updates each"); settings evaluated
    on different student sizes; fixed fallback margins (test-set size
    unknown); every accuracy <= 1 (fractions instead of percent?).

    Raises ValueError for malformed rows, duplicate rows, or a distilled row
    without a matching baseline row.
    """
    _check_parameters(kept_ratio_threshold, alpha, capacity_ratio)
    noise = Noise(z=noise_z, margin=noise_margin)
    base = _baselines(baseline)
    teacher_rows = _teachers_by_task(teacher_rows_mod.merged(teachers or [], distilled))
    cells_by_task = _cells_by_task(distilled, base)
    _assign_verdicts([c for cells in cells_by_task.values() for c in cells], alpha, noise)
    fractions = _looks_like_fractions(cells_by_task)
    return [
        _analyse_task(task, cells, teacher_rows.get(task, {}), fractions, noise, kept_ratio_threshold, capacity_ratio)
        for task, cells in cells_by_task.items()
    ]


def _check_parameters(kept_ratio_threshold: float, alpha: float, capacity_ratio: float) -> None:
    """Reject a non-positive kept-ratio threshold, an alpha outside (0, 1) and a capacity ratio below 1."""
    if not kept_ratio_threshold > 0 or not math.isfinite(kept_ratio_threshold):
        raise ValueError(f"kept-ratio threshold must be positive, got {kept_ratio_threshold!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    if not capacity_ratio >= 1 or not math.isfinite(capacity_ratio):
        raise ValueError(f"capacity ratio must be at least 1, got {capacity_ratio!r}")


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


def _optional_text(row: Mapping, key: str) -> str | None:
    """A field's stripped text, None when missing or blank."""
    v = row.get(key)
    return None if v is None or str(v).strip() == "" else str(v).strip()


def _teacher(row: Mapping, where: str) -> TeacherInfo:
    """One teacher row as a TeacherInfo (every field but the name optional)."""
    size = _optional_text(row, "teacher_size")
    try:
        params_b = parse_size(size) if size else None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    role = _optional_text(row, "role")
    return TeacherInfo(
        teacher=row_text(row, "teacher", where),
        accuracy=row_accuracy(row, where, optional=True),
        kept=row_count(row, "kept", where),
        kept_rationales=row_count(row, "kept_rationales", where),
        params_b=params_b,
        cot_tokens=row_num(row, "cot_tokens", where, optional=True),
        cot_words=row_num(row, "cot_words", where, optional=True),
        capacity=row_num(row, "capacity", where, optional=True),
        role=capacity.parse_role(role, where) if role else None,
    )


def _teachers_by_task(teachers: Sequence[Mapping]) -> dict[str, dict[str, TeacherInfo]]:
    """task -> teacher name -> TeacherInfo from the teacher rows, one per teacher and task."""
    teacher_rows: dict[str, dict[str, TeacherInfo]] = {}
    for i, row in enumerate(teachers, start=1):
        where = f"teacher row {i}"
        task = row_text(row, "task", where)
        info = _teacher(row, where)
        per = teacher_rows.setdefault(task, {})
        if info.teacher in per:
            raise ValueError(f"{where}: duplicate teacher {info.teacher!r} for task {task!r}")
        per[info.teacher] = info
    return teacher_rows


def _cells_by_task(distilled: Sequence[Mapping], base: _Base) -> dict[str, list[Cell]]:
    """Every distilled row as a Cell, grouped per task (tasks and cells in input order)."""
    cells_by_task: dict[str, list[Cell]] = {}
    seen: set[tuple] = set()
    for i, row in enumerate(distilled, start=1):
        cell_task, cell = _cell(row, f"distilled row {i}", base, seen)
        cells_by_task.setdefault(cell_task, []).append(cell)
    return cells_by_task


def _test_counts(row: Mapping, where: str) -> tuple[int | None, float | None, int | None, int | None]:
    """(n, p_value, wins, losses) of a distilled row; p from wins/losses when only they are given."""
    n = row_count(row, "n", where)
    if n == 0:
        raise ValueError(f"{where}: 'n' (test examples) must be at least 1")
    p = row_num(row, "p_value", where, optional=True)
    if p is not None and not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: p_value {p:g} is outside 0-1")
    wins, losses = row_count(row, "wins", where), row_count(row, "losses", where)
    if (wins is None) != (losses is None):
        raise ValueError(f"{where}: give both 'wins' and 'losses' or neither")
    if p is None and wins is not None:
        p = mcnemar_p(wins, losses)  # type: ignore[arg-type]
    return n, p, wins, losses


def _cell(row: Mapping, where: str, base: _Base, seen: set[tuple]) -> tuple[str, Cell]:
    """(task, cell) of one distilled row, checked for duplicates (recorded in ``seen``) and against its baseline."""
    setting, task = row_text(row, "setting", where), row_text(row, "task", where)
    teacher, student = row_text(row, "teacher", where), row_text(row, "student", where)
    label, size = row_size(row, where)
    acc = row_accuracy(row, where)
    lo = row_num(row, "ci_low", where, optional=True)
    hi = row_num(row, "ci_high", where, optional=True)
    if (lo is None) != (hi is None):
        raise ValueError(f"{where}: give both 'ci_low' and 'ci_high' or neither")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"{where}: ci_low {lo:g} is greater than ci_high {hi:g}")
    n, p, wins, losses = _test_counts(row, where)
    seed = _optional_text(row, "seed")
    key = (task, setting, teacher, student, seed)
    if key in seen:
        raise ValueError(
            f"{where}: duplicate result for task {task!r}, setting {setting!r}, teacher {teacher!r}, "
            f"student {student!r}" + (f", seed {seed}" if seed is not None else "")
        )
    seen.add(key)
    if (task, student) not in base:
        raise ValueError(
            f"{where}: no baseline row for task {task!r}, student {student!r} (the pre-distillation baseline is required)"
        )
    b_acc, b_label, b_size = base[(task, student)]
    if abs(b_size - size) > EPS:
        raise ValueError(f"{where}: student {student!r} has size {label} here but {b_label} in the baseline")
    return task, Cell(
        setting,
        teacher,
        student,
        label,
        size,
        acc,
        b_acc,
        acc - b_acc,
        lo,
        hi,
        updates=row_count(row, "updates", where),
        seed=seed,
        n=n,
        p_value=p,
        wins=wins,
        losses=losses,
    )


def _assign_verdicts(cells: Sequence[Cell], alpha: float, noise: Noise) -> None:
    """Each cell's verdict: Holm-adjusted exact test, else its interval, else the noise margin."""
    tested = [c for c in cells if c.p_value is not None]
    for c, adj in zip(tested, holm([c.p_value for c in tested])):  # type: ignore[misc]
        c.p_adjusted = adj
    family = f"Holm over {len(tested)} tests" if len(tested) > 1 else "one test"
    for c in cells:
        if c.p_adjusted is not None:
            c.verdict = exact_verdict(c.p_adjusted, c.wins, c.losses, alpha, c.diff)
            c.verdict_by = f"McNemar exact, {family}, alpha {alpha:g}"
        elif c.ci_low is not None and c.ci_high is not None:
            c.verdict = HELPED if c.ci_low > 0 else HURT if c.ci_high < 0 else NO_CHANGE
            c.verdict_by = "interval"
        else:
            m = noise.of_difference(c.distilled, c.n, c.baseline, c.n)
            c.verdict = HELPED if c.diff > m.points + EPS else HURT if c.diff < -m.points - EPS else NO_CHANGE
            c.verdict_by = f"noise margin {m.points:.1f} ({m.how})"


def _looks_like_fractions(cells_by_task: Mapping[str, Sequence[Cell]]) -> bool:
    """Whether every accuracy (distilled and baseline) is at most 1 and some is positive."""
    all_acc = [a for cells in cells_by_task.values() for c in cells for a in (c.distilled, c.baseline)]
    return bool(all_acc) and max(all_acc) <= 1.0 and any(a > 0 for a in all_acc)


# ---- one task ---------------------------------------------------------------


def _analyse_task(
    task: str,
    cells: Sequence[Cell],
    per: Mapping[str, TeacherInfo],
    fractions: bool,
    noise: Noise,
    kept_ratio_threshold: float,
    capacity_ratio: float,
) -> TaskAnalysis:
    """The TaskAnalysis of one task from its cells (input order) and its teacher rows."""
    warnings: list[str] = []
    if fractions:
        warnings.append("every accuracy is at most 1: were fractions given instead of percentages?")
    settings = list(dict.fromkeys(c.setting for c in cells))
    cells = sorted(cells, key=lambda c: (c.size, c.setting, c.teacher, c.student, str(c.seed)))
    n_helped = sum(c.verdict == HELPED for c in cells)
    n_hurt = sum(c.verdict == HURT for c in cells)
    effective = 2 * n_helped > len(cells)
    per = teacher_rows_mod.with_named_sizes(per, [c.teacher for c in cells])
    infos = _teacher_infos(per, cells)
    ordered, order = capacity.rank([t for t in infos if t.teacher in per], capacity_ratio)
    ordered += [t for t in infos if t.teacher not in per]
    kept_ratio = _kept_ratio(order, per, warnings)
    means = _mean_scores(cells, warnings)
    gaps = _capacity_gaps(cells, settings, per, noise, capacity_ratio)
    upd_warnings, updates_note = _updates_notes(cells)
    warnings.extend(upd_warnings)
    by_margin = [c for c in cells if c.p_adjusted is None and c.ci_low is None]
    fallback = any(g.margin_fallback for g in gaps) or (noise.margin is None and any(c.n is None for c in by_margin))
    if effective:
        rec, rec_teacher, rec_setting, reason, decided_by, rec_fallback = recommend.recommend(
            means, per, kept_ratio_threshold, noise, len(settings) > 1
        )
        fallback = fallback or rec_fallback
    else:
        rec, rec_teacher, rec_setting, decided_by = DO_NOT_DISTIL, None, None, BY_EFFECTIVENESS
        reason = (
            f"Distillation beat the pre-distillation baseline in only {n_helped} of {len(cells)} "
            "(teacher, student, seed) cells, which is not more than half."
        )
    if fallback:
        warnings.append(
            "test-set size unknown for some results: their noise margins are the fixed "
            f"{noise.from_se(None).points:g}-point fallback (give an 'n' column or --noise-margin)"
        )
    return TaskAnalysis(
        task=task,
        cells=cells,
        n_helped=n_helped,
        n_no_change=len(cells) - n_helped - n_hurt,
        n_hurt=n_hurt,
        effective=effective,
        teachers=ordered,
        strongest_teacher=order.stronger if order else None,
        weakest_teacher=order.weaker if order else None,
        capacity_basis=order.basis if order else None,
        kept_ratio=kept_ratio,
        mean_scores=means,
        capacity_gaps=gaps,
        recommendation=rec,
        recommended_teacher=rec_teacher,
        recommended_setting=rec_setting,
        reason=reason,
        decided_by=decided_by,
        replicates=replicates.groups(cells),
        updates_note=updates_note,
        warnings=warnings,
    )


def _teacher_infos(per: Mapping[str, TeacherInfo], cells: Sequence[Cell]) -> list[TeacherInfo]:
    """The task's teacher rows, plus an empty one for each distilled teacher without a row."""
    infos = list(per.values())
    for name in dict.fromkeys(c.teacher for c in cells):
        if name not in per:
            infos.append(TeacherInfo(name, None, None))
    return infos


def _kept_ratio(order, per: Mapping[str, TeacherInfo], warnings: list[str]) -> float | None:
    """kept(strongest) / kept(weakest) by capacity, when both are known (inf if the weakest kept none)."""
    if order is None:
        return None
    strong, weak = per[order.stronger], per[order.weaker]
    if strong.kept is None or weak.kept is None:
        return None
    if weak.kept > 0:
        return strong.kept / weak.kept
    if strong.kept > 0:
        warnings.append(f"weakest teacher {weak.teacher} kept no training examples: the kept ratio is infinite")
        return math.inf
    return None


def _mean_scores(cells: Sequence[Cell], warnings: list[str]) -> list[MeanScore]:
    """Mean distilled score per (setting, teacher) (seeds averaged per size, then sizes), best first;
    warns when their student sizes differ."""
    by_size = replicates.seed_means(cells)
    groups: dict[tuple[str, str], list[tuple[float, int | None]]] = {}
    for (setting, teacher, _size), v in by_size.items():
        groups.setdefault((setting, teacher), []).append(v)
    runs: dict[tuple[str, str], int] = {}
    for c in cells:
        runs[(c.setting, c.teacher)] = runs.get((c.setting, c.teacher), 0) + 1
    means = []
    for (s, t), vs in groups.items():
        ns = [n for _, n in vs]
        means.append(MeanScore(s, t, sum(a for a, _ in vs) / len(vs), runs[(s, t)], None if None in ns else min(ns)))  # type: ignore[type-var]
    means.sort(key=lambda m: (-m.mean, m.setting, m.teacher))
    size_sets: dict[tuple[str, str], set[float]] = {}
    for c in cells:
        size_sets.setdefault((c.setting, c.teacher), set()).add(c.size)
    if len({frozenset(v) for v in size_sets.values()}) > 1:
        warnings.append(
            "the compared configurations were evaluated on different student sizes, "
            "so their mean scores are not directly comparable"
        )
    return means


def _capacity_gaps(
    cells: Sequence[Cell], settings: Sequence[str], per: Mapping[str, TeacherInfo], noise: Noise, capacity_ratio: float
) -> list[CapacityGap]:
    """The capacity-gap diagnostic for every setting (in ``settings`` order) and pair of its teachers."""
    by_size = replicates.seed_means(cells)
    accuracy = {t: info.accuracy for t, info in per.items()}
    gaps: list[CapacityGap] = []
    for setting in settings:
        scores: dict[str, dict[float, tuple[float, int | None]]] = {}
        labels: dict[float, str] = {}
        for c in cells:
            if c.setting == setting:
                scores.setdefault(c.teacher, {})[c.size] = by_size[(c.setting, c.teacher, c.size)]
                labels.setdefault(c.size, c.student_size)
        for a, b in itertools.combinations(sorted(scores), 2):
            order = capacity.compare(per.get(a), per.get(b), capacity_ratio, names=(a, b))
            gaps.append(capacity_gap.diagnose(setting, a, b, scores, labels, order, accuracy, noise))
    return gaps


def _count(keys) -> dict:
    """How often each key occurs."""
    out: dict = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return out


def _updates_notes(cells: Sequence[Cell]) -> tuple[list[str], str | None]:
    """(a warning per student whose compared configurations differ in optimizer updates, the note
    "trained at N updates each" when every compared cell's count is known and equal per student)."""
    by_student: dict[str, list[Cell]] = {}
    for c in cells:
        by_student.setdefault(c.student, []).append(c)
    seeded = {k for k, n in _count(replicates.group_key(c) for c in cells).items() if n > 1}
    warnings = []
    for student, cs in by_student.items():
        known = [c for c in cs if c.updates is not None]
        if len({c.updates for c in known}) > 1:
            listing = ", ".join(
                f"{c.setting}/{c.teacher}{f'@{c.seed}' if replicates.group_key(c) in seeded else ''}={c.updates}" for c in known
            )
            warnings.append(
                f"student {student} ({cs[0].student_size}): configurations differ in "
                f"optimizer updates ({listing}); differences may reflect training length"
            )
    compared = {s: cs for s, cs in by_student.items() if len(cs) > 1}
    if warnings or not compared or any(c.updates is None for cs in compared.values() for c in cs):
        return warnings, None
    counts = {s: cs[0].updates for s, cs in compared.items()}
    if len(set(counts.values())) == 1:
        return warnings, f"compared configurations trained at {next(iter(counts.values()))} updates each"
    listing = "; ".join(f"{s}: {n} each" for s, n in counts.items())
    return warnings, f"compared configurations of each student trained at equal updates ({listing})"
