"""The cross-run report's content (``report.json``, schema ``cotgap.report/1``): analyses of the collected rows.

The rows (:mod:`cotgap.report.collect`) are analysed per task by :func:`cotgap.report.analysis.analyse`.
Runs (and CSV rows) of the ``cross-teacher-filter`` ablation are analysed *separately* from the
rest, labelled with the ablation's name everywhere, and compared side by side with their
unfiltered counterparts (:func:`compare_ablation`). The schema is documented in docs/report.md.
"""

from __future__ import annotations

import math
import time

from cotgap.errors import UserError
from cotgap.report import analysis, analysis_json, tables
from cotgap.report.collect import Collected

SCHEMA = "cotgap.report/1"
ABLATION = "cross-teacher-filter"
ABLATION_DOC = ("each teacher's training data restricted to the questions every compared teacher solved "
                "(the prior-work protocol); not how cotgap filters by default")
GUIDELINES = [
    "Verify that distillation beats the student's pre-distillation few-shot baseline.",
    "When candidate teachers differ substantially, prefer the stronger one: a ratio of about 1.3x or more "
    "in kept (correct) training examples consistently favoured stronger teachers.",
]


def is_ablation(setting: str) -> bool:
    """Whether ``setting`` belongs to the ablation (``cross-teacher-filter`` or ``<strategy>+cross-teacher-filter``)."""
    return setting == ABLATION or setting.endswith("+" + ABLATION)


def _reference_of(setting: str, task: str, teacher: str, student: str, primary_keys: set) -> str | None:
    if setting != ABLATION:
        return setting[: -len("+" + ABLATION)]
    cands = sorted({k[1] for k in primary_keys if (k[0], k[2], k[3]) == (task, teacher, student)})
    if "plain" in cands:
        return "plain"
    return cands[0] if len(cands) == 1 else None


def compare_ablation(primary: list[dict], ablated: list[dict]) -> tuple[list[dict], list[str]]:
    """Filtered vs unfiltered, per (task, setting, teacher, student) present in both."""
    index = {(r["task"], r["setting"], r["teacher"], r["student"]): r for r in primary}
    rows, warnings = [], []
    for a in ablated:
        ref_setting = _reference_of(a["setting"], a["task"], a["teacher"], a["student"], set(index))
        ref = index.get((a["task"], ref_setting, a["teacher"], a["student"])) if ref_setting else None
        f = float(a["accuracy"])
        u = float(ref["accuracy"]) if ref else None

        def opt(row, k):
            v = (row or {}).get(k)
            return None if tables.is_empty(v) else int(float(v))

        row = {"task": a["task"], "setting": ref_setting, "ablation": ABLATION, "teacher": a["teacher"],
               "student": a["student"], "student_size": a["student_size"],
               "unfiltered": u, "filtered": f, "delta": None if u is None else f - u,
               "kept_unfiltered": opt(ref, "kept"), "kept_filtered": opt(a, "kept"),
               "updates_unfiltered": opt(ref, "updates"), "updates_filtered": opt(a, "updates")}
        rows.append(row)
        if ref is None:
            warnings.append(f"{a['task']}: no unfiltered result matches the {ABLATION} result of teacher "
                            f"{a['teacher']}, student {a['student']}")
        elif None not in (row["updates_unfiltered"], row["updates_filtered"]) and \
                row["updates_unfiltered"] != row["updates_filtered"]:
            warnings.append(f"{a['task']}: teacher {a['teacher']}, student {a['student']}: the filtered and "
                            f"unfiltered runs differ in optimizer updates ({row['updates_filtered']} vs "
                            f"{row['updates_unfiltered']}); part of the difference may be training length")
    rows.sort(key=lambda r: (r["task"], r["setting"] or "", r["teacher"], tables.parse_size(r["student_size"]),
                             r["student"]))
    return rows, warnings


def _tag(tasks_json: list[dict], ablation: str | None) -> list[dict]:
    return [{**t, "ablation": ablation} for t in tasks_json]


def build(col: Collected, *, noise_margin: float = 1.0, kept_ratio_threshold: float = 1.3):
    """(report dict, primary analyses, ablation analyses, comparison rows)."""
    if not (math.isfinite(noise_margin) and noise_margin >= 0):
        raise UserError(f"--noise-margin must be a non-negative number, got {noise_margin}")
    if not (math.isfinite(kept_ratio_threshold) and kept_ratio_threshold > 0):
        raise UserError(f"--kept-ratio must be a positive number, got {kept_ratio_threshold}")
    primary = [r for r in col.distilled if not is_ablation(r["setting"])]
    ablated = [r for r in col.distilled if is_ablation(r["setting"])]
    try:
        prim = analysis.analyse(primary, col.baseline, col.teachers, noise_margin=noise_margin,
                                kept_ratio_threshold=kept_ratio_threshold) if primary else []
        abl = analysis.analyse(ablated, col.baseline, col.ablation_teachers, noise_margin=noise_margin,
                               kept_ratio_threshold=kept_ratio_threshold) if ablated else []
    except ValueError as exc:
        raise UserError(str(exc)) from None
    comparison, cmp_warnings = compare_ablation(primary, ablated) if ablated else ([], [])

    generation = None
    if col.sweeps:
        generation = {
            "computed": sum(s.get("generations", {}).get("computed", 0) for s in col.sweeps),
            "reused": sum(s.get("generations", {}).get("reused", 0) for s in col.sweeps),
            "sweeps": [{"name": s.get("name"), "dir": s.get("dir"), "generations": s.get("generations"),
                        "cells": s.get("counts"),
                        "not_done": [{"name": c["name"], "status": c["status"], "reason": c.get("reason")}
                                     for c in s.get("cells", []) if c.get("status") != "done"]}
                       for s in col.sweeps],
        }
    warnings = list(col.warnings)
    for s in col.sweeps:
        for c in s.get("cells", []):
            if c.get("status") == "failed":
                warnings.append(f"sweep {s.get('name')}: cell {c['name']} failed: {c.get('reason')}")
    report = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "inputs": {"paths": col.inputs, "runs": col.runs},
        "parameters": {"noise_margin": noise_margin, "kept_ratio_threshold": kept_ratio_threshold},
        "guidelines": GUIDELINES,
        "tasks": _tag(analysis_json.to_json(prim)["tasks"], None),
        "ablation": None if not ablated else {
            "name": ABLATION, "description": ABLATION_DOC,
            "tasks": _tag(analysis_json.to_json(abl)["tasks"], ABLATION),
            "comparison": comparison, "warnings": cmp_warnings,
        },
        "generation": generation,
        "warnings": warnings,
        "files": {},
    }
    return report, prim, abl
