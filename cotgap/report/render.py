"""Showing a cross-run report: ``report.md`` (:func:`to_markdown`) and terminal tables (:func:`render`)."""

from __future__ import annotations

from pathlib import Path

from cotgap.report import analysis, terminal


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


def _p(x) -> str:
    """A p-value in three significant digits, ``–`` when none."""
    return "–" if x is None else f"{x:.3g}"


def _cells_md(t: dict) -> list[str]:
    """The cells table; with replicates, each cell's seed and its group's mean ± sd beside it."""
    groups = {(g["setting"], g["teacher"], g["student"]): g for g in t.get("replicates") or []}
    header = [
        "setting",
        "teacher",
        "student",
        "size",
        *(["seed"] if groups else []),
        "distilled %",
        "baseline %",
        "diff",
        "CI",
        "wins / losses",
        "p",
        "p (Holm)",
        "verdict",
        *(["over seeds: diff mean ± sd"] if groups else []),
        "updates",
    ]
    rows = []
    for c in t["cells"]:
        g = groups.get((c["setting"], c["teacher"], c["student"]))
        rows.append(
            [
                c["setting"],
                c["teacher"],
                c["student"],
                c["student_size"],
                *([c.get("seed") or "–"] if groups else []),
                _f(c["distilled"]),
                _f(c["baseline"]),
                f"{c['diff']:+.1f}",
                "–" if c["ci_low"] is None else f"[{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]",
                "–" if c.get("wins") is None else f"{c['wins']} / {c['losses']}",
                _p(c.get("p_value")),
                _p(c.get("p_adjusted")),
                c["verdict"],
                *([f"{g['diff_mean']:+.1f} ± {g['diff_sd']:.1f} ({len(g['seeds'])} seeds)" if g else "–"] if groups else []),
                _f(c["updates"], "d"),
            ]
        )
    return _table(header, rows)


def _teachers_md(t: dict) -> list[str]:
    """The teachers table with their capacity measures, and the strongest / weakest line."""
    L = [
        "Teachers (ordered by capacity where it can be established — declared capacity or role, else parameters, "
        "else mean CoT length; accuracy on the train split they generated for is reported, not used to order them; "
        "kept = distinct train questions with a kept, correct, rationale):",
        "",
    ]
    L += _table(
        ["teacher", "params", "CoT tokens", "CoT words", "declared", "accuracy %", "kept", "kept rationales"],
        [
            [
                x["teacher"],
                "–" if x.get("params_b") is None else f"{x['params_b']:.3g}B",
                _f(x.get("cot_tokens"), "g"),
                _f(x.get("cot_words"), "g"),
                ", ".join(v for v in (x.get("role"), None if x.get("capacity") is None else f"rank {x['capacity']:g}") if v)
                or "–",
                _f(x["accuracy"]),
                _f(x["kept"], "d"),
                _f(x.get("kept_rationales"), "d"),
            ]
            for x in t["teachers"]
        ],
    )
    if t["strongest_teacher"]:
        L += [
            f"Strongest / weakest by {t['capacity_basis']}: {t['strongest_teacher']} / {t['weakest_teacher']}; "
            f"kept-question ratio {_ratio(t)} (guideline: breaks ties within noise at ≥ 1.3x).",
            "",
        ]
    return L


def _gaps_md(t: dict) -> list[str]:
    """The capacity-gap table: advantages by size, the two halves' means and the margins used."""
    L = [
        "Capacity gap (advantage = weaker teacher's student − stronger teacher's student, points; the smaller half "
        "of the shared student sizes against the larger half):",
        "",
    ]
    L += _table(
        [
            "setting",
            "stronger",
            "weaker",
            "basis",
            "advantage by size",
            "small / large half (mean)",
            "margins",
            "descriptive (no margin)",
            "statistical (margins)",
            "detail",
        ],
        [
            [
                g["setting"],
                g["stronger"] or "–",
                g["weaker"] or "–",
                g["basis"] or "–",
                ", ".join(f"{s}: {a:+.1f}" for s, a in zip(g["sizes"], g["advantages"])) or "–",
                "–"
                if g["mean_advantage_small"] is None
                else f"{g['mean_advantage_small']:+.1f} / {g['mean_advantage_large']:+.1f}",
                "–" if g["margin_small"] is None else f"{g['margin_small']:.1f} / {g['margin_drop']:.1f} ({g['margin_how']})",
                g["readings"]["descriptive"]["verdict"],
                g["verdict"],
                g["detail"],
            ]
            for g in t["capacity_gaps"]
        ],
    )
    return L


