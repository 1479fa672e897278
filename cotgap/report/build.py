"""The cross-run report's content (``report.json``, schema ``cotgap.report/1``): analyses of the collected rows.

The rows (:mod:`cotgap.report.collect`) are analysed per task by :func:`cotgap.report.analysis.analyse`.
Runs (and CSV rows) of the ``cross-teacher-filter`` ablation are analysed *separately* from the
rest, labelled with the ablation's name everywhere, and compared side by side with their
unfiltered counterparts (:func:`compare_ablation`). The schema is documented in docs/report.md.

Multiplicity: each of the two analyses (the main results, every task together, and the
ablation's) is one family of exact tests, Holm-corrected; a cell's verdict uses its adjusted p.
The level ``alpha`` is the one given, else the one every collected run was configured with, else
ALPHA.
"""

from __future__ import annotations

import math
import time

from cotgap.errors import UserError
from cotgap.protocol.constants import ALPHA, CAPACITY_RATIO, KEPT_RATIO, NOISE_Z, REFERENCE_STRATEGY
from cotgap.protocol.stats import TEST_NAME
from cotgap.report import alone, analysis, analysis_json, budget_note, tables
from cotgap.report.collect import Collected
from cotgap.report.noise import Noise

SCHEMA = "cotgap.report/1"
ABLATION = "cross-teacher-filter"
ABLATION_DOC = (
    "each teacher's training data restricted to the questions every compared teacher solved "
    "(the prior-work protocol); not how cotgap filters by default"
)
GUIDELINES = [
    "Verify that distillation beats the student's pre-distillation few-shot baseline (McNemar's exact test on "
    "the paired test items, Holm-corrected across the report's cells, decides each verdict).",
    "Where candidate teachers' distilled students are tied within noise, prefer the teacher yielding about 1.3x "
    "or more kept (correct) training questions: that ratio consistently favoured stronger teachers.",
]


def is_ablation(setting: str) -> bool:
    """Whether ``setting`` belongs to the ablation (``cross-teacher-filter`` or ``<strategy>+cross-teacher-filter``)."""
    return setting == ABLATION or setting.endswith("+" + ABLATION)


def _reference_of(setting: str, task: str, teacher: str, student: str, primary_keys: set) -> str | None:
    if setting != ABLATION:
        return setting[: -len("+" + ABLATION)]
    cands = sorted({k[1] for k in primary_keys if (k[0], k[2], k[3]) == (task, teacher, student)})
    if REFERENCE_STRATEGY in cands:
        return REFERENCE_STRATEGY
    return cands[0] if len(cands) == 1 else None


def _seed(row: dict) -> str | None:
    """A row's training seed as text, None when it has none."""
    v = row.get("seed")
    return None if tables.is_empty(v) else str(v).strip()


def compare_ablation(primary: list[dict], ablated: list[dict]) -> tuple[list[dict], list[str]]:
    """Filtered vs unfiltered, per (task, setting, teacher, student, seed) present in both."""
    index = {(r["task"], r["setting"], r["teacher"], r["student"], _seed(r)): r for r in primary}
    keys = {k[:4] for k in index}
    rows, warnings = [], []
    for a in ablated:
        ref_setting = _reference_of(a["setting"], a["task"], a["teacher"], a["student"], keys)
        ref = index.get((a["task"], ref_setting, a["teacher"], a["student"], _seed(a))) if ref_setting else None
        f = float(a["accuracy"])
        u = float(ref["accuracy"]) if ref else None

        def opt(row, k):
            v = (row or {}).get(k)
            return None if tables.is_empty(v) else int(float(v))

        row = {
            "task": a["task"],
            "setting": ref_setting,
            "ablation": ABLATION,
            "teacher": a["teacher"],
            "student": a["student"],
            "student_size": a["student_size"],
            "seed": _seed(a),
            "unfiltered": u,
            "filtered": f,
            "delta": None if u is None else f - u,
            "kept_unfiltered": opt(ref, "kept"),
            "kept_filtered": opt(a, "kept"),
            "updates_unfiltered": opt(ref, "updates"),
            "updates_filtered": opt(a, "updates"),
        }
        rows.append(row)
        if ref is None:
            warnings.append(
                f"{a['task']}: no unfiltered result matches the {ABLATION} result of teacher "
                f"{a['teacher']}, student {a['student']}"
            )
        elif (
            None not in (row["updates_unfiltered"], row["updates_filtered"])
            and row["updates_unfiltered"] != row["updates_filtered"]
        ):
            warnings.append(
                f"{a['task']}: teacher {a['teacher']}, student {a['student']}: the filtered and "
                f"unfiltered runs differ in optimizer updates ({row['updates_filtered']} vs "
                f"{row['updates_unfiltered']}); part of the difference may be training length"
            )
    rows.sort(
        key=lambda r: (
            r["task"],
            r["setting"] or "",
            r["teacher"],
            tables.parse_size(r["student_size"]),
            r["student"],
            str(r["seed"]),
        )
    )
    return rows, warnings


