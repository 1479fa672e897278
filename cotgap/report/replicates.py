"""Replicates: runs of one (setting, teacher, student) that differ only in their training seed.

Each run keeps its own cell, its own exact test and its own (Holm-adjusted) verdict, and counts
once towards "distillation effective"; a group of two or more seeds is summarised beside them by
the mean ± sample standard deviation of distilled accuracy and of distilled − baseline, and the
list of per-seed verdicts. Seeds are averaged first (per student size) wherever one number per
(setting, teacher, size) is needed: mean scores, the capacity gap, the plots.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from cotgap.report.results import Cell, ReplicateGroup


def group_key(c: Cell) -> tuple[str, str, str]:
    """The (setting, teacher, student) whose runs are replicates of each other."""
    return c.setting, c.teacher, c.student


def _sd(xs: Sequence[float]) -> float:
    """Sample standard deviation (n − 1), 0 for a single value."""
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def groups(cells: Sequence[Cell]) -> list[ReplicateGroup]:
    """The replicate groups (two or more seeds) among ``cells``, in cell order."""
    by: dict[tuple[str, str, str], list[Cell]] = {}
    for c in cells:
        by.setdefault(group_key(c), []).append(c)
    out = []
    for (setting, teacher, student), cs in by.items():
        if len(cs) < 2:
            continue
        cs = sorted(cs, key=lambda c: str(c.seed))
        dist, diff = [c.distilled for c in cs], [c.diff for c in cs]
        out.append(
            ReplicateGroup(
                setting,
                teacher,
                student,
                cs[0].student_size,
                [str(c.seed) for c in cs],
                statistics.mean(dist),
                _sd(dist),
                statistics.mean(diff),
                _sd(diff),
                [c.verdict for c in cs],
            )
        )
    return out


def seed_means(cells: Sequence[Cell]) -> dict[tuple[str, str, float], tuple[float, int | None]]:
    """(setting, teacher, size) -> (distilled accuracy averaged over seeds, smallest test n or None)."""
    acc: dict[tuple[str, str, float], list[Cell]] = {}
    for c in cells:
        acc.setdefault((c.setting, c.teacher, c.size), []).append(c)
    out = {}
    for k, cs in acc.items():
        ns = [c.n for c in cs]
        out[k] = (statistics.mean(c.distilled for c in cs), None if None in ns else min(ns))
    return out
