"""The cross-run report (``cotgap report``): many runs (or external CSV results) -> one answer per task.

Everything is rebuilt from stored results; no model is loaded. Inputs:

- run directories (``cotgap run``) and sweep directories (``cotgap sweep``, found through their
  ``sweep.json`` or by looking for run directories up to three levels down);
- and/or external tables: ``--csv`` (distilled students), ``--baseline-csv`` (pre-distillation)
  and optionally ``--teacher-csv`` (see :mod:`cotgap.report.analysis` for the columns).

Each run's own ``report.json`` / ``report.png`` is rebuilt from its stored samples, then the
runs become rows for :func:`cotgap.report.analysis.analyse`:

- setting = the strategy name, plus ``+cross-teacher-filter`` for runs of that ablation;
- teacher = the run's teacher(s) (``a+b`` for a teacher set), student = the student name;
- student size = the student's parameter count from the manifest (``135M``, ``1.5B``, …);
- accuracy, with the run's paired-bootstrap 95 % interval of distilled − baseline, and the
  optimizer updates of its training;
- teachers' accuracy / kept = each teacher's accuracy on the train split it generated
  rationales for, and the number of rationales kept (preferring ``plain`` runs).

Runs (and CSV rows) of the ``cross-teacher-filter`` ablation are analysed *separately* from the
rest, labelled with the ablation's name everywhere, and compared side by side with their
unfiltered counterparts. Outputs (in ``--out``): ``report.json`` (schema ``cotgap.report/1``,
documented in docs/report.md), ``report.md``, ``accuracy_vs_size.png``, ``kept.png``,
``filter_ablation*.png`` (when ablation results are present) and ``tables/*.csv`` (the rows
analysed, re-usable with ``--csv``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cotgap.errors import UserError
from cotgap.report import analysis, analysis_json, tables, terminal

SCHEMA = "cotgap.report/1"
ABLATION = "cross-teacher-filter"
ABLATION_DOC = ("each teacher's training data restricted to the questions every compared teacher solved "
                "(the prior-work protocol); not how cotgap filters by default")
GUIDELINES = [
    "Verify that distillation beats the student's pre-distillation few-shot baseline.",
    "When candidate teachers differ substantially, prefer the stronger one: a ratio of about 1.3x or more "
    "in kept (correct) training examples consistently favoured stronger teachers.",
]
_SKIP_DIRS = {"_generations", "generations", "filtered", "baseline", "distilled", "stages", "student", "strategy",
              "tables", "__pycache__"}


def is_ablation(setting: str) -> bool:
    return setting == ABLATION or setting.endswith("+" + ABLATION)


def size_label(n: int | float) -> str:
    """Parameter count -> ``"135M"`` / ``"1.78B"`` (what :func:`analysis.parse_size` reads)."""
    n = float(n)
    if n <= 0:
        raise ValueError(f"invalid parameter count {n!r}")
    if n >= 999.5e6:
        return f"{n / 1e9:.3g}B"
    return f"{n / 1e6:.3g}M"


@dataclass
class Collected:
    distilled: list[dict] = field(default_factory=list)
    baseline: list[dict] = field(default_factory=list)
    teachers: list[dict] = field(default_factory=list)  # unfiltered runs / --teacher-csv
    ablation_teachers: list[dict] = field(default_factory=list)  # kept counts under the ablation
    runs: list[dict] = field(default_factory=list)
    sweeps: list[dict] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# finding runs
# ---------------------------------------------------------------------------------------------


def _is_run(d: Path) -> bool:
    return (d / "config.json").is_file() and (d / "manifest.json").is_file()


def find_runs(paths) -> tuple[list[Path], list[dict]]:
    """Run directories under ``paths`` (run dirs, sweep dirs or folders of runs) and sweep summaries."""
    from cotgap.report.sweep_file import read_summary

    runs: list[Path] = []
    sweeps: list[dict] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise UserError(f"{raw} does not exist")
        if not p.is_dir():
            raise UserError(f"{raw} is not a directory: give run or sweep directories (CSV files go after --csv)")
        p = p.resolve()
        if _is_run(p):
            runs.append(p)
            continue
        summary = read_summary(p)
        if summary is not None:
            sweeps.append(summary)
        found = []
        for root, dirs, _files in os.walk(p):
            r = Path(root)
            depth = len(r.relative_to(p).parts)
            if r != p and _is_run(r):
                found.append(r)
                dirs[:] = []
                continue
            if r != p:
                nested = read_summary(r)
                if nested is not None:
                    sweeps.append(nested)
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".") and depth < 3)
        if not found:
            raise UserError(f"no cotgap runs found in {raw} (expected run directories with config.json and "
                            "manifest.json, e.g. from `cotgap run` or `cotgap sweep`)")
        runs.extend(found)
    return list(dict.fromkeys(runs)), sweeps


# ---------------------------------------------------------------------------------------------
# runs -> rows
# ---------------------------------------------------------------------------------------------


def _labels(specs) -> dict[str, str]:
    """Short display names (folder names for local models) unless two specs would collide."""
    specs = list(dict.fromkeys(specs))
    short = {s: (Path(s).name if s.startswith(("/", ".", "~")) else s) for s in specs}
    counts: dict[str, int] = {}
    for v in short.values():
        counts[v] = counts.get(v, 0) + 1
    return {s: (v if counts[v] == 1 else s) for s, v in short.items()}


def _teacher_of(source: str, teachers: list[str]) -> str | None:
    """Which of the run's teachers wrote source ``source`` (named ``<spec>`` or ``<spec> [role]``…)."""
    best = None
    for t in teachers:
        forms = {t}
        if t.startswith(("/", ".", "~")):
            forms.add(str(Path(t).expanduser().resolve()))
        for f in forms:
            if source == f or source.startswith((f + " ", f + "/", f + "[", f + ":")):
                if best is None or len(f) > len(best[1]):
                    best = (t, f)
    if best is not None:
        return best[0]
    return teachers[0] if len(teachers) == 1 else None