def _replicates_md(t: dict) -> list[str]:
    """The replicate groups: mean ± sd over seeds and the verdict of each seed."""
    L = ["Replicates (runs differing only in their training seed; each keeps its own verdict):", ""]
    return L + _table(
        ["setting", "teacher", "student", "size", "seeds", "distilled mean ± sd", "diff mean ± sd", "verdicts per seed"],
        [
            [
                g["setting"],
                g["teacher"],
                g["student"],
                g["student_size"],
                ", ".join(g["seeds"]),
                f"{g['distilled_mean']:.1f} ± {g['distilled_sd']:.1f}",
                f"{g['diff_mean']:+.1f} ± {g['diff_sd']:.1f}",
                ", ".join(g["verdicts"]),
            ]
            for g in t["replicates"]
        ],
    )


def _task_md(t: dict, label: str = "") -> list[str]:
    """One task's section: effectiveness, recommendation and its rule, then its tables."""
    L = [
        f"### {t['task']}{label}",
        "",
        f"**Distillation effective:** {'yes' if t['effective'] else 'no'} — helped in {t['n_helped']} of "
        f"{t['n_cells']} (teacher, student, seed) cells ({t['n_no_change']} no significant change, {t['n_hurt']} hurt).",
        "",
        f"**Recommendation:** {t['recommendation']}. {t['reason']} *(decided by: {t['decided_by']})*",
        "",
    ]
    if t.get("updates_note"):
        L += [f"Training length: {t['updates_note']}.", ""]
    if t.get("budget_note"):
        L += [f"Budget: {_md(t['budget_note'])}.", ""]
    L += _cells_md(t)
    if t.get("replicates"):
        L += _replicates_md(t)
    if t["teachers"]:
        L += _teachers_md(t)
    if t["capacity_gaps"]:
        L += _gaps_md(t)
    if t["warnings"]:
        L += ["Warnings:", ""] + [f"- {_md(w)}" for w in t["warnings"]] + [""]
    return L


def _header_md(report: dict) -> list[str]:
    """Title, inputs, the guidelines and the statistical rules with their parameters."""
    p = report["parameters"]
    n_runs = len(report["inputs"]["runs"])
    L = [
        "# cotgap report",
        "",
        f"Generated {report['created']} from {', '.join(report['inputs']['paths']) or 'stored results'}"
        f"{f' ({n_runs} runs)' if n_runs else ''}. Machine-readable: `report.json` ({report['schema']}).",
        "",
        "Guidelines applied:",
        "",
    ]
    L += [f"{i}. {g}" for i, g in enumerate(report["guidelines"], 1)] + [""]
    margin = (
        f"noise margin {p['noise_margin']:g} points (given)"
        if p.get("noise_margin") is not None
        else f"noise margins {p['noise_z']:g} standard errors of a difference of two accuracies at the test-set size"
    )
    L += [
        f"Verdicts: McNemar's exact test on the paired test items at alpha {p['alpha']:g}, Holm-corrected across "
        f"the cells (raw and adjusted p shown); {margin}; kept-ratio tie-break at {p['kept_ratio_threshold']:g}x.",
        "",
    ]
    return L


