"""The analyses as JSON: :func:`to_json` turns :class:`~cotgap.report.analysis.TaskAnalysis` objects into plain dicts.

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

import math
from collections.abc import Sequence

from cotgap.report.analysis import CapacityGap, Cell, TaskAnalysis

__all__ = ["to_json"]


def to_json(analyses: Sequence[TaskAnalysis]) -> dict:
    """JSON-serialisable dict of the analyses (schema in the module docstring)."""
    return {"schema_version": 1, "tasks": [_task_json(a) for a in analyses]}


def _task_json(a: TaskAnalysis) -> dict:
    """One task's entry of ``tasks``; an infinite kept ratio becomes null plus ``kept_ratio_infinite``."""
    infinite = a.kept_ratio is not None and math.isinf(a.kept_ratio)
    return {
        "task": a.task,
        "effective": a.effective,
        "n_cells": a.n_cells,
        "n_helped": a.n_helped,
        "n_no_change": a.n_no_change,
        "n_hurt": a.n_hurt,
        "cells": [_cell_json(c) for c in a.cells],
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
        "capacity_gaps": [_gap_json(g) for g in a.capacity_gaps],
        "recommendation": a.recommendation,
        "recommended_teacher": a.recommended_teacher,
        "recommended_setting": a.recommended_setting,
        "reason": a.reason,
        "warnings": list(a.warnings),
    }


def _cell_json(c: Cell) -> dict:
    """One entry of a task's ``cells``."""
    return {
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


def _gap_json(g: CapacityGap) -> dict:
    """One entry of a task's ``capacity_gaps``."""
    return {
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
