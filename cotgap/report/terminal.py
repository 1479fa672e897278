"""Printing task selections and analyses to a ``rich`` console as tables.

``rich`` is imported when printing, not when this module is imported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cotgap.report.analysis import (
    GAP_OBSERVED,
    HELPED,
    HURT,
    INSUFFICIENT,
    NO_CHANGE,
    NO_GAP,
    TaskAnalysis,
    one_decimal,
)
from cotgap.report.selection import TaskSelection

__all__ = ["render_selection", "render_tables"]

_VERDICT_STYLE = {HELPED: "green", NO_CHANGE: "yellow", HURT: "red"}
_GAP_STYLE = {GAP_OBSERVED: "magenta", NO_GAP: "", INSUFFICIENT: "dim"}


def render_selection(selections: Sequence[TaskSelection], console: Any, threshold: float = 30.0) -> None:
    """Print the task-selection results as a rich table."""
    from rich.table import Table

    table = Table(title=f"Task selection (teacher mean - student mean > {threshold:g} points)")
    for col in ("task", "teacher mean", "student mean", "gap", "selected"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for s in selections:
        table.add_row(
            s.task,
            one_decimal(s.teacher_mean),
            one_decimal(s.student_mean),
            one_decimal(s.gap),
            "[green]yes[/green]" if s.selected else "[red]no[/red]",
        )
    console.print(table)


def render_tables(analyses: Sequence[TaskAnalysis], console: Any) -> None:
    """Print the analyses to a ``rich`` console: a summary, then per-task tables."""
    from rich.markup import escape

    _print_summary(analyses, console)
    for a in analyses:
        _print_cells(a, console)
        if any(t.accuracy is not None or t.kept is not None for t in a.teachers):
            _print_teachers(a, console)
        if a.capacity_gaps:
            _print_capacity_gaps(a, console)
        console.print(f"[bold]{escape(a.task)}[/bold]: {escape(a.recommendation)}. {escape(a.reason)}")
        for w in a.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(a.task)}: {escape(w)}")
        console.print()


def _print_summary(analyses: Sequence[TaskAnalysis], console: Any) -> None:
    """One line per task: effective, helped cells, kept ratio, recommendation."""
    from rich.markup import escape
    from rich.table import Table

    summary = Table(title="Distillation analysis")
    for col in ("task", "effective", "helped / cells", "kept ratio", "recommendation"):
        summary.add_column(col)
    for a in analyses:
        if a.kept_ratio is None:
            ratio = "-"
        elif math.isinf(a.kept_ratio):
            ratio = "inf"
        else:
            ratio = f"{a.kept_ratio:.2f}x"
        summary.add_row(
            escape(a.task),
            "[green]yes[/green]" if a.effective else "[red]no[/red]",
            f"{a.n_helped} / {a.n_cells}",
            ratio,
            escape(a.recommendation),
        )
    console.print(summary)


def _print_cells(a: TaskAnalysis, console: Any) -> None:
    """A task's cells: distilled vs baseline accuracy, difference, interval and verdict."""
    from rich.markup import escape
    from rich.table import Table

    cells = Table(title=f"{escape(a.task)}: distilled vs pre-distillation baseline")
    for col in ("setting", "teacher", "student", "size", "distilled", "baseline", "diff", "95% CI", "verdict"):
        cells.add_column(col, justify="right" if col in ("distilled", "baseline", "diff", "95% CI") else "left")
    for c in a.cells:
        ci = "-" if c.ci_low is None else f"[{c.ci_low:+.1f}, {c.ci_high:+.1f}]"
        style = _VERDICT_STYLE[c.verdict]
        cells.add_row(
            escape(c.setting), escape(c.teacher), escape(c.student), escape(c.student_size),
            one_decimal(c.distilled), one_decimal(c.baseline), f"{c.diff:+.1f}", ci,
            f"[{style}]{c.verdict}[/{style}]",
        )
    console.print(cells)


def _print_teachers(a: TaskAnalysis, console: Any) -> None:
    """A task's teachers with their accuracy and kept examples."""
    from rich.markup import escape
    from rich.table import Table

    tt = Table(title=f"{escape(a.task)}: teachers")
    tt.add_column("teacher")
    tt.add_column("accuracy", justify="right")
    tt.add_column("kept", justify="right")
    for t in a.teachers:
        tt.add_row(
            escape(t.teacher),
            "-" if t.accuracy is None else one_decimal(t.accuracy),
            "-" if t.kept is None else str(t.kept),
        )
    console.print(tt)


def _print_capacity_gaps(a: TaskAnalysis, console: Any) -> None:
    """A task's capacity-gap diagnostics: the weaker teacher's advantage by student size."""
    from rich.markup import escape
    from rich.table import Table

    gt = Table(title=f"{escape(a.task)}: capacity gap (weaker - stronger teacher's student)")
    for col in ("setting", "stronger", "weaker", "basis", "advantage by size", "verdict"):
        gt.add_column(col)
    for g in a.capacity_gaps:
        adv = ", ".join(f"{s}: {v:+.1f}" for s, v in zip(g.sizes, g.advantages)) or "-"
        style = _GAP_STYLE[g.verdict]
        verdict = f"[{style}]{g.verdict}[/{style}]" if style else g.verdict
        gt.add_row(escape(g.setting), escape(g.stronger), escape(g.weaker), g.basis, adv, verdict)
    console.print(gt)