def rebuild_run(d: Path) -> dict:
    """Rebuild ``d``'s report.json / report.png from its stored results; returns the report."""
    from cotgap.jsonio import read_json, write_json
    from cotgap.report import run_report

    cfg = read_json(d / "config.json")
    report = run_report.build(d, bootstrap_iters=int(cfg.get("bootstrap_iters", 10000)))
    old = d / "report.json"
    if old.is_file():
        try:
            prev = read_json(old)
            if isinstance(prev, dict) and "run" in prev:
                report["run"] = prev["run"]
        except ValueError:
            pass
    write_json(old, report)
    try:
        run_report.plot(report, d / "report.png")
    except Exception:  # a per-run figure must not stop the cross-run report
        pass
    return report


def collect_runs(run_dirs: list[Path], *, rebuild: bool = True) -> Collected:
    from cotgap.jsonio import read_json

    out = Collected()
    reports: list[tuple[Path, dict]] = []
    for d in run_dirs:
        if not (d / "stages" / "distilled.json").is_file():
            out.warnings.append(f"run {d} is incomplete (no distilled evaluation yet): left out")
            continue
        try:
            rep = rebuild_run(d) if rebuild else read_json(d / "report.json")
        except UserError:
            raise
        except Exception as exc:  # unreadable or inconsistent stored results
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            out.warnings.append(f"run {d}: cannot rebuild its report ({first}): left out")
            continue
        reports.append((d, rep))
    if not reports:
        return out

    labels = _labels([r["student"] for _, r in reports] + [t for _, r in reports for t in r["teachers"]])
    best: dict[tuple, tuple[float, Path, dict]] = {}
    test_sets: dict[str, set] = {}
    teacher_cands: dict[tuple[str, str, bool], list[tuple[str, float, int, str]]] = {}
    for d, r in reports:
        task = r["task"]
        strategy = r["strategy"]["name"]
        ablation = r.get("ablation")
        setting = strategy + (f"+{ablation}" if ablation else "")
        student = labels[r["student"]]
        params = r.get("parameters") or {}
        n_student = params.get(r["student"]) or next(iter(params.values()), None)
        if not n_student:
            out.warnings.append(f"run {d}: no parameter count for student {r['student']}: left out")
            continue
        teacher = "+".join(labels[t] for t in r["teachers"]) or "default"
        test_sets.setdefault(task, set()).add((r["data"]["test"]["sha256"], r["data"]["test"]["n"]))
        finished = (d / "stages" / "distilled.json").stat().st_mtime
        key = (task, setting, teacher, student)
        if key in best:
            other = best[key][1]
            keep_new = finished > best[key][0]
            out.warnings.append(f"runs {other} and {d} both give task {task}, setting {setting}, teacher {teacher}, "
                                f"student {student}: using the newer one ({d if keep_new else other})")
            if not keep_new:
                continue
        best[key] = (finished, d, {"r": r, "setting": setting, "student": student, "teacher": teacher,
                                   "size": size_label(n_student)})
        # teachers: accuracy on the train split they generated for, and the rationales kept
        per: dict[str, list[int]] = {}
        for s in r.get("sources") or []:
            t = _teacher_of(s["source"], r["teachers"])
            if t is None:
                continue
            acc = per.setdefault(t, [0, 0, 0])
            acc[0] += s["generated"]
            acc[1] += s["correct"]
            acc[2] += s["kept"]
        for t, (gen, corr, kept) in per.items():
            teacher_cands.setdefault((task, labels[t], bool(ablation)), []).append(
                (strategy, 100.0 * corr / max(1, gen), kept, r["data"]["train"]["sha256"]))

    base_seen: dict[tuple[str, str], tuple[float, Path]] = {}
    for _, d, info in sorted(best.values(), key=lambda v: str(v[1])):
        r = info["r"]
        diff = r.get("difference") or {}
        tr = r.get("training") or {}
        out.distilled.append({
            "setting": info["setting"], "task": r["task"], "teacher": info["teacher"], "student": info["student"],
            "student_size": info["size"], "accuracy": r["distilled"]["accuracy"],
            "ci_low": diff.get("low"), "ci_high": diff.get("high"), "updates": tr.get("updates"),
            "kept": sum(s["kept"] for s in r.get("sources") or []),
        })
        bkey = (r["task"], info["student"])
        bacc = r["baseline"]["accuracy"]
        if bkey not in base_seen:
            base_seen[bkey] = (bacc, d)
            out.baseline.append({"task": r["task"], "student": info["student"], "student_size": info["size"],
                                 "accuracy": bacc})
        elif abs(base_seen[bkey][0] - bacc) > 1e-9:
            out.warnings.append(f"baseline of student {info['student']} on {r['task']} differs between runs "
                                f"({base_seen[bkey][0]:.1f}% in {base_seen[bkey][1]}, {bacc:.1f}% in {d}): "
                                "the first is used")
        out.runs.append({"dir": str(d), "task": r["task"], "setting": info["setting"], "strategy": r["strategy"]["name"],
                         "ablation": r.get("ablation"), "teacher": info["teacher"], "teachers": r["teachers"],
                         "student": info["student"], "student_size": info["size"], "verdict": r.get("verdict"),
                         "baseline": bacc, "distilled": r["distilled"]["accuracy"]})
    for task, sets in test_sets.items():
        if len(sets) > 1:
            ns = ", ".join(str(n) for _, n in sorted(sets, key=lambda x: x[1]))
            out.warnings.append(f"runs of task {task} were evaluated on different test sets (n = {ns}): "
                                "their accuracies are not directly comparable")
    for (task, teacher, abl), cands in teacher_cands.items():
        plain = [c for c in cands if c[0] == "plain"]
        strategy, acc, kept, sha = (plain or cands)[0]
        if len({c[3] for c in cands}) > 1:
            out.warnings.append(f"teacher {teacher} generated for different train sets of {task} across runs: "
                                f"its accuracy and kept count come from a {strategy} run")
        row = {"task": task, "teacher": teacher, "accuracy": round(acc, 6), "kept": kept}
        (out.ablation_teachers if abl else out.teachers).append(row)
    return out


