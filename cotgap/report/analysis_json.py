"""The analyses as JSON: :func:`to_json` turns :class:`~cotgap.report.results.TaskAnalysis` objects into plain dicts.

JSON schema produced by :func:`to_json`
---------------------------------------
::

    {
      "schema_version": 2,
      "tasks": [
        {
          "task": str,
          "effective": bool,          # helped in > half of the cells
          "n_cells": int, "n_helped": int, "n_no_change": int, "n_hurt": int,
          "cells": [                  # one per (setting, teacher, student, seed)
            {"setting": str, "teacher": str, "student": str,
             "student_size": str,     # as written, e.g. "0.5B"
             "student_size_b": float, # parameters in billions
             "seed": str|null,        # training seed (replicates differ only in it)
             "n": int|null,           # test examples
             "distilled": float, "baseline": float,
             "diff": float,           # distilled - baseline, points
             "ci_low": float|null, "ci_high": float|null,   # display
             "wins": int|null, "losses": int|null,
             "p_value": float|null,   # McNemar exact, raw
             "p_adjusted": float|null,# Holm over the analysis' cells
             "verdict": "helped" | "no significant change" | "hurt",
             "verdict_by": str,       # which rule gave it
             "updates": int|null}
          ],
          "replicates": [             # (setting, teacher, student) with >= 2 seeds
            {"setting", "teacher", "student", "student_size", "seeds": [str],
             "distilled_mean", "distilled_sd", "diff_mean", "diff_sd",
             "verdicts": [str]}       # per seed, in "seeds" order
          ],
          "teachers": [               # strongest first when capacity orders them
            {"teacher": str, "accuracy": float|null, "kept": int|null,
             "kept_rationales": int|null, "params_b": float|null,
             "cot_tokens": float|null, "cot_words": float|null,
             "capacity": float|null, "role": str|null}
          ],
          "strongest_teacher": str|null, "weakest_teacher": str|null,
          "capacity_basis": str|null,
          "kept_ratio": float|null,   # kept(strongest) / kept(weakest);
                                      # null when unknown or infinite
          "kept_ratio_infinite": bool,# weakest teacher kept 0, strongest > 0
          "mean_scores": [            # mean distilled accuracy per candidate
            {"setting": str, "teacher": str, "mean": float, "n": int, "n_test": int|null}
          ],
          "capacity_gaps": [
            {"setting": str, "teachers": [str, str],
             "stronger": str|null, "weaker": str|null,
             "basis": str|null,       # capacity basis (see cotgap.report.capacity)
             "stronger_capacity", "weaker_capacity",   # the compared values
             "capacity_reason": str|null,   # why the order is unresolved
             "stronger_accuracy": float|null, "weaker_accuracy": float|null,
             "sizes": [str, ...],     # common student sizes, ascending
             "advantages": [float, ...],  # weaker - stronger at each size
             "small_sizes": [str], "large_sizes": [str],
             "mean_advantage_small": float|null, "mean_advantage_large": float|null,
             "margin_small": float|null, "margin_drop": float|null, "margin_how": str,
             "verdict": "capacity gap observed" | "no capacity gap"
                        | "insufficient data",     # the statistical reading
             "detail": str,
             "readings": {"descriptive": {"verdict", "detail", "rule"},   # no noise margin (the paper's)
                          "statistical": {"verdict", "detail", "rule"}}}
          ],
          "recommendation": str,
          "recommended_teacher": str|null,
          "recommended_setting": str|null,
          "reason": str,              # one sentence
          "decided_by": "not effective" | "only candidate" | "distilled accuracy"
                        | "kept-ratio tie-break" | "tied within noise",
          "updates_note": str|null,   # "... trained at N updates each"
          "warnings": [str, ...]
        }
      ]
    }
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from cotgap.report.results import CapacityGap, Cell, TaskAnalysis

__all__ = ["to_json"]


def to_json(analyses: Sequence[TaskAnalysis]) -> dict:
    """JSON-serialisable dict of the analyses (schema in the module docstring)."""
    return {"schema_version": 2, "tasks": [_task_json(a) for a in analyses]}


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
        "replicates": [dataclasses.asdict(g) for g in a.replicates],
        "teachers": [dataclasses.asdict(t) for t in a.teachers],
        "strongest_teacher": a.strongest_teacher,
        "weakest_teacher": a.weakest_teacher,
        "capacity_basis": a.capacity_basis,
        "kept_ratio": None if infinite else a.kept_ratio,
        "kept_ratio_infinite": infinite,
        "mean_scores": [dataclasses.asdict(m) for m in a.mean_scores],
        "capacity_gaps": [_gap_json(g) for g in a.capacity_gaps],
        "recommendation": a.recommendation,
        "recommended_teacher": a.recommended_teacher,
        "recommended_setting": a.recommended_setting,
        "reason": a.reason,
        "decided_by": a.decided_by,
        "updates_note": a.updates_note,
        "warnings": list(a.warnings),
    }


def _cell_json(c: Cell) -> dict:
    """One entry of a task's ``cells``."""
    out = dataclasses.asdict(c)
    out["student_size_b"] = out.pop("size")
    return out


def _gap_json(g: CapacityGap) -> dict:
    """One entry of a task's ``capacity_gaps``."""
    o = g.order
    return {
        "setting": g.setting,
        "teachers": list(g.teachers),
        "stronger": o.stronger,
        "weaker": o.weaker,
        "basis": o.basis,
        "stronger_capacity": o.stronger_value,
        "weaker_capacity": o.weaker_value,
        "capacity_reason": o.reason or None,
        "stronger_accuracy": g.stronger_accuracy,
        "weaker_accuracy": g.weaker_accuracy,
        "sizes": list(g.sizes),
        "advantages": list(g.advantages),
        "small_sizes": list(g.small_sizes),
        "large_sizes": list(g.large_sizes),
        "mean_advantage_small": g.mean_advantage_small,
        "mean_advantage_large": g.mean_advantage_large,
        "margin_small": g.margin_small,
        "margin_drop": g.margin_drop,
        "margin_how": g.margin_how,
        "verdict": g.verdict,
        "detail": g.detail,
        "readings": {
            "descriptive": {
                "verdict": g.descriptive_verdict,
                "detail": g.descriptive_detail,
                "rule": "A_small > 0 and A_small > A_large (the paper's reading: no noise margin)",
            },
            "statistical": {
                "verdict": g.verdict,
                "detail": g.detail,
                "rule": "A_small > margin_small and A_small - A_large > margin_drop",
            },
        },
    }
