"""Which teacher to recommend once distillation is effective, and which rule decided it.

1. **Distilled accuracy** decides: the candidate (setting, teacher) whose students score best on
   average (:class:`~cotgap.report.results.MeanScore`) is recommended when it leads every other
   candidate by more than the noise margin of a difference of two accuracies at their test-set
   size (:class:`~cotgap.report.noise.Noise`; the mean is treated like one accuracy on ``n`` items,
   which is conservative since averaging over students only lowers the error).
2. **Kept-ratio tie-break**: candidates within that margin of the best are tied. Among them the
   guideline "a teacher yielding ≥ 1.3x more kept (correct) training examples" picks the teacher
   whose kept count (distinct questions) is at least ``kept_ratio_threshold`` times every other
   tied teacher's; with several settings of that teacher, its best-scoring one.
3. **Tied within noise**: no tie-break applies (kept counts unknown, or no teacher keeps enough
   more); the best mean is named, and the reason says the data do not separate the candidates.

The guideline never overrides a measured, significant difference of distilled results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from cotgap.report.noise import Margin, Noise
from cotgap.report.results import (
    BY_ACCURACY,
    BY_ONLY_CANDIDATE,
    BY_TIE,
    BY_TIE_BREAK,
    MeanScore,
    TeacherInfo,
    one_decimal,
)


def _label(m: MeanScore, multi_setting: bool) -> str:
    """``teacher`` or, when the task has several settings, ``teacher (setting)``."""
    return f"{m.teacher} ({m.setting})" if multi_setting else m.teacher


def _tie_break(tied: Sequence[MeanScore], per: Mapping[str, TeacherInfo], threshold: float):
    """(chosen MeanScore, ratio, runner-up teacher) by the kept ratio among the tied, or None."""
    teachers = list(dict.fromkeys(m.teacher for m in tied))
    kept = {t: (per[t].kept if t in per else None) for t in teachers}
    if len(teachers) < 2 or any(k is None for k in kept.values()):
        return None
    top = max(teachers, key=lambda t: (kept[t], t))
    others = [t for t in teachers if t != top]
    runner = max(others, key=lambda t: kept[t])
    if kept[top] == 0:
        return None
    ratio = math.inf if kept[runner] == 0 else kept[top] / kept[runner]
    if ratio < threshold - 1e-9:
        return None
    chosen = max((m for m in tied if m.teacher == top), key=lambda m: m.mean)
    return chosen, ratio, runner


def recommend(
    means: Sequence[MeanScore], per: Mapping[str, TeacherInfo], kept_ratio_threshold: float, noise: Noise, multi_setting: bool
) -> tuple[str, str, str, str, str, bool]:
    """(recommendation, teacher, setting, reason, decided_by, margin fell back) for an effective task."""
    best = means[0]
    label = _label(best, multi_setting)
    if len(means) == 1:
        return (
            f"prefer teacher {label}",
            best.teacher,
            best.setting,
            f"{label} is the only distilled configuration ({one_decimal(best.mean)}% mean distilled accuracy).",
            BY_ONLY_CANDIDATE,
            False,
        )
    margins: dict[int, Margin] = {
        i: noise.of_difference(best.mean, best.n_test, m.mean, m.n_test) for i, m in enumerate(means[1:], start=1)
    }
    fallback = any(m.fallback for m in margins.values())
    tied = [best] + [m for i, m in enumerate(means[1:], start=1) if best.mean - m.mean <= margins[i].points]
    nxt, m_next = means[1], margins[1]
    if len(tied) == 1:
        reason = (
            f"{label} has the best mean distilled accuracy, {one_decimal(best.mean)}%, ahead of "
            f"{_label(nxt, multi_setting)} at {one_decimal(nxt.mean)}% by more than the noise margin "
            f"({m_next.points:.1f} points: {m_next.how})."
        )
        return f"prefer teacher {label}", best.teacher, best.setting, reason, BY_ACCURACY, fallback
    names = ", ".join(_label(m, multi_setting) for m in tied)
    tie_txt = (
        f"{names} are tied within noise (best {one_decimal(best.mean)}%, next {one_decimal(nxt.mean)}%, "
        f"margin {m_next.points:.1f} points: {m_next.how})"
    )
    broken = _tie_break(tied, per, kept_ratio_threshold)
    if broken is not None:
        chosen, ratio, runner = broken
        c_label = _label(chosen, multi_setting)
        ratio_txt = "infinitely many" if math.isinf(ratio) else f"{ratio:.2f}x as many"
        reason = (
            f"{tie_txt}; {chosen.teacher} keeps {ratio_txt} correct training questions as {runner} "
            f"(at least {kept_ratio_threshold:g}x), so the kept-ratio guideline breaks the tie."
        )
        return f"prefer teacher {c_label}", chosen.teacher, chosen.setting, reason, BY_TIE_BREAK, fallback
    why = _no_tie_break(tied, per, kept_ratio_threshold)
    reason = f"{tie_txt}; {why}, so {label} (best mean) is named but the results do not separate them."
    return f"prefer teacher {label}", best.teacher, best.setting, reason, BY_TIE, fallback


def _no_tie_break(tied: Sequence[MeanScore], per: Mapping[str, TeacherInfo], threshold: float) -> str:
    """Why the kept ratio did not break the tie (one clause)."""
    teachers = list(dict.fromkeys(m.teacher for m in tied))
    if len(teachers) < 2:
        return "they share one teacher"
    unknown = [t for t in teachers if t not in per or per[t].kept is None]
    if unknown:
        return f"kept counts are unknown for {', '.join(unknown)}"
    counts = ", ".join(f"{t} {per[t].kept}" for t in teachers)
    return f"no teacher keeps at least {threshold:g}x as many correct training questions as the others ({counts})"
