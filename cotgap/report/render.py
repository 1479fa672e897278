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
