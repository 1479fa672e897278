"""Inputs of the cross-run report (:mod:`cotgap.report.cross_run`): run directories and CSV tables -> rows.

Run directories (``cotgap run``) are found directly or inside sweep directories (``cotgap sweep``,
through their ``sweep.json`` or by looking for run directories up to three levels down). Each
run's own ``report.json`` / ``report.png`` is rebuilt from its stored samples, then the runs become
rows for :func:`cotgap.report.analysis.analyse`:

- setting = the strategy name, plus ``+cross-teacher-filter`` for runs of that ablation;
- teacher = the run's teacher(s) (``a+b`` for a teacher set), student = the student name;
- student size = the student's parameter count from the manifest (``135M``, ``1.5B``, …);
- accuracy, with the run's paired-bootstrap 95 % interval of distilled − baseline, and the
  optimizer updates of its training;
- teachers' accuracy / kept = each teacher's accuracy on the train split it generated
  rationales for, and the number of rationales kept (preferring ``plain`` runs).

External tables (``--csv`` distilled students, ``--baseline-csv`` pre-distillation, optionally
``--teacher-csv``; see :mod:`cotgap.report.tables` for the columns) give rows of the same kinds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cotgap.errors import UserError
from cotgap.report import tables

_SKIP_DIRS = {"_generations", "generations", "filtered", "baseline", "distilled", "stages", "student", "strategy",
              "tables", "__pycache__"}


def size_label(n: int | float) -> str:
    """Parameter count -> ``"135M"`` / ``"1.78B"`` (what :func:`tables.parse_size` reads)."""
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
    run_reports: list[tuple[str, dict]] = field(default_factory=list)  # (run dir, its rebuilt report)


def is_run(d: Path) -> bool:
    """Whether ``d`` is a run directory (it has config.json and manifest.json)."""
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
        if is_run(p):
            runs.append(p)
            continue
        summary = read_summary(p)
        if summary is not None:
            sweeps.append(summary)
        found = []
        for root, dirs, _files in os.walk(p):
            r = Path(root)
            depth = len(r.relative_to(p).parts)
            if r != p and is_run(r):
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
    """``d``'s report rebuilt from its stored results, after checking its stage chain; nothing is
    written into ``d`` (the cross-run report stores it in its own folder)."""
    from cotgap.jsonio import read_json
    from cotgap.report import run_report
    from cotgap.rundir import RunDir

    RunDir(d, create=False).verify()
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
    return report


def _load_reports(run_dirs: list[Path], rebuild: bool, out: Collected) -> list[tuple[Path, dict]]:
    """Each finished run's report (rebuilt from its stored results); the others become warnings."""
    from cotgap.jsonio import read_json

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
        out.run_reports.append((str(d), rep))
    return reports


def _teacher_totals(r: dict) -> dict[str, list[int]]:
    """[generated, correct, kept] per teacher of run report ``r``, summed over its sources."""
    per: dict[str, list[int]] = {}
    for s in r.get("sources") or []:
        t = _teacher_of(s["source"], r["teachers"])
        if t is None:
            continue
        acc = per.setdefault(t, [0, 0, 0])
        acc[0] += s["generated"]
        acc[1] += s["correct"]
        acc[2] += s["kept"]
    return per


_Best = dict[tuple, tuple[float, Path, dict]]  # (task, setting, teacher, student) -> (finished, run dir, row info)
_TeacherCands = dict[tuple[str, str, bool], list[tuple[str, float, int, str]]]  # (task, teacher, ablated) -> …


def _index_reports(reports: list[tuple[Path, dict]], out: Collected) -> tuple[_Best, dict[str, set], _TeacherCands]:
    """The newest run per (task, setting, teacher, student), each task's test sets, and teacher candidates."""
    labels = _labels([r["student"] for _, r in reports] + [t for _, r in reports for t in r["teachers"]])
    best: _Best = {}
    test_sets: dict[str, set] = {}
    teacher_cands: _TeacherCands = {}
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
        for t, (gen, corr, kept) in _teacher_totals(r).items():
            teacher_cands.setdefault((task, labels[t], bool(ablation)), []).append(
                (strategy, 100.0 * corr / max(1, gen), kept, r["data"]["train"]["sha256"]))
    return best, test_sets, teacher_cands


def _add_run_rows(best: _Best, out: Collected) -> None:
    """Distilled, baseline and run rows of the chosen runs (a student's first baseline is kept)."""
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


def _warn_test_sets(test_sets: dict[str, set], out: Collected) -> None:
    """Warn about tasks whose runs were evaluated on different test sets."""
    for task, sets in test_sets.items():
        if len(sets) > 1:
            ns = ", ".join(str(n) for _, n in sorted(sets, key=lambda x: x[1]))
            out.warnings.append(f"runs of task {task} were evaluated on different test sets (n = {ns}): "
                                "their accuracies are not directly comparable")


def _add_teacher_rows(teacher_cands: _TeacherCands, out: Collected) -> None:
    """One teacher row per (task, teacher), from a ``plain`` run where there is one, per ablation or not."""
    for (task, teacher, abl), cands in teacher_cands.items():
        plain = [c for c in cands if c[0] == "plain"]
        strategy, acc, kept, sha = (plain or cands)[0]
        if len({c[3] for c in cands}) > 1:
            out.warnings.append(f"teacher {teacher} generated for different train sets of {task} across runs: "
                                f"its accuracy and kept count come from a {strategy} run")
        row = {"task": task, "teacher": teacher, "accuracy": round(acc, 6), "kept": kept}
        (out.ablation_teachers if abl else out.teachers).append(row)


def collect_runs(run_dirs: list[Path], *, rebuild: bool = True) -> Collected:
    """Rows (distilled, baseline, teachers, runs) and warnings from finished run directories."""
    out = Collected()
    reports = _load_reports(run_dirs, rebuild, out)
    if not reports:
        return out
    best, test_sets, teacher_cands = _index_reports(reports, out)
    _add_run_rows(best, out)
    _warn_test_sets(test_sets, out)
    _add_teacher_rows(teacher_cands, out)
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