def _ablation_md(ab: dict, plots: dict) -> list[str]:
    """The ablation section: side-by-side comparison, its training-length note, plots and analyses."""
    L = [
        f"## Ablation: {ab['name']}",
        "",
        f"> ABLATION `{ab['name']}`: {ab['description']}. These results "
        "are analysed separately and never mixed into the recommendations above.",
        "",
    ]
    if ab["comparison"]:
        L += ["Filtered vs unfiltered, side by side:", ""]
        L += _table(
            [
                "task",
                "setting",
                "teacher",
                "student",
                "size",
                "unfiltered %",
                f"filtered ({ab['name']}) %",
                "delta",
                "kept unfiltered",
                "kept filtered",
                "updates unfiltered",
                "updates filtered",
            ],
            [
                [
                    r["task"],
                    r["setting"] or "–",
                    r["teacher"],
                    r["student"],
                    r["student_size"],
                    _f(r["unfiltered"]),
                    _f(r["filtered"]),
                    _f(r["delta"], "+.1f"),
                    _f(r["kept_unfiltered"], "d"),
                    _f(r["kept_filtered"], "d"),
                    _f(r["updates_unfiltered"], "d"),
                    _f(r["updates_filtered"], "d"),
                ]
                for r in ab["comparison"]
            ],
        )
    if ab.get("updates_note"):
        L += [f"Training length: {ab['updates_note']}.", ""]
    for f in plots.get("filter_ablation") or []:
        L += [f"![filter ablation]({f})", ""]
    for t in ab["tasks"]:
        L += _task_md(t, f" [ABLATION: {ab['name']}]")
    if ab["warnings"]:
        L += ["Warnings:", ""] + [f"- {_md(w)}" for w in ab["warnings"]] + [""]
    return L


ALONE_TITLE = "Combined teachers vs each teacher alone (equal updates)"
ALONE_NOTE = (
    "Each combined-data cell beside plain cells trained on each of its teachers' data alone, at "
    "the combined cell's optimizer updates (Li et al.'s comparison); difference = combined − alone, points."
)
ALONE_COLUMNS = [
    "task",
    "setting",
    "teachers",
    "student",
    "size",
    "combined %",
    "alone",
    "alone %",
    "difference (margin)",
    "reading",
    "updates combined / alone",
]


def alone_rows(report: dict) -> list[list[str]]:
    """One table row per (combined cell, teacher alone), in ALONE_COLUMNS order."""
    return [
        [
            g["task"],
            g["setting"],
            g["teachers"],
            g["student"],
            g["student_size"],
            _f(g["accuracy"]),
            a["teacher"],
            _f(a["accuracy"]),
            f"{a['delta']:+.1f} ({a['margin']:.1f})",
            a["reading"],
            f"{_f(g['updates'], 'd')} / {_f(a['updates'], 'd')}",
        ]
        for g in report.get("alone_comparisons") or []
        for a in g["alone"]
    ]


