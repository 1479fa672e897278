"""The cross-run report (``cotgap report``): many runs (or external CSV results) -> one answer per task.

Everything is rebuilt from stored results; no model is loaded. Inputs:

- run directories (``cotgap run``) and sweep directories (``cotgap sweep``, found through their
  ``sweep.json`` or by looking for run directories up to three levels down);
- and/or external tables: ``--csv`` (distilled students), ``--baseline-csv`` (pre-distillation)
  and optionally ``--teacher-csv`` (see :mod:`cotgap.report.tables` for the columns).

:func:`make_report` runs the four steps, each in its own module: :mod:`cotgap.report.collect`
(inputs -> rows), :mod:`cotgap.report.build` (rows -> analyses and the ``report.json`` content,
the ``cross-teacher-filter`` ablation apart and compared with its unfiltered counterparts),
:mod:`cotgap.report.write` (the files in ``--out``) and :mod:`cotgap.report.render` (markdown and
terminal tables).
"""

from __future__ import annotations

from pathlib import Path

from cotgap.errors import UserError
from cotgap.protocol.constants import KEPT_RATIO, NOISE_Z
from cotgap.report.build import build
from cotgap.report.collect import collect, is_run
from cotgap.report.render import render
from cotgap.report.write import write


def default_out() -> Path:
    """``./cotgap-report``: the report reads its inputs and never writes into them."""
    return Path("cotgap-report")


def make_report(
    paths=(),
    *,
    csv_file=None,
    baseline_csv=None,
    teacher_csv=None,
    out=None,
    noise_margin=None,
    kept_ratio_threshold=KEPT_RATIO,
    alpha=None,
    noise_z=NOISE_Z,
    console=None,
) -> tuple[dict, Path]:
    """Collect, analyse, write and (with ``console``) print. Returns (report, output folder).
    ``noise_margin`` None: margins from the test-set sizes; ``alpha`` None: the runs' own level."""
    from cotgap.outpaths import writable_dir

    out_dir = Path(out) if out else default_out()
    if is_run(out_dir):
        raise UserError(f"{out_dir} is a run directory: its report.json is the run's own; choose another --out")
    col = collect(paths, csv_file, baseline_csv, teacher_csv)
    writable_dir(out_dir, "--out")  # after the inputs are read: a bad input is not reported as a made folder
    report, prim, abl = build(
        col, noise_margin=noise_margin, kept_ratio_threshold=kept_ratio_threshold, alpha=alpha, noise_z=noise_z
    )
    write(report, col, out_dir)
    if console is not None:
        render(report, prim, abl, console)
    return report, out_dir