def collect_csv(csv_file: str | None, baseline_csv: str | None, teacher_csv: str | None) -> Collected:
    out = Collected()
    if csv_file is None:
        if baseline_csv:
            raise UserError("--baseline-csv needs --csv (the distilled results)")
        if teacher_csv:  # with run directories: teacher accuracies / kept counts measured elsewhere
            try:
                out.teachers = tables.read_csv(teacher_csv, tables.TEACHER_COLUMNS)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            out.ablation_teachers = [{**t, "kept": ""} for t in out.teachers]
            out.inputs = [str(teacher_csv)]
        return out
    if not baseline_csv:
        raise UserError("--csv needs --baseline-csv FILE (task,student,student_size,accuracy): distillation is "
                        "judged against the pre-distillation baseline")
    try:
        out.distilled = tables.read_csv(csv_file, tables.DISTILLED_COLUMNS)
        out.baseline = tables.read_csv(baseline_csv, tables.BASELINE_COLUMNS)
        if teacher_csv:
            out.teachers = tables.read_csv(teacher_csv, tables.TEACHER_COLUMNS)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    # under the ablation the teachers' kept counts are unknown (the CSV's are unfiltered)
    out.ablation_teachers = [{**t, "kept": ""} for t in out.teachers]
    out.inputs = [str(p) for p in (csv_file, baseline_csv, teacher_csv) if p]
    return out


