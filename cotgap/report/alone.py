"""Combined-data cells against each of their teachers alone, at equal optimizer updates.

A sweep gives each cell of a strategy that combines its teachers' data (``compare_each_teacher_alone``)
one plain cell per teacher, on that teacher's data alone, trained at the combined cell's
updates (:mod:`cotgap.pipeline.grid`); the sweep's ``sweep.json`` records them (``alone_of``). The
report keeps those runs out of its main analysis (they answer another question: is the combination
better than either teacher's data alone, as Li et al. compare it?) and shows each combined cell
beside its alone cells: accuracies, the difference combined − alone, its noise margin from the
test-set sizes (:mod:`cotgap.report.noise`) and a reading: ``combined better`` / ``alone better``
beyond the margin, else ``within noise``. Cells whose updates differ are flagged.
"""

from __future__ import annotations

from pathlib import Path

from cotgap.report.noise import Noise

COMBINED_BETTER = "combined better"
ALONE_BETTER = "alone better"
WITHIN_NOISE = "within noise"


def alone_runs(sweeps: list[dict]) -> dict[Path, Path]:
    """Each alone cell's run folder -> its combined cell's run folder, from the sweeps' summaries."""
    out: dict[Path, Path] = {}
    for s in sweeps:
        dirs = {c["name"]: c.get("dir") for c in s.get("cells", [])}
        for c in s.get("cells", []):
            combined = dirs.get(c.get("alone_of") or "")
            if combined and c.get("dir"):
                out[Path(c["dir"]).resolve()] = Path(combined).resolve()
    return out


def _num(row: dict, key: str):
    v = row.get(key)
    return None if v is None or v == "" else float(v)


def _one(combined: dict, alone: dict, noise: Noise) -> dict:
    """One alone cell beside its combined cell: difference, margin, reading."""
    acc, acc_alone = float(combined["accuracy"]), float(alone["accuracy"])
    n, n_alone = combined.get("n"), alone.get("n")
    margin = noise.of_difference(acc, int(n) if n else None, acc_alone, int(n_alone) if n_alone else None)
    delta = acc - acc_alone
    reading = COMBINED_BETTER if delta > margin.points else ALONE_BETTER if delta < -margin.points else WITHIN_NOISE
    return {
        "teacher": alone["teacher"],
        "accuracy": acc_alone,
        "n": n_alone,
        "updates": alone.get("updates"),
        "delta": delta,
        "margin": margin.points,
        "margin_how": margin.how,
        "reading": reading,
    }


def compare(pairs: list[dict], noise: Noise) -> tuple[list[dict], list[str]]:
    """(one entry per combined cell with its alone cells, warnings) from the collected
    ``{"combined": row, "alone": row}`` pairs (distilled rows as :mod:`cotgap.report.collect` makes them)."""
    groups: dict[str, dict] = {}
    warnings: list[str] = []
    for p in pairs:
        c, a = p["combined"], p["alone"]
        g = groups.setdefault(
            p["combined_dir"],
            {
                "task": c["task"],
                "setting": c["setting"],
                "teachers": c["teacher"],
                "student": c["student"],
                "student_size": c["student_size"],
                "seed": c.get("seed"),
                "accuracy": float(c["accuracy"]),
                "n": c.get("n"),
                "updates": c.get("updates"),
                "alone": [],
            },
        )
        entry = _one(c, a, noise)
        g["alone"].append(entry)
        if None not in (c.get("updates"), a.get("updates")) and _num(c, "updates") != _num(a, "updates"):
            warnings.append(
                f"{c['task']}: {c['setting']} ({c['teacher']}) -> student {c['student']}: the cell on "
                f"{a['teacher']} alone trained {a['updates']} updates, the combined cell {c['updates']}; "
                "part of the difference may be training length"
            )
    rows = sorted(groups.values(), key=lambda g: (g["task"], g["setting"], g["teachers"], g["student"], str(g["seed"])))
    for g in rows:
        g["alone"].sort(key=lambda e: e["teacher"])
    return rows, warnings
