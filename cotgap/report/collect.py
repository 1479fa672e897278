"""Inputs of the cross-run report (:mod:`cotgap.report.cross_run`): run directories and CSV tables -> rows.

Run directories (``cotgap run``) are found directly or inside sweep directories (``cotgap sweep``,
through their ``sweep.json`` or by looking for run directories up to three levels down). Each
run's own ``report.json`` / ``report.png`` is rebuilt from its stored samples, then the runs become
rows for :func:`cotgap.report.analysis.analyse`:

- setting = the strategy name, plus ``+cross-teacher-filter`` for runs of that ablation;
- teacher = the run's teacher(s) (``a+b`` for a teacher set), student = the student name;
- student size = the student's parameter count from the manifest (``135M``, ``1.5B``, …);
- accuracy, with the run's exact test (``p_value``, ``wins``, ``losses``, test-set size ``n``), its
  paired-bootstrap interval of distilled − baseline (display), the optimizer updates of its
  training, and its ``seed``;
- teachers (:mod:`cotgap.report.teacher_data`): each teacher's accuracy on the train split it
  generated rationales for, the distinct questions it kept, its parameter count and mean CoT
  length (preferring ``plain`` runs); a teacher assistant's data is credited to no teacher.

Runs of one (task, setting, teacher, student) whose configs differ only in ``seed`` are
*replicates*: each becomes its own row. Runs of it that differ in anything else, or repeat a
seed, are duplicates: the newest is used, with a warning.

External tables (``--csv`` distilled students, ``--baseline-csv`` pre-distillation, optionally
``--teacher-csv``; see :mod:`cotgap.report.tables` for the columns) give rows of the same kinds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cotgap.errors import UserError
from cotgap.protocol.constants import REFERENCE_STRATEGY
from cotgap.report import tables

_SKIP_DIRS = {
    "_generations",
    "generations",
    "filtered",
    "baseline",
    "distilled",
    "stages",
    "student",
    "strategy",
    "tables",
    "__pycache__",
}


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
    # a sweep's each-teacher-alone runs beside their combined cell (cotgap.report.alone), not analysed
    alone: list[dict] = field(default_factory=list)


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
            raise UserError(
                f"no cotgap runs found in {raw} (expected run directories with config.json and "
                "manifest.json, e.g. from `cotgap run` or `cotgap sweep`)"
            )
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


def _load_reports(run_dirs: list[Path], rebuild: bool, out: Collected) -> list[tuple[Path, dict, dict]]:
    """Each finished run's (dir, report rebuilt from its stored results, config); the others become warnings."""
    from cotgap.jsonio import read_json

    reports: list[tuple[Path, dict, dict]] = []
    for d in run_dirs:
        if not (d / "stages" / "distilled.json").is_file():
            out.warnings.append(f"run {d} is incomplete (no distilled evaluation yet): left out")
            continue
        try:
            rep = rebuild_run(d) if rebuild else read_json(d / "report.json")
            cfg = read_json(d / "config.json")
        except UserError:
            raise
        except Exception as exc:  # unreadable or inconsistent stored results
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            out.warnings.append(f"run {d}: cannot rebuild its report ({first}): left out")
            continue
        reports.append((d, rep, cfg))
        out.run_reports.append((str(d), rep))
    return reports


@dataclass
class _Entry:
    """One finished run as a candidate row of its cell (task, setting, teacher, student)."""

    finished: float  # when its distilled evaluation finished
    d: Path
    r: dict
    identity: str  # its config without out, threads and seed: equal for replicates
    seed: str | None
    info: dict


_Cells = dict[tuple, list[_Entry]]  # (task, setting, teacher, student) -> its runs
_TeacherCands = dict[tuple[str, str, bool], list[tuple[str, dict, str]]]  # (task, teacher, ablated) -> …


def _identity(cfg: dict) -> str:
    """What replicates share: the config without where it lives, its threads and its seed (and its
    ``training.seed`` where that equals the seed, i.e. follows it)."""
    from cotgap.jsonio import key_of

    ident = {k: v for k, v in cfg.items() if k not in ("out", "threads", "seed")}
    training = ident.get("training")
    if isinstance(training, dict) and "seed" in training and training["seed"] == cfg.get("seed"):
        ident["training"] = {k: v for k, v in training.items() if k != "seed"}
    return key_of(ident)