def collect(paths=(), csv_file=None, baseline_csv=None, teacher_csv=None) -> Collected:
    if not paths and not csv_file:
        raise UserError("give run or sweep directories, or --csv FILE --baseline-csv FILE [--teacher-csv FILE]")
    total = Collected()
    if paths:
        run_dirs, sweeps = find_runs(paths)
        total = collect_runs(run_dirs)
        total.sweeps = sweeps
        total.inputs = [str(Path(p)) for p in paths]
        if not total.distilled:
            if not csv_file:
                detail = "; ".join(total.warnings) or "no finished runs"
                raise UserError(f"no finished runs to report on ({detail})")
    ext = collect_csv(csv_file, baseline_csv, teacher_csv)
    total.distilled += ext.distilled
    total.baseline += [b for b in ext.baseline
                       if (b["task"], b["student"]) not in {(x["task"], x["student"]) for x in total.baseline}]
    given = {(t["task"], t["teacher"]) for t in ext.teachers}  # --teacher-csv overrides what runs give
    total.teachers = [t for t in total.teachers if (t["task"], t["teacher"]) not in given] + ext.teachers
    total.ablation_teachers = [t for t in total.ablation_teachers
                               if (t["task"], t["teacher"]) not in given] + ext.ablation_teachers
    total.inputs += ext.inputs
    return total


# ---------------------------------------------------------------------------------------------
# analysis -> report.json
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    from cotgap.jsonio import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})
    atomic_write_text(path, buf.getvalue())


