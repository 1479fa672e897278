"""Writing a cross-run report into its output folder.

Files: ``report.json`` (schema ``cotgap.report/1``, documented in docs/report.md), ``report.md``,
``accuracy_vs_size.png``, ``kept.png``, ``filter_ablation*.png`` (when ablation results are present)
and ``tables/*.csv`` (the rows analysed, re-usable with ``--csv``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cotgap.errors import UserError
from cotgap.report import tables
from cotgap.report.build import ABLATION, is_ablation
from cotgap.report.collect import Collected
from cotgap.report.render import to_markdown


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
    _write_csv(
        out_dir / "tables" / "distilled.csv", col.distilled, [*tables.DISTILLED_COLUMNS, *tables.DISTILLED_OPTIONAL, "kept"]
    )
    _write_csv(out_dir / "tables" / "baseline.csv", col.baseline, list(tables.BASELINE_COLUMNS))
    files["tables"] = {"distilled": "tables/distilled.csv", "baseline": "tables/baseline.csv"}
    if col.teachers:
        _write_csv(out_dir / "tables" / "teachers.csv", col.teachers, [*tables.TEACHER_COLUMNS, *tables.TEACHER_OPTIONAL])
        files["tables"]["teachers"] = "tables/teachers.csv"
    if report["ablation"]:
        _write_csv(
            out_dir / "tables" / "filter_ablation.csv",
            report["ablation"]["comparison"],
            [
                "task",
                "setting",
                "ablation",
                "teacher",
                "student",
                "student_size",
                "seed",
                "unfiltered",
                "filtered",
                "delta",
                "kept_unfiltered",
                "kept_filtered",
                "updates_unfiltered",
                "updates_filtered",
            ],
        )
        files["tables"]["filter_ablation"] = "tables/filter_ablation.csv"

    primary = [r for r in col.distilled if not is_ablation(r["setting"])]
    ablated = [r for r in col.distilled if is_ablation(r["setting"])]
    try:
        plots.plot_accuracy_vs_size(primary or ablated, col.baseline, out_dir / "accuracy_vs_size.png")
        files["plots"]["accuracy_vs_size"] = "accuracy_vs_size.png"
        kept_rows = list(col.teachers) + [
            {**t, "teacher": f"{t['teacher']} [{ABLATION}]"} for t in col.ablation_teachers if not tables.is_empty(t.get("kept"))
        ]
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
    files["runs"] = _write_run_reports(col.run_reports, out_dir)
    report["files"] = files
    write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", to_markdown(report))
    return files


def _write_run_reports(run_reports: list[tuple[str, dict]], out_dir: Path) -> dict:
    """Each run's rebuilt report (and figure) under ``runs/<name>/`` of the output folder — never
    into the run directory, which may be someone else's or read-only."""
    from cotgap.jsonio import write_json
    from cotgap.report import run_report

    written: dict[str, str] = {}
    for run_dir, rep in run_reports:
        name = Path(run_dir).name
        rel = f"runs/{name}" if f"runs/{name}" not in written.values() else f"runs/{name}-{len(written)}"
        write_json(out_dir / rel / "report.json", rep)
        try:
            run_report.plot(rep, out_dir / rel / "report.png")
        except Exception:  # a per-run figure must not stop the cross-run report
            pass
        written[run_dir] = rel
    return written