def ablation_updates_note(rows: list[dict]) -> str | None:
    """ "trained at N updates each" when every filtered/unfiltered pair's counts are known and equal."""
    pairs = [(r["updates_unfiltered"], r["updates_filtered"]) for r in rows if r["unfiltered"] is not None]
    if not pairs or any(u is None or f is None or u != f for u, f in pairs):
        return None
    counts = {u for u, _ in pairs}
    if len(counts) == 1:
        return f"filtered and unfiltered runs trained at {counts.pop()} updates each"
    return "each filtered run trained at the same number of updates as its unfiltered counterpart"


def run_alpha(col: Collected) -> tuple[float, list[str]]:
    """The level the collected runs were configured with when they agree (else ALPHA, with a warning)."""
    levels = {float(r["alpha"]) for r in col.runs if r.get("alpha") is not None}
    if len(levels) == 1:
        return levels.pop(), []
    if len(levels) > 1:
        return ALPHA, [
            f"runs were configured with different alpha levels ({', '.join(map(str, sorted(levels)))}): "
            f"the report uses {ALPHA:g} (give --alpha to choose)"
        ]
    return ALPHA, []


def _check_options(noise_margin, kept_ratio_threshold, alpha, noise_z) -> None:
    """One-line refusals of out-of-range report options."""
    if noise_margin is not None and not (math.isfinite(noise_margin) and noise_margin >= 0):
        raise UserError(f"--noise-margin must be a non-negative number, got {noise_margin}")
    if not (math.isfinite(kept_ratio_threshold) and kept_ratio_threshold > 0):
        raise UserError(f"--kept-ratio must be a positive number, got {kept_ratio_threshold}")
    if alpha is not None and not 0 < alpha < 1:
        raise UserError(f"--alpha must lie strictly between 0 and 1, got {alpha}")
    if not (math.isfinite(noise_z) and noise_z > 0):
        raise UserError(f"--noise-z must be a positive number, got {noise_z}")


def _tag(tasks_json: list[dict], ablation: str | None) -> list[dict]:
    return [{**t, "ablation": ablation} for t in tasks_json]


def build(
    col: Collected,
    *,
    noise_margin: float | None = None,
    kept_ratio_threshold: float = KEPT_RATIO,
    alpha: float | None = None,
    noise_z: float = NOISE_Z,
):
    """(report dict, primary analyses, ablation analyses). ``noise_margin`` None: margins from the
    test-set sizes; ``alpha`` None: the runs' own level (:func:`run_alpha`)."""
    _check_options(noise_margin, kept_ratio_threshold, alpha, noise_z)
    alpha_warnings: list[str] = []
    if alpha is None:
        alpha, alpha_warnings = run_alpha(col)
    primary = [r for r in col.distilled if not is_ablation(r["setting"])]
    ablated = [r for r in col.distilled if is_ablation(r["setting"])]
    opts = {"noise_margin": noise_margin, "kept_ratio_threshold": kept_ratio_threshold, "alpha": alpha, "noise_z": noise_z}
    try:
        prim = analysis.analyse(primary, col.baseline, col.teachers, **opts) if primary else []
        abl = analysis.analyse(ablated, col.baseline, col.ablation_teachers, **opts) if ablated else []
    except ValueError as exc:
        raise UserError(str(exc)) from None
    comparison, cmp_warnings = compare_ablation(primary, ablated) if ablated else ([], [])
    alone_rows, alone_warnings = alone.compare(col.alone, Noise(z=noise_z, margin=noise_margin))

    generation = None
    if col.sweeps:
        generation = {
            "computed": sum(s.get("generations", {}).get("computed", 0) for s in col.sweeps),
            "reused": sum(s.get("generations", {}).get("reused", 0) for s in col.sweeps),
            "sweeps": [
                {
                    "name": s.get("name"),
                    "dir": s.get("dir"),
                    "generations": s.get("generations"),
                    "cells": s.get("counts"),
                    "not_done": [
                        {"name": c["name"], "status": c["status"], "reason": c.get("reason")}
                        for c in s.get("cells", [])
                        if c.get("status") != "done"
                    ],
                }
                for s in col.sweeps
            ],
        }
    warnings = list(col.warnings) + alpha_warnings + alone_warnings
    notes = budget_note.statements(col.runs, col.sweeps)  # which budget each task's comparison used
    for s in col.sweeps:
        for c in s.get("cells", []):
            if c.get("status") == "failed":
                warnings.append(f"sweep {s.get('name')}: cell {c['name']} failed: {c.get('reason')}")
    report = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "inputs": {"paths": col.inputs, "runs": col.runs},
        "parameters": {
            "test": TEST_NAME,
            "multiplicity": "holm",
            "alpha": alpha,
            "noise_margin": noise_margin,
            "noise_z": noise_z,
            "kept_ratio_threshold": kept_ratio_threshold,
            "capacity_ratio": CAPACITY_RATIO,
        },
        "guidelines": GUIDELINES,
        "tasks": [{**t, "budget_note": notes.get(t["task"])} for t in _tag(analysis_json.to_json(prim)["tasks"], None)],
        "ablation": None
        if not ablated
        else {
            "name": ABLATION,
            "description": ABLATION_DOC,
            "tasks": _tag(analysis_json.to_json(abl)["tasks"], ABLATION),
            "comparison": comparison,
            "updates_note": ablation_updates_note(comparison),
            "warnings": cmp_warnings,
        },
        "alone_comparisons": alone_rows,
        "generation": generation,
        "warnings": warnings,
        "files": {},
    }
    return report, prim, abl