def write(report: dict, col: Collected, out_dir: Path) -> dict:
    """Write tables, plots, report.json and report.md into ``out_dir``; returns the file map."""
    from cotgap.jsonio import atomic_write_text, write_json
    from cotgap.report import plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict = {"json": "report.json", "markdown": "report.md", "plots": {}, "tables": {}}
    _write_csv(out_dir / "tables" / "distilled.csv", col.distilled,
               [*tables.DISTILLED_COLUMNS, "ci_low", "ci_high", "updates", "kept"])
    _write_csv(out_dir / "tables" / "baseline.csv", col.baseline, list(tables.BASELINE_COLUMNS))
    files["tables"] = {"distilled": "tables/distilled.csv", "baseline": "tables/baseline.csv"}
    if col.teachers:
        _write_csv(out_dir / "tables" / "teachers.csv", col.teachers, [*tables.TEACHER_COLUMNS, "kept"])
        files["tables"]["teachers"] = "tables/teachers.csv"
    if report["ablation"]:
        _write_csv(out_dir / "tables" / "filter_ablation.csv", report["ablation"]["comparison"],
                   ["task", "setting", "ablation", "teacher", "student", "student_size", "unfiltered", "filtered",
                    "delta", "kept_unfiltered", "kept_filtered", "updates_unfiltered", "updates_filtered"])
        files["tables"]["filter_ablation"] = "tables/filter_ablation.csv"

    primary = [r for r in col.distilled if not is_ablation(r["setting"])]
    ablated = [r for r in col.distilled if is_ablation(r["setting"])]
    try:
        plots.plot_accuracy_vs_size(primary or ablated, col.baseline, out_dir / "accuracy_vs_size.png")
        files["plots"]["accuracy_vs_size"] = "accuracy_vs_size.png"
        kept_rows = list(col.teachers) + [{**t, "teacher": f"{t['teacher']} [{ABLATION}]"}
                                          for t in col.ablation_teachers if not tables.is_empty(t.get("kept"))]
        plots.plot_kept(kept_rows, out_dir / "kept.png")
        files["plots"]["kept"] = "kept.png"
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if ablated:
        settings = list(dict.fromkeys(r["setting"] for r in ablated))
        ab_files = []
        for s in settings:
            ref = None if s == ABLATION else s[: -len("+" + ABLATION)]
            name = "filter_ablation.png" if len(settings) == 1 else f"filter_ablation-{ref or 'all'}.png"
            try:
                plots.plot_filter_ablation(col.distilled, out_dir / name, ablation_setting=s, reference_setting=ref)
                ab_files.append(name)
            except ValueError as exc:
                report["warnings"].append(f"filter-ablation plot for {s}: {exc}")
        if ab_files:
            files["plots"]["filter_ablation"] = ab_files
    report["files"] = files
    write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", to_markdown(report))
    return files


# ---------------------------------------------------------------------------------------------
# markdown and terminal
# ---------------------------------------------------------------------------------------------