def _entry(d: Path, r: dict, cfg: dict, labels: dict[str, str], out: Collected) -> _Entry | None:
    """The run as a row candidate, or None (with a warning) without a student parameter count."""
    ablation = r.get("ablation")
    setting = r["strategy"]["name"] + (f"+{ablation}" if ablation else "")
    params = r.get("parameters") or {}
    n_student = params.get(r["student"]) or next(iter(params.values()), None)
    if not n_student:
        out.warnings.append(f"run {d}: no parameter count for student {r['student']}: left out")
        return None
    seed = r.get("seed", cfg.get("seed"))
    info = {
        "r": r,
        "setting": setting,
        "student": labels[r["student"]],
        "size": size_label(n_student),
        "teacher": "+".join(labels[t] for t in r["teachers"]) or "default",
        "alpha": cfg.get("alpha"),
    }
    return _Entry(
        (d / "stages" / "distilled.json").stat().st_mtime, d, r, _identity(cfg), None if seed is None else str(seed), info
    )


def _choose(key: tuple, entries: list[_Entry], out: Collected) -> list[_Entry]:
    """The runs of one cell that become rows: the newest config's runs, one per seed (newest)."""
    task, setting, teacher, student = key
    what = f"task {task}, setting {setting}, teacher {teacher}, student {student}"
    newest = max(entries, key=lambda e: e.finished)
    chosen: dict[str | None, _Entry] = {}
    for e in sorted(entries, key=lambda e: e.finished, reverse=True):
        if e.identity != newest.identity:
            out.warnings.append(
                f"runs {e.d} and {newest.d} both give {what} with configs that differ in more "
                f"than their seed: using the newer one ({newest.d})"
            )
        elif e.seed in chosen:
            out.warnings.append(
                f"runs {e.d} and {chosen[e.seed].d} both give {what}"
                f"{'' if e.seed is None else f', seed {e.seed}'}: using the newer one "
                f"({chosen[e.seed].d})"
            )
        else:
            chosen[e.seed] = e
    return list(chosen.values())


def _index_reports(reports: list[tuple[Path, dict, dict]], out: Collected) -> tuple[list[_Entry], dict[str, set], _TeacherCands]:
    """The runs that become rows (replicates kept), each task's test sets, and teacher candidates."""
    labels = _labels([r["student"] for _, r, _ in reports] + [t for _, r, _ in reports for t in r["teachers"]])
    cells: _Cells = {}
    test_sets: dict[str, set] = {}
    for d, r, cfg in reports:
        e = _entry(d, r, cfg, labels, out)
        if e is None:
            continue
        test_sets.setdefault(r["task"], set()).add((r["data"]["test"]["sha256"], r["data"]["test"]["n"]))
        cells.setdefault((r["task"], e.info["setting"], e.info["teacher"], e.info["student"]), []).append(e)
    chosen = [e for key, entries in cells.items() for e in _choose(key, entries, out)]
    teacher_cands: _TeacherCands = {}
    for e in chosen:
        if "teacher_data" not in e.r:
            out.warnings.append(f"run {e.d}: its report has no per-teacher data: its teachers are left out")
            continue
        for t in e.r["teacher_data"]:
            teacher_cands.setdefault((e.r["task"], labels[t["teacher"]], bool(e.r.get("ablation"))), []).append(
                (e.r["strategy"]["name"], t, e.r["data"]["train"]["sha256"])
            )
    return chosen, test_sets, teacher_cands


def _distilled_row(e: _Entry) -> dict:
    """The distilled row of one chosen run."""
    r, info = e.r, e.info
    diff = r.get("difference") or {}
    tr = r.get("training") or {}
    return {
        "setting": info["setting"],
        "task": r["task"],
        "teacher": info["teacher"],
        "student": info["student"],
        "student_size": info["size"],
        "accuracy": r["distilled"]["accuracy"],
        "n": r["distilled"].get("n"),
        "seed": e.seed,
        "p_value": diff.get("p_value"),
        "wins": diff.get("wins"),
        "losses": diff.get("losses"),
        "ci_low": diff.get("low"),
        "ci_high": diff.get("high"),
        "updates": tr.get("updates"),
        "kept": sum(s.get("kept_questions", s["kept"]) for s in r.get("sources") or [] if not s.get("assistant")),
    }


