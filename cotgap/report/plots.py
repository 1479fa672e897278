"""Plots of distillation results (matplotlib, Agg, PNG).

All functions take the same row dicts as :mod:`cotgap.report.analysis`
(e.g. from :func:`cotgap.report.tables.read_csv`), write one PNG file
(creating its parent directory), and return the path as a
:class:`pathlib.Path`.  Invalid rows raise ValueError with a one-line message.

The figures are built with :class:`matplotlib.figure.Figure` directly, so the
global pyplot state and the selected backend are never touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from cotgap.protocol.constants import REFERENCE_STRATEGY
from cotgap.report.tables import row_accuracy, row_count, row_size, row_text

__all__ = ["plot_accuracy_vs_size", "plot_kept", "plot_filter_ablation"]

_DPI = 110
_SETTING_STYLES = ["-", ":", "-."]
_SETTING_MARKERS = ["o", "s", "^", "D", "v"]


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(max_cols, n))
    return math.ceil(n / cols), cols


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=_DPI)
    except OSError as exc:
        raise ValueError(f"{path}: cannot write plot ({exc.strerror or exc})") from None
    return path


def _distilled_points(distilled: Sequence[Mapping]) -> list[tuple[str, str, str, str, str, float, float]]:
    """(task, setting, teacher, student, size label, size, accuracy) per (task, setting, teacher,
    student), replicate seeds averaged."""
    out = []
    for i, row in enumerate(distilled, start=1):
        where = f"distilled row {i}"
        label, size = row_size(row, where)
        out.append(
            (
                row_text(row, "task", where),
                row_text(row, "setting", where),
                row_text(row, "teacher", where),
                row_text(row, "student", where),
                label,
                size,
                row_accuracy(row, where),
            )
        )
    groups: dict[tuple, list] = {}
    for p in out:
        groups.setdefault(p[:4], []).append(p)
    return [(*ps[0][:6], sum(p[6] for p in ps) / len(ps)) for ps in groups.values()]


def _accuracy_axis(ax, values, headroom: float = 1.12) -> None:
    """Accuracy axis from 0 (a flat line at 0 % must not look like noise around 0)."""
    top = max([0.0, *values])
    ax.set_ylim(0, min(100.0 * headroom, max(5.0, top * headroom + 1.0)))


def _size_axis(ax, sizes: dict[float, str]) -> None:
    xs = sorted(sizes)
    ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([sizes[x] for x in xs])
    ax.minorticks_off()
    if len(xs) == 1:
        ax.set_xlim(xs[0] / 2, xs[0] * 2)
    else:
        ax.set_xlim(xs[0] / 1.3, xs[-1] * 1.3)


def plot_accuracy_vs_size(distilled: Sequence[Mapping], baseline: Sequence[Mapping], path: str | Path) -> Path:
    """Accuracy against student size: one panel per task.

    One solid line per teacher (per setting and teacher when the task has
    several settings); the pre-distillation baseline is a dashed black line
    (mean over students of equal size).  The x axis is logarithmic in the
    numeric size, labelled with the size strings.
    """
    points = _distilled_points(distilled)
    if not points:
        raise ValueError("no distilled rows to plot")
    base: dict[str, dict[float, list[float]]] = {}
    base_labels: dict[float, str] = {}
    for i, row in enumerate(baseline, start=1):
        where = f"baseline row {i}"
        task = row_text(row, "task", where)
        label, size = row_size(row, where)
        base.setdefault(task, {}).setdefault(size, []).append(row_accuracy(row, where))
        base_labels.setdefault(size, label)

    tasks = list(dict.fromkeys(p[0] for p in points))
    # the same teacher has the same colour (and the same setting the same line
    # style) in every panel; dashed is reserved for the baseline
    teacher_order = list(dict.fromkeys(p[2] for p in points))
    setting_order = list(dict.fromkeys(p[1] for p in points))
    colours = [f"C{i}" for i in range(10)]
    nrows, ncols = _grid(len(tasks))
    fig = Figure(figsize=(5.2 * ncols, 4.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for idx, task in enumerate(tasks):
        ax = axes[idx // ncols][idx % ncols]
        tp = [p for p in points if p[0] == task]
        multi = len({p[1] for p in tp}) > 1
        sizes: dict[float, str] = {}
        lines: dict[tuple[str, str], dict[float, float]] = {}
        for _, setting, teacher, _student, label, size, acc in tp:
            sizes.setdefault(size, label)
            lines.setdefault((setting, teacher), {})[size] = acc
        for (setting, teacher), pts in lines.items():
            xs = sorted(pts)
            k = setting_order.index(setting)
            ax.plot(
                xs,
                [pts[x] for x in xs],
                color=colours[teacher_order.index(teacher) % len(colours)],
                linestyle=_SETTING_STYLES[k % len(_SETTING_STYLES)],
                marker=_SETTING_MARKERS[k % len(_SETTING_MARKERS)],
                label=f"{teacher} ({setting})" if multi else f"teacher {teacher}",
            )
        bpts = base.get(task, {})
        if bpts:
            xs = sorted(bpts)
            for x in xs:
                sizes.setdefault(x, base_labels[x])
            ax.plot(
                xs,
                [sum(bpts[x]) / len(bpts[x]) for x in xs],
                linestyle="--",
                color="black",
                marker="x",
                label="baseline (pre-distillation)",
            )
        _size_axis(ax, sizes)
        _accuracy_axis(ax, [p[6] for p in tp] + [a for accs in bpts.values() for a in accs])
        ax.set_title(task)
        ax.set_xlabel("student size")
        ax.set_ylabel("accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for idx in range(len(tasks), nrows * ncols):
        axes[idx // ncols][idx % ncols].set_visible(False)
    return _save(fig, path)


def plot_kept(teachers: Sequence[Mapping], path: str | Path) -> Path:
    """Bar chart of kept (correct) training examples per teacher, grouped by task.

    Rows with an empty ``kept`` are skipped; if no row has one, the figure
    just says so (so a report can always be produced).
    """
    data: dict[str, dict[str, int]] = {}
    for i, row in enumerate(teachers, start=1):
        where = f"teacher row {i}"
        task = row_text(row, "task", where)
        teacher = row_text(row, "teacher", where)
        kept = row_count(row, "kept", where)
        if kept is not None:
            data.setdefault(task, {})[teacher] = kept

    tasks = list(data)
    names = list(dict.fromkeys(t for d in data.values() for t in d))
    fig = Figure(figsize=(min(23.0, 3.0 + max(5.0, 1.5 + 0.6 * len(tasks) * len(names))), 4.2), layout="constrained")
    ax = fig.add_subplot()
    if not tasks:
        ax.text(0.5, 0.5, "no kept counts available", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, path)
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        xs = [i + (j - (len(names) - 1) / 2) * width for i, task in enumerate(tasks) if name in data[task]]
        ys = [data[task][name] for task in tasks if name in data[task]]
        bars = ax.bar(xs, ys, width=width, label=name)
        ax.bar_label(bars, fontsize="x-small", padding=2)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels(tasks)
    ax.set_ylabel("kept training questions")
    ax.set_title("Train questions with a kept (correct) rationale, per teacher")
    ax.margins(y=0.12)
    ax.legend(title="teacher", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def plot_filter_ablation(
    distilled: Sequence[Mapping],
    path: str | Path,
    ablation_setting: str = "cross-teacher-filter",
    reference_setting: str | None = None,
) -> Path:
    """Filtered (``ablation_setting``) vs unfiltered results side by side.

    One panel per task; for each (teacher, student) present in both the
    ablation and the reference setting, a pair of bars.  The reference
    (unfiltered) setting defaults to the reference strategy (``plain``) if it has matching rows,
    otherwise to the only other setting with matching rows; ValueError if the
    ablation setting is absent or the reference is ambiguous / missing.
    """
    points = _distilled_points(distilled)
    abl = {(p[0], p[2], p[3]): p for p in points if p[1] == ablation_setting}
    if not abl:
        present = ", ".join(sorted({p[1] for p in points})) or "none"
        raise ValueError(f"no distilled rows with setting {ablation_setting!r} (settings present: {present})")
    if reference_setting is None:
        candidates = sorted({p[1] for p in points if p[1] != ablation_setting and (p[0], p[2], p[3]) in abl})
        if REFERENCE_STRATEGY in candidates:
            reference_setting = REFERENCE_STRATEGY
        elif len(candidates) == 1:
            reference_setting = candidates[0]
        elif not candidates:
            raise ValueError(f"no unfiltered rows match the {ablation_setting!r} rows (same task, teacher, student)")
        else:
            raise ValueError(
                f"ambiguous unfiltered setting for the {ablation_setting!r} ablation: "
                f"{', '.join(candidates)} (pass reference_setting)"
            )
    ref = {(p[0], p[2], p[3]): p for p in points if p[1] == reference_setting}
    keys = [k for k in abl if k in ref]
    if not keys:
        raise ValueError(
            f"no rows of setting {reference_setting!r} match the {ablation_setting!r} rows (same task, teacher, student)"
        )

    tasks = list(dict.fromkeys(k[0] for k in keys))
    nrows, ncols = _grid(len(tasks))
    fig = Figure(figsize=(5.2 * ncols, 4.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for idx, task in enumerate(tasks):
        ax = axes[idx // ncols][idx % ncols]
        tk = sorted((k for k in keys if k[0] == task), key=lambda k: (abl[k][5], k[1], k[2]))
        xs = range(len(tk))
        unf = [ref[k][6] for k in tk]
        fil = [abl[k][6] for k in tk]
        b1 = ax.bar([x - 0.2 for x in xs], unf, width=0.4, label=f"unfiltered ({reference_setting})")
        b2 = ax.bar([x + 0.2 for x in xs], fil, width=0.4, label=f"filtered ({ablation_setting})")
        ax.bar_label(b1, fmt="%.1f", fontsize="x-small", padding=2)
        ax.bar_label(b2, fmt="%.1f", fontsize="x-small", padding=2)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([f"{k[1]}\n→ {abl[k][4]}" for k in tk], fontsize="small")
        ax.set_title(task)
        ax.set_ylabel("accuracy (%)")
        ax.set_xlabel("teacher → student size")
        _accuracy_axis(ax, unf + fil, headroom=1.3)
        ax.legend(fontsize="small")
    for idx in range(len(tasks), nrows * ncols):
        axes[idx // ncols][idx % ncols].set_visible(False)
    return _save(fig, path)