def _md(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _f(x, spec=".1f", none="–") -> str:
    return none if x is None else format(x, spec)


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
    return out + [""]


def _ratio(t: dict) -> str:
    if t.get("kept_ratio_infinite"):
        return "∞"
    return "–" if t.get("kept_ratio") is None else f"{t['kept_ratio']:.2f}x"


def _gap_summary(t: dict) -> str:
    gaps = t.get("capacity_gaps") or []
    if not gaps:
        return "–"
    if any(g["verdict"] == analysis.GAP_OBSERVED for g in gaps):
        return analysis.GAP_OBSERVED
    if all(g["verdict"] == analysis.INSUFFICIENT for g in gaps):
        return analysis.INSUFFICIENT
    return analysis.NO_GAP


def _task_md(t: dict, label: str = "") -> list[str]:
    L = [f"### {t['task']}{label}", "",
         f"**Distillation effective:** {'yes' if t['effective'] else 'no'} — helped in {t['n_helped']} of "
         f"{t['n_cells']} (teacher, student) cells ({t['n_no_change']} no significant change, {t['n_hurt']} hurt).", "",
         f"**Recommendation:** {t['recommendation']}. {t['reason']}", ""]
    L += _table(["setting", "teacher", "student", "size", "distilled %", "baseline %", "diff", "95% CI", "verdict",
                 "updates"],
                [[c["setting"], c["teacher"], c["student"], c["student_size"], _f(c["distilled"]), _f(c["baseline"]),
                  f"{c['diff']:+.1f}",
                  "–" if c["ci_low"] is None else f"[{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]", c["verdict"],
                  _f(c["updates"], "d")] for c in t["cells"]])
    if t["teachers"]:
        L += ["Teachers (accuracy on the train split they generated for, or as given; kept = correct rationales "
              "kept for training):", ""]
        L += _table(["teacher", "accuracy %", "kept"],
                    [[x["teacher"], _f(x["accuracy"]), _f(x["kept"], "d")] for x in t["teachers"]])
        if t["strongest_teacher"]:
            L += [f"Kept-example ratio {t['strongest_teacher']} / {t['weakest_teacher']}: {_ratio(t)} "
                  "(guideline: prefer the stronger teacher at ≥ 1.3x).", ""]
    if t["capacity_gaps"]:
        L += ["Capacity gap (advantage = weaker teacher's student − stronger teacher's student, points):", ""]
        L += _table(["setting", "stronger", "weaker", "basis", "advantage by size", "verdict", "detail"],
                    [[g["setting"], g["stronger"], g["weaker"], g["basis"],
                      ", ".join(f"{s}: {a:+.1f}" for s, a in zip(g["sizes"], g["advantages"])) or "–",
                      g["verdict"], g["detail"]] for g in t["capacity_gaps"]])
    if t["warnings"]:
        L += ["Warnings:", ""] + [f"- {_md(w)}" for w in t["warnings"]] + [""]
    return L


def to_markdown(report: dict) -> str:
    files = report.get("files") or {}
    plots = files.get("plots") or {}
    p = report["parameters"]
    n_runs = len(report["inputs"]["runs"])
    L = ["# cotgap report", "",
         f"Generated {report['created']} from {', '.join(report['inputs']['paths']) or 'stored results'}"
         f"{f' ({n_runs} runs)' if n_runs else ''}. Machine-readable: `report.json` ({report['schema']}).", "",
         "Guidelines applied:", ""]
    L += [f"{i}. {g}" for i, g in enumerate(report["guidelines"], 1)] + [""]
    L += [f"Noise margin {p['noise_margin']:g} points (verdicts without intervals, capacity-gap rule); "
          f"kept-ratio threshold {p['kept_ratio_threshold']:g}x.", ""]
    if report["tasks"]:
        L += ["## Summary", ""]
        L += _table(["task", "distillation effective", "helped / cells", "kept ratio", "capacity gap",
                     "recommendation"],
                    [[t["task"], "yes" if t["effective"] else "no", f"{t['n_helped']} / {t['n_cells']}", _ratio(t),
                      _gap_summary(t), t["recommendation"]] for t in report["tasks"]])
    if plots.get("accuracy_vs_size"):
        L += ["![accuracy vs student size](accuracy_vs_size.png)", "",
              "Accuracy against student size, one line per teacher; dashed: the pre-distillation baseline.", ""]
    if report["tasks"]:
        L += ["## Tasks", ""]
        for t in report["tasks"]:
            L += _task_md(t)
    if plots.get("kept"):
        L += ["![kept examples per teacher](kept.png)", "", "Correct (kept) training examples per teacher.", ""]
    ab = report.get("ablation")
    if ab:
        L += [f"## Ablation: {ab['name']}", "", f"> ABLATION `{ab['name']}`: {ab['description']}. These results "
              "are analysed separately and never mixed into the recommendations above.", ""]
        if ab["comparison"]:
            L += ["Filtered vs unfiltered, side by side:", ""]
            L += _table(["task", "setting", "teacher", "student", "size", "unfiltered %", f"filtered ({ab['name']}) %",
                         "delta", "kept unfiltered", "kept filtered", "updates unfiltered", "updates filtered"],
                        [[r["task"], r["setting"] or "–", r["teacher"], r["student"], r["student_size"],
                          _f(r["unfiltered"]), _f(r["filtered"]), _f(r["delta"], "+.1f"),
                          _f(r["kept_unfiltered"], "d"), _f(r["kept_filtered"], "d"), _f(r["updates_unfiltered"], "d"),
                          _f(r["updates_filtered"], "d")] for r in ab["comparison"]])
        for f in plots.get("filter_ablation") or []:
            L += [f"![filter ablation]({f})", ""]
        for t in ab["tasks"]:
            L += _task_md(t, f" [ABLATION: {ab['name']}]")
        if ab["warnings"]:
            L += ["Warnings:", ""] + [f"- {_md(w)}" for w in ab["warnings"]] + [""]
    g = report.get("generation")
    if g:
        L += ["## Teacher generations", "",
              f"Latest sweep invocation: {g['computed']} computed, {g['reused']} reused from the shared cache "
              "(each is computed once per teacher, task, split, prompt and sampling settings).", ""]
        for s in g["sweeps"]:
            c = s.get("cells") or {}
            L += [f"- sweep `{s['name']}` ({s['dir']}): {c.get('done', 0)} cells done, {c.get('skipped', 0)} skipped, "
                  f"{c.get('failed', 0)} failed"]
            L += [f"  - {x['name']}: {x['status']} — {_md(x['reason'])}" for x in s["not_done"]]
        L += [""]
    if report["inputs"]["runs"]:
        L += ["## Runs", ""]
        L += _table(["run", "task", "setting", "teacher", "student", "size", "baseline %", "distilled %", "verdict"],
                    [[Path(r["dir"]).name, r["task"], r["setting"], r["teacher"], r["student"], r["student_size"],
                      _f(r["baseline"]), _f(r["distilled"]), r["verdict"]] for r in report["inputs"]["runs"]])
    if report["warnings"]:
        L += ["## Warnings", ""] + [f"- {_md(w)}" for w in report["warnings"]] + [""]
    return "\n".join(L).rstrip() + "\n"


def render(report: dict, prim, abl, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    if prim:
        terminal.render_tables(prim, console)
    ab = report.get("ablation")
    if ab:
        console.rule(f"[bold magenta]ABLATION: {ab['name']}[/]")
        console.print(f"[magenta]{escape(ab['description'])}[/]")
        if ab["comparison"]:
            t = Table(title=f"filtered ({ab['name']}) vs unfiltered")
            for c in ("task", "setting", "teacher", "student", "size", "unfiltered", "filtered", "delta",
                      "kept unf. / filt.", "updates unf. / filt."):
                t.add_column(c, justify="right" if c in ("unfiltered", "filtered", "delta") else "left")
            for r in ab["comparison"]:
                t.add_row(escape(r["task"]), escape(r["setting"] or "-"), escape(r["teacher"]), escape(r["student"]),
                          r["student_size"], _f(r["unfiltered"]), _f(r["filtered"]), _f(r["delta"], "+.1f"),
                          f"{_f(r['kept_unfiltered'], 'd')} / {_f(r['kept_filtered'], 'd')}",
                          f"{_f(r['updates_unfiltered'], 'd')} / {_f(r['updates_filtered'], 'd')}")
            console.print(t)
        if abl:
            terminal.render_tables(abl, console)
        for w in ab["warnings"]:
            console.print(f"[yellow]warning:[/yellow] {escape(w)}")
    g = report.get("generation")
    if g:
        console.print(f"teacher generations: [bold]{g['computed']} computed[/], [bold]{g['reused']} reused[/]")
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")


def default_out(paths, csv_file) -> Path:
    if paths:
        first = Path(paths[0]).expanduser()
        if not _is_run(first):
            return first
    return Path("cotgap-report")


def make_report(paths=(), *, csv_file=None, baseline_csv=None, teacher_csv=None, out=None, noise_margin=1.0,
                kept_ratio_threshold=1.3, console=None) -> tuple[dict, Path]:
    """Collect, analyse, write and (with ``console``) print. Returns (report, output folder)."""
    col = collect(paths, csv_file, baseline_csv, teacher_csv)
    report, prim, abl = build(col, noise_margin=noise_margin, kept_ratio_threshold=kept_ratio_threshold)
    out_dir = Path(out) if out else default_out(paths, csv_file)
    if _is_run(out_dir):
        raise UserError(f"{out_dir} is a run directory: its report.json is the run's own; choose another --out")
    write(report, col, out_dir)
    if console is not None:
        render(report, prim, abl, console)
    return report, out_dir
