"""Printing task selections and analyses to a ``rich`` console as tables.

``rich`` is imported when printing, not when this module is imported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cotgap.report.results import (
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

__all__ = ["render_selection", "render_tables", "kept_ratio_text", "p_text"]

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
        if a.replicates:
            _print_replicates(a, console)
        if any(t.accuracy is not None or t.kept is not None or t.params_b is not None for t in a.teachers):
            _print_teachers(a, console)
        if a.capacity_gaps:
            _print_capacity_gaps(a, console)
        console.print(
            f"[bold]{escape(a.task)}[/bold]: {escape(a.recommendation)}. {escape(a.reason)} "
            f"[dim](decided by: {escape(a.decided_by)})[/dim]"
        )
        if a.updates_note:
            console.print(f"{escape(a.task)}: {escape(a.updates_note)}")
        for w in a.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(a.task)}: {escape(w)}")
        console.print()


def kept_ratio_text(ratio: float | None) -> str:
    """``"1.30x"``, ``"inf"`` or ``"-"``."""
    if ratio is None:
        return "-"
    return "inf" if math.isinf(ratio) else f"{ratio:.2f}x"


def p_text(p: float | None) -> str:
    """A p-value as shown: three significant digits, ``-`` when none."""
    return "-" if p is None else f"{p:.3g}"


def _print_summary(analyses: Sequence[TaskAnalysis], console: Any) -> None:
    """One line per task: effective, helped cells, kept ratio, recommendation and its rule."""
    from rich.markup import escape
    from rich.table import Table

    summary = Table(title="Distillation analysis")
    for col in ("task", "effective", "helped / cells", "kept ratio", "recommendation", "decided by"):
        summary.add_column(col)
    for a in analyses:
        summary.add_row(
            escape(a.task),
            "[green]yes[/green]" if a.effective else "[red]no[/red]",
            f"{a.n_helped} / {a.n_cells}",
            kept_ratio_text(a.kept_ratio),
            escape(a.recommendation),
            escape(a.decided_by),
        )
    console.print(summary)


def _print_cells(a: TaskAnalysis, console: Any) -> None:
    """A task's cells: distilled vs baseline accuracy, difference, interval, raw and Holm p, verdict,
    and (with replicates) each cell's seed and its group's mean ± sd of the difference."""
    from rich.markup import escape
    from rich.table import Table

    groups = {(g.setting, g.teacher, g.student): g for g in a.replicates}
    cells = Table(title=f"{escape(a.task)}: distilled vs pre-distillation baseline")
    cols = [
        "setting",
        "teacher",
        "student",
        "size",
        *(["seed"] if groups else []),
        "distilled",
        "baseline",
        "diff",
        "CI",
        "wins/losses",
        "p",
        "p (Holm)",
        "verdict",
        *(["over seeds"] if groups else []),
    ]
    for col in cols:
        cells.add_column(col, justify="left" if col in ("setting", "teacher", "student", "verdict") else "right")
    for c in a.cells:
        ci = "-" if c.ci_low is None else f"[{c.ci_low:+.1f}, {c.ci_high:+.1f}]"
        style = _VERDICT_STYLE[c.verdict]
        g = groups.get((c.setting, c.teacher, c.student))
        over = [f"{g.diff_mean:+.1f} ± {g.diff_sd:.1f}" if g else "-"] if groups else []
        cells.add_row(
            escape(c.setting),
            escape(c.teacher),
            escape(c.student),
            escape(c.student_size),
            *([escape(str(c.seed or "-"))] if groups else []),
            one_decimal(c.distilled),
            one_decimal(c.baseline),
            f"{c.diff:+.1f}",
            escape(ci),
            "-" if c.wins is None else f"{c.wins}/{c.losses}",
            p_text(c.p_value),
            p_text(c.p_adjusted),
            f"[{style}]{c.verdict}[/{style}]",
            *over,
        )
    console.print(cells)


def _print_replicates(a: TaskAnalysis, console: Any) -> None:
    """A task's replicate groups: mean ± sd over seeds beside the per-seed verdicts."""
    from rich.markup import escape
    from rich.table import Table

    rt = Table(title=f"{escape(a.task)}: replicates over training seeds (mean ± sd)")
    for col in ("setting", "teacher", "student", "size", "seeds", "distilled", "diff", "verdicts per seed"):
        rt.add_column(col)
    for g in a.replicates:
        rt.add_row(
            escape(g.setting),
            escape(g.teacher),
            escape(g.student),
            escape(g.student_size),
            escape(", ".join(g.seeds)),
            f"{g.distilled_mean:.1f} ± {g.distilled_sd:.1f}",
            f"{g.diff_mean:+.1f} ± {g.diff_sd:.1f}",
            escape(", ".join(g.verdicts)),
        )
    console.print(rt)


def _print_teachers(a: TaskAnalysis, console: Any) -> None:
    """A task's teachers: capacity measures, accuracy (reported only) and kept questions."""
    from rich.markup import escape
    from rich.table import Table

    tt = Table(
        title=f"{escape(a.task)}: teachers" + (f" (strongest first, by {escape(a.capacity_basis)})" if a.capacity_basis else "")
    )
    for col in ("teacher", "params", "CoT tokens / words", "declared", "accuracy", "kept (questions)"):
        tt.add_column(col, justify="left" if col in ("teacher", "declared") else "right")
    for t in a.teachers:
        cot = (
            "-"
            if t.cot_tokens is None and t.cot_words is None
            else f"{'-' if t.cot_tokens is None else f'{t.cot_tokens:g}'} / {'-' if t.cot_words is None else f'{t.cot_words:g}'}"
        )
        declared = ", ".join(x for x in (t.role, None if t.capacity is None else f"rank {t.capacity:g}") if x) or "-"
        tt.add_row(
            escape(t.teacher),
            "-" if t.params_b is None else f"{t.params_b:.3g}B",
            cot,
            escape(declared),
            "-" if t.accuracy is None else one_decimal(t.accuracy),
            "-" if t.kept is None else str(t.kept),
        )
    console.print(tt)


def _print_capacity_gaps(a: TaskAnalysis, console: Any) -> None:
    """A task's capacity-gap diagnostics: the weaker teacher's advantage by student size."""
    from rich.markup import escape
    from rich.table import Table

    gt = Table(title=f"{escape(a.task)}: capacity gap (weaker - stronger teacher's student)")
    for col in (
        "setting",
        "stronger",
        "weaker",
        "basis",
        "advantage by size",
        "small / large half",
        "descriptive (no margin)",
        "statistical (margins)",
    ):
        gt.add_column(col)
    for g in a.capacity_gaps:
        adv = ", ".join(f"{s}: {v:+.1f}" for s, v in zip(g.sizes, g.advantages)) or "-"
        halves = (
            "-"
            if g.mean_advantage_small is None
            else f"{g.mean_advantage_small:+.1f} / {g.mean_advantage_large:+.1f} "
            f"(margins {g.margin_small:.1f} / {g.margin_drop:.1f})"
        )
        verdicts = []
        for v in (g.descriptive_verdict, g.verdict):
            style = _GAP_STYLE[v]
            verdicts.append(f"[{style}]{v}[/{style}]" if style else v)
        gt.add_row(
            escape(g.setting),
            escape(g.order.stronger or "-"),
            escape(g.order.weaker or "-"),
            escape(g.order.basis or "-"),
            escape(adv),
            halves,
            *verdicts,
        )
        if g.verdict == INSUFFICIENT:
            gt.add_row("", "", "", "", f"[dim]{escape(g.detail)}[/dim]", "", "", "")
    console.print(gt)