def to_markdown(report: dict) -> str:
    """The whole ``report.md``."""
    plots = (report.get("files") or {}).get("plots") or {}
    L = _header_md(report)
    if report["tasks"]:
        L += ["## Summary", ""]
        L += _table(
            ["task", "distillation effective", "helped / cells", "kept ratio", "capacity gap", "recommendation", "decided by"],
            [
                [
                    t["task"],
                    "yes" if t["effective"] else "no",
                    f"{t['n_helped']} / {t['n_cells']}",
                    _ratio(t),
                    _gap_summary(t),
                    t["recommendation"],
                    t["decided_by"],
                ]
                for t in report["tasks"]
            ],
        )
    if plots.get("accuracy_vs_size"):
        L += [
            "![accuracy vs student size](accuracy_vs_size.png)",
            "",
            "Accuracy against student size, one line per teacher; dashed: the pre-distillation baseline.",
            "",
        ]
    if report["tasks"]:
        L += ["## Tasks", ""]
        for t in report["tasks"]:
            L += _task_md(t)
    if plots.get("kept"):
        L += ["![kept examples per teacher](kept.png)", "", "Train questions with a kept (correct) rationale, per teacher.", ""]
    if report.get("ablation"):
        L += _ablation_md(report["ablation"], plots)
    if report.get("alone_comparisons"):
        L += [f"## {ALONE_TITLE}", "", ALONE_NOTE, ""] + _table(ALONE_COLUMNS, alone_rows(report))
    g = report.get("generation")
    if g:
        L += [
            "## Teacher generations",
            "",
            f"Latest sweep invocation: {g['computed']} computed, {g['reused']} reused from the shared cache "
            "(each is computed once per teacher, task, split, prompt and sampling settings).",
            "",
        ]
        for s in g["sweeps"]:
            c = s.get("cells") or {}
            L += [
                f"- sweep `{s['name']}` ({s['dir']}): {c.get('done', 0)} cells done, {c.get('skipped', 0)} skipped, "
                f"{c.get('failed', 0)} failed"
            ]
            L += [f"  - {x['name']}: {x['status']} — {_md(x['reason'])}" for x in s["not_done"]]
        L += [""]
    if report["inputs"]["runs"]:
        L += ["## Runs", ""]
        L += ["Each run's own verdict (its exact test alone, not corrected for the other runs):", ""]
        L += _table(
            ["run", "task", "setting", "teacher", "student", "size", "seed", "baseline %", "distilled %", "p", "run verdict"],
            [
                [
                    Path(r["dir"]).name,
                    r["task"],
                    r["setting"],
                    r["teacher"],
                    r["student"],
                    r["student_size"],
                    r.get("seed") or "–",
                    _f(r["baseline"]),
                    _f(r["distilled"]),
                    _p(r.get("p_value")),
                    r["verdict"],
                ]
                for r in report["inputs"]["runs"]
            ],
        )
    if report["warnings"]:
        L += ["## Warnings", ""] + [f"- {_md(w)}" for w in report["warnings"]] + [""]
    return "\n".join(L).rstrip() + "\n"


def render(report: dict, prim, abl, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    if prim:
        terminal.render_tables(prim, console)
    for t in report.get("tasks") or []:
        if t.get("budget_note"):
            console.print(f"[bold]budget[/] ({escape(t['task'])}): {escape(t['budget_note'])}")
    ab = report.get("ablation")
    if ab:
        console.rule(f"[bold magenta]ABLATION: {ab['name']}[/]")
        console.print(f"[magenta]{escape(ab['description'])}[/]")
        if ab["comparison"]:
            t = Table(title=f"filtered ({ab['name']}) vs unfiltered")
            for c in (
                "task",
                "setting",
                "teacher",
                "student",
                "size",
                "unfiltered",
                "filtered",
                "delta",
                "kept unf. / filt.",
                "updates unf. / filt.",
            ):
                t.add_column(c, justify="right" if c in ("unfiltered", "filtered", "delta") else "left")
            for r in ab["comparison"]:
                t.add_row(
                    escape(r["task"]),
                    escape(r["setting"] or "-"),
                    escape(r["teacher"]),
                    escape(r["student"]),
                    r["student_size"],
                    _f(r["unfiltered"]),
                    _f(r["filtered"]),
                    _f(r["delta"], "+.1f"),
                    f"{_f(r['kept_unfiltered'], 'd')} / {_f(r['kept_filtered'], 'd')}",
                    f"{_f(r['updates_unfiltered'], 'd')} / {_f(r['updates_filtered'], 'd')}",
                )
            console.print(t)
        if ab.get("updates_note"):
            console.print(escape(ab["updates_note"]))
        if abl:
            terminal.render_tables(abl, console)
        for w in ab["warnings"]:
            console.print(f"[yellow]warning:[/yellow] {escape(w)}")
    if report.get("alone_comparisons"):
        t = Table(title=ALONE_TITLE)
        for c in ALONE_COLUMNS:
            t.add_column(c)
        for row in alone_rows(report):
            t.add_row(*map(escape, row))
        console.print(t)
    g = report.get("generation")
    if g:
        console.print(f"teacher generations: [bold]{g['computed']} computed[/], [bold]{g['reused']} reused[/]")
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")