def _add_run_rows(chosen: list[_Entry], out: Collected) -> None:
    """Distilled, baseline and run rows of the chosen runs (a student's first baseline is kept)."""
    base_seen: dict[tuple[str, str], tuple[float, Path]] = {}
    for e in sorted(chosen, key=lambda e: str(e.d)):
        r, info, d = e.r, e.info, e.d
        out.distilled.append(_distilled_row(e))
        bkey = (r["task"], info["student"])
        bacc = r["baseline"]["accuracy"]
        if bkey not in base_seen:
            base_seen[bkey] = (bacc, d)
            out.baseline.append({"task": r["task"], "student": info["student"], "student_size": info["size"], "accuracy": bacc})
        elif abs(base_seen[bkey][0] - bacc) > 1e-9:
            out.warnings.append(
                f"baseline of student {info['student']} on {r['task']} differs between runs "
                f"({base_seen[bkey][0]:.1f}% in {base_seen[bkey][1]}, {bacc:.1f}% in {d}): "
                "the first is used"
            )
        out.runs.append(
            {
                "dir": str(d),
                "task": r["task"],
                "setting": info["setting"],
                "strategy": r["strategy"]["name"],
                "ablation": r.get("ablation"),
                "teacher": info["teacher"],
                "teachers": r["teachers"],
                "student": info["student"],
                "student_size": info["size"],
                "seed": e.seed,
                "alpha": info["alpha"],
                "verdict": r.get("verdict"),
                "p_value": (r.get("difference") or {}).get("p_value"),
                "baseline": bacc,
                "distilled": r["distilled"]["accuracy"],
                "budget": (r.get("training") or {}).get("budget"),
            }
        )


def _warn_test_sets(test_sets: dict[str, set], out: Collected) -> None:
    """Warn about tasks whose runs were evaluated on different test sets."""
    for task, sets in test_sets.items():
        if len(sets) > 1:
            ns = ", ".join(str(n) for _, n in sorted(sets, key=lambda x: x[1]))
            out.warnings.append(
                f"runs of task {task} were evaluated on different test sets (n = {ns}): "
                "their accuracies are not directly comparable"
            )


def _add_teacher_rows(teacher_cands: _TeacherCands, out: Collected) -> None:
    """One teacher row per (task, teacher), from a ``plain`` run where there is one, per ablation or not."""
    for (task, teacher, abl), cands in teacher_cands.items():
        plain = [c for c in cands if c[0] == REFERENCE_STRATEGY]
        strategy, t, _sha = (plain or cands)[0]
        if len({c[2] for c in cands}) > 1:
            out.warnings.append(
                f"teacher {teacher} generated for different train sets of {task} across runs: "
                f"its accuracy and kept count come from a {strategy} run"
            )
        row = {
            "task": task,
            "teacher": teacher,
            "accuracy": round(t["accuracy"], 6),
            "kept": t["kept"],
            "kept_rationales": t["kept_rationales"],
            "teacher_size": size_label(t["parameters"]) if t.get("parameters") else None,
            "cot_tokens": t.get("cot_mean_tokens"),
            "cot_words": t.get("cot_mean_words"),
        }
        (out.ablation_teachers if abl else out.teachers).append(row)


def collect_runs(run_dirs: list[Path], *, rebuild: bool = True, sweeps: list[dict] = ()) -> Collected:
    """Rows (distilled, baseline, teachers, runs) and warnings from finished run directories; the
    sweeps' each-teacher-alone runs become ``alone`` pairs instead (:mod:`cotgap.report.alone`)."""
    from cotgap.report.alone import alone_runs

    out = Collected()
    reports = _load_reports(run_dirs, rebuild, out)
    if not reports:
        return out
    combined_of = alone_runs(list(sweeps))
    main = [x for x in reports if x[0].resolve() not in combined_of]
    chosen, test_sets, teacher_cands = _index_reports(main, out) if main else ([], {}, {})
    _add_run_rows(chosen, out)
    _warn_test_sets(test_sets, out)
    _add_teacher_rows(teacher_cands, out)
    _add_alone_pairs([x for x in reports if x[0].resolve() in combined_of], combined_of, chosen, reports, out)
    return out


def _add_alone_pairs(
    alone: list[tuple[Path, dict, dict]],
    combined_of: dict[Path, Path],
    chosen: list[_Entry],
    reports: list[tuple[Path, dict, dict]],
    out: Collected,
) -> None:
    """Each alone run's row beside its combined cell's row (a warning when that cell has no result)."""
    labels = _labels([r["student"] for _, r, _ in reports] + [t for _, r, _ in reports for t in r["teachers"]])
    rows = {e.d.resolve(): _distilled_row(e) for e in chosen}
    for d, r, cfg in alone:
        e = _entry(d, r, cfg, labels, out)
        combined = rows.get(combined_of[d.resolve()])
        if e is None:
            continue
        if combined is None:
            out.warnings.append(
                f"run {d} (a teacher alone) has no finished combined cell {combined_of[d.resolve()]} "
                "to be compared with: left out"
            )
            continue
        out.alone.append(
            {"combined": combined, "alone": _distilled_row(e), "combined_dir": str(combined_of[d.resolve()]), "dir": str(d)}
        )


def _warn_unknown(path: str, rows: list[dict], table: str, out: Collected) -> None:
    """A warning naming the columns of ``path`` that its table does not read (they are ignored)."""
    unknown = tables.unknown_columns(rows, table)
    if unknown:
        out.warnings.append(
            f"{path}: column(s) {', '.join(unknown)} not read (the {table} table reads "
            f"{', '.join(tables.KNOWN_COLUMNS[table])}): ignored"
        )


def collect_csv(csv_file: str | None, baseline_csv: str | None, teacher_csv: str | None) -> Collected:
    """Rows from external CSV tables (a teacher table alone goes with run directories); columns a
    table does not read are named in a warning."""
    out = Collected()
    if csv_file is None:
        if baseline_csv:
            raise UserError("--baseline-csv needs --csv (the distilled results)")
        if teacher_csv:  # with run directories: teacher accuracies / kept counts measured elsewhere
            try:
                out.teachers = tables.read_csv(teacher_csv, tables.TEACHER_COLUMNS)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            _warn_unknown(teacher_csv, out.teachers, "teachers", out)
            out.ablation_teachers = [{**t, "kept": ""} for t in out.teachers]
            out.inputs = [str(teacher_csv)]
        return out
    if not baseline_csv:
        raise UserError(
            "--csv needs --baseline-csv FILE (task,student,student_size,accuracy): distillation is "
            "judged against the pre-distillation baseline"
        )
    try:
        out.distilled = tables.read_csv(csv_file, tables.DISTILLED_COLUMNS)
        out.baseline = tables.read_csv(baseline_csv, tables.BASELINE_COLUMNS)
        if teacher_csv:
            out.teachers = tables.read_csv(teacher_csv, tables.TEACHER_COLUMNS)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for path, rows, table in (
        (csv_file, out.distilled, "distilled"),
        (baseline_csv, out.baseline, "baseline"),
        (teacher_csv, out.teachers, "teachers"),
    ):
        if path:
            _warn_unknown(path, rows, table, out)
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
        total = collect_runs(run_dirs, sweeps=sweeps)
        total.sweeps = sweeps
        total.inputs = [str(Path(p)) for p in paths]
        if not total.distilled:
            if not csv_file:
                detail = "; ".join(total.warnings) or "no finished runs"
                raise UserError(f"no finished runs to report on ({detail})")
    ext = collect_csv(csv_file, baseline_csv, teacher_csv)
    total.distilled += ext.distilled
    total.baseline += [
        b for b in ext.baseline if (b["task"], b["student"]) not in {(x["task"], x["student"]) for x in total.baseline}
    ]
    total.teachers = merge_teachers(total.teachers, ext.teachers)
    # the CSV's kept counts are unfiltered: they never replace the ablation's
    total.ablation_teachers = merge_teachers(total.ablation_teachers, ext.ablation_teachers, keep=("kept",))
    total.inputs += ext.inputs
    total.warnings += ext.warnings
    return total


def merge_teachers(measured: list[dict], given: list[dict], keep=()) -> list[dict]:
    """Teacher rows from runs overlaid with ``--teacher-csv`` rows of the same (task, teacher): each
    non-empty CSV value replaces the measured one (except the columns in ``keep``); empty ones
    leave it. CSV rows for teachers no run measured are added."""
    index = {(t["task"], t["teacher"]): dict(t) for t in measured}
    for g in given:
        key = (g["task"], g["teacher"])
        base = index.setdefault(key, {})
        base.update({k: v for k, v in g.items() if not tables.is_empty(v) and (k not in keep or k not in base)})
        base.setdefault("kept", g.get("kept", ""))
    return list(index.values())
