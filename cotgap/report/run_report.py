"""One run's report, rebuilt from the run directory's stored results (no model is loaded)."""

from __future__ import annotations

import statistics
from pathlib import Path

from cotgap.backends import lm_eval_files
from cotgap.jsonio import read_json, read_jsonl
from cotgap.protocol.constants import ALPHA
from cotgap.protocol.stats import compare
from cotgap.report import budget_note, limits, teacher_data

#: the manifest fields report.json repeats as its ``environment``
ENVIRONMENT_KEYS = ("device", "dtypes", "packages", "python", "backend", "threads")


def _length_stats(records: list[dict], tokenizer=None) -> dict:
    if not records:
        return {"n": 0}
    words = [len(r["response"].split()) for r in records]
    out = {
        "n": len(records),
        "mean_words": round(statistics.mean(words), 1),
        "median_words": statistics.median(words),
        "mean_chars": round(statistics.mean(len(r["response"]) for r in records), 1),
    }
    if tokenizer is not None:  # tokens of the student's tokenizer (what the student trains on)
        toks = [len(tokenizer(r["response"].strip(), add_special_tokens=False)["input_ids"]) for r in records]
        out.update(mean_tokens=round(statistics.mean(toks), 1), median_tokens=statistics.median(toks))
    return out


def _student_tokenizer(train: dict, run: Path):
    """The trained student's tokenizer (saved next to its weights), or None if unavailable. The
    record's path is relative to the run directory (older runs stored it absolute)."""
    path = train.get("path")
    path = str(Path(run) / path) if path else None
    if not path or not (Path(path) / "tokenizer_config.json").exists():
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path)
    except Exception:
        return None


SCRIPTED_NOTE = (
    "scripted teacher: rationales written by the task generator's solver, not by a language model; "
    "the student-size rule does not apply to it"
)


def _is_scripted(name: str) -> bool:
    from cotgap.backends.scripted import parse

    return parse(str(name).split(" ")[0]) is not None


def _sources(run: Path, gen_index: dict, trained: dict, tokenizer, teachers: list[str]) -> tuple[list[dict], dict[str, set]]:
    """One entry per generated source (the models that wrote it, counts, kept, rationale lengths)
    and each source's kept doc ids."""
    sources = []
    kept_questions: dict[str, set] = {}
    for name, fname in gen_index.items():
        gens = read_jsonl(run / "generations" / fname)
        kept = read_jsonl(run / "filtered" / fname) if (run / "filtered" / fname).exists() else []
        questions = {r["doc_id"] for r in gens}
        kept_questions[name] = {r["doc_id"] for r in kept}
        models = sorted({str(r["model"]) for r in gens if r.get("model")})
        sources.append(
            {
                "source": name,
                "models": models,  # who wrote it, from the records (never from the source's name)
                "scripted": _is_scripted(name),
                "assistant": teacher_data.is_assistant({"models": models}, teachers),
                "generated": len(gens),
                "questions": len(questions),
                "correct": sum(r["correct"] for r in gens),
                "train_accuracy": 100 * sum(r["correct"] for r in gens) / max(1, len(gens)),
                "kept": len(kept),
                "kept_questions": len(kept_questions[name]),  # distinct train questions with a kept rationale
                "trained": trained.get(name, 0) if trained else None,  # kept ones the student was trained on
                "rationale_length_all": _length_stats(gens, tokenizer),
                "rationale_length_kept": _length_stats(kept, tokenizer),
                **limits.generation_limits(gens),
            }
        )
    return sources, kept_questions


def build(run: Path, bootstrap_iters: int = 10000) -> dict:
    """The run's report from its stored results. The verdict is McNemar's exact test at the run
    config's ``alpha`` (default ALPHA); the bootstrap interval is shown beside it."""
    run = Path(run)
    cfg = read_json(run / "config.json")
    manifest = read_json(run / "manifest.json")
    base = {r["doc_id"]: r for r in read_jsonl(run / "baseline" / "samples.jsonl")}
    dist = {r["doc_id"]: r for r in read_jsonl(run / "distilled" / "samples.jsonl")}
    ids = sorted(base)
    if sorted(dist) != ids:
        raise ValueError("baseline and distilled evaluations cover different test examples")
    comparison = compare(
        [base[i]["correct"] for i in ids],
        [dist[i]["correct"] for i in ids],
        iters=bootstrap_iters,
        seed=cfg["seed"],
        alpha=float(cfg.get("alpha", ALPHA)),
    )
    by_scoring = {}
    for stage in ("baseline", "distilled"):
        res = run / stage / "results.json"
        acc = read_json(res).get("accuracy_by_scoring", {}) if res.exists() else {}
        by_scoring[stage] = {k: round(100 * v, 2) for k, v in acc.items()}
    gen_index = read_json(run / "generations" / "index.json")
    stages = {p.stem: read_json(p) for p in (run / "stages").glob("*.json")}
    from cotgap.pipeline import compute as compute_ledger

    train = stages.get("train", {}).get("result", {})
    tokenizer = _student_tokenizer(train, run)
    strategy_records = {}
    for s in ("generate", "filter", "train"):
        strategy_records.update(stages.get(s, {}).get("strategy_records", {}))
    trained = strategy_records.get("training.examples_per_source") or {}
    sources, kept_questions = _sources(run, gen_index, trained, tokenizer, cfg["teachers"])
    teachers, uncredited = teacher_data.per_teacher(
        sources, kept_questions, cfg["teachers"], manifest["parameters"], manifest.get("api_teachers") or {}
    )
    return {
        "schema": "cotgap.run/1",
        "task": cfg["task"],
        "strategy": manifest["strategy"],
        "ablation": cfg.get("ablation"),
        "seed": cfg.get("seed"),
        "student": cfg["student"],
        "teachers": cfg["teachers"],
        "parameters": manifest["parameters"],
        # API teachers' sizes are declared by the user (parameters_b), not counted from a config
        "api_teachers": manifest.get("api_teachers") or {},
        "data": manifest["data"],
        "compute": compute_ledger.from_records(stages),  # tokens and seconds per stage (cotgap.pipeline.compute)
        "scoring": cfg["scoring"],
        "baseline": {"accuracy": comparison.get("baseline"), "n": comparison["n"]},
        "distilled": {"accuracy": comparison.get("distilled"), "n": comparison["n"]},
        # the exact test (test, p_value, wins, losses, alpha) decides; the bootstrap interval is for display
        "difference": {
            k: comparison[k]
            for k in ("diff", "low", "high", "confidence", "iters", "test", "p_value", "wins", "losses", "alpha")
            if k in comparison
        },
        "verdict": comparison["verdict"],
        # every scoring the task defines (e.g. strict = lm-eval's own, robust = the default), in %
        "accuracy_by_scoring": by_scoring,
        "sources": sources,
        # sources whose rationales ran out of generation budget without an answer (limits.budget_flags)
        "budget_flags": limits.budget_flags(sources),
        # a strategy's declared exception to equal updates (Strategy.unequal_updates), or null
        "unequal_updates": stages.get("train", {}).get("unequal_updates"),
        # per teacher, its own sources only (a teacher assistant's data is credited to none)
        "teacher_data": teachers,
        "uncredited_sources": uncredited,
        "training": {
            "examples": train.get("examples"),
            "updates": train.get("updates"),
            "examples_per_source": trained or None,
            "max_steps": (cfg.get("training") or {}).get("max_steps"),
            "truncation": limits.training_truncation(train),
            "semantics": (train.get("extra") or {}).get("semantics"),
            "final_loss": (train.get("loss_history") or [{}])[-1].get("loss"),
            # what limited the training (equal updates / a cost budget / its epochs) and what it spent
            "budget": budget_note.run_budget(
                cfg.get("training") or {}, strategy_records, compute_ledger.from_records(stages), train.get("updates")
            ),
        },
        "strategy_records": strategy_records,
        "scripted_teachers": [t for t in cfg["teachers"] if _is_scripted(t)],
        "notes": ([SCRIPTED_NOTE] if any(_is_scripted(t) for t in cfg["teachers"]) else []),
        "stage_seconds": {k: v.get("seconds") for k, v in stages.items()},
        # where and how it computed: device (GPU name, or CPU model and its bf16 flag), dtypes of
        # training and of each engine, library versions (from the manifest, written before any work)
        "environment": {k: manifest.get(k) for k in ENVIRONMENT_KEYS},
        # the folders (relative to the run directory) holding lm-eval's own results_<date>.json and
        # samples_<task>_<date>.jsonl; folders, not file names, so that a resumed run reports as an uninterrupted one
        "lm_eval_files": {
            stage: f"{stage}/{lm_eval_files.FOLDER}" if lm_eval_files.listed(run / stage / lm_eval_files.FOLDER) else None
            for stage in ("baseline", "distilled")
        },
    }


def render(report: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    # names are data, not markup: a source name holding brackets must print as it is
    title = escape(f"cotgap · {report['strategy']['name']} · {report['task']} · student {report['student']}")
    if report.get("ablation"):
        title += escape(f"  [ABLATION: {report['ablation']}]")
    t = Table(title=title, show_lines=False)
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("baseline (pre-distillation) accuracy", f"{report['baseline']['accuracy']:.1f}%  (n={report['baseline']['n']})")
    for s in report["sources"]:
        if s.get("scripted"):
            s = {**s, "source": f"{s['source']} (scripted)"}
        t.add_row(
            f"teacher {escape(s['source'])}: train accuracy", f"{s['train_accuracy']:.1f}%  ({s['correct']}/{s['generated']})"
        )
        t.add_row(f"teacher {escape(s['source'])}: examples kept", str(s["kept"]))
        if s.get("hit_max_gen_toks_without_answer"):
            t.add_row(
                f"teacher {escape(s['source'])}: stopped at max_gen_toks without an answer",
                f"[yellow]{s['hit_max_gen_toks_without_answer']}[/]",
            )
    for spec, rec in (report.get("api_teachers") or {}).items():
        t.add_row(f"teacher {escape(spec)}: parameters", f"{rec['parameters_b']}B (declared)")
    tr = report["training"]
    budget = f"  (max_steps {tr['max_steps']})" if (tr.get("max_steps") or -1) > 0 else ""
    t.add_row("training examples / optimizer updates", f"{tr['examples']} / {tr['updates']}{budget}")
    cut = tr.get("truncation") or {}
    n_cut, n_dropped = sum((cut.get("prompt_truncated") or {}).values()), sum((cut.get("dropped") or {}).values())
    n_resp = sum((cut.get("response_truncated") or {}).values())
    if n_cut or n_resp or n_dropped:
        t.add_row(
            f"training examples over max_length {cut['max_length']}: prompt cut / response cut / dropped",
            f"[yellow]{n_cut} / {n_resp} / {n_dropped}[/]",
        )
    sem = tr.get("semantics") or {}
    if sem:
        t.add_row(
            "training batch (per device × accumulation × processes) · loss",
            f"{sem['per_device_batch_size']} × {sem['grad_accum']} × {sem['processes']} = {sem['global_batch']}"
            f" · {sem['loss_average']}",
        )
    env = report.get("environment") or {}
    if env.get("device"):
        dev = env["device"]
        where = dev.get("gpu") or f"{dev.get('cpu')} (CPU{', bf16 instructions' if dev.get('cpu_bf16') else ''})"
        t.add_row("computed on · training dtype", f"{escape(str(where))} · {(env.get('dtypes') or {}).get('training')}")
    from cotgap.pipeline import compute as compute_ledger

    for label, value in compute_ledger.table_rows(report.get("compute")):
        t.add_row(label, value)
    t.add_row("distilled accuracy", f"{report['distilled']['accuracy']:.1f}%")
    d = report["difference"]
    conf = round(100 * d.get("confidence", 0.95))
    t.add_row(f"distilled − baseline ({conf}% CI)", f"{d['diff']:+.1f}  [{d['low']:+.1f}, {d['high']:+.1f}]")
    if d.get("p_value") is not None:
        t.add_row(
            "McNemar exact test (decides the verdict)",
            f"p = {d['p_value']:.3g}  ({d['wins']} wins, {d['losses']} losses; α = {d['alpha']:g})",
        )
    colour = {"helped": "green", "hurt": "red"}.get(report["verdict"], "yellow")
    t.add_row("verdict", f"[bold {colour}]{report['verdict']}[/]")
    scorings = report.get("accuracy_by_scoring") or {}
    for name in sorted(set(scorings.get("baseline", {})) | set(scorings.get("distilled", {}))):
        if name == report.get("scoring"):
            continue
        b, d = scorings.get("baseline", {}).get(name), scorings.get("distilled", {}).get(name)
        t.add_row(
            f"[dim]{escape(name)} scoring: baseline → distilled[/]",
            f"[dim]{'–' if b is None else f'{b:.1f}%'} → {'–' if d is None else f'{d:.1f}%'}[/]",
        )
    console.print(t)
    for note in report.get("notes", []):
        console.print(f"[yellow]note:[/] {escape(note)}")
    for flag in report.get("budget_flags") or []:
        console.print(f"[yellow]generation budget:[/] {escape(limits.budget_line(flag))}")
    unequal = report.get("unequal_updates")
    if unequal:
        console.print(f"[red]unequal updates:[/] {escape(str(unequal.get('note', unequal)))}")


def plot(report: dict, path: Path) -> Path:
    """Baseline vs distilled (with the paired 95% interval) and kept examples per source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    base, dist, d = report["baseline"]["accuracy"], report["distilled"]["accuracy"], report["difference"]
    a.bar(["baseline", "distilled"], [base, dist], color=["#999999", "#3b7dd8"])
    a.errorbar([1], [dist], yerr=[[d["diff"] - d["low"]], [d["high"] - d["diff"]]], fmt="none", ecolor="black", capsize=6)
    a.axhline(base, ls="--", color="black", lw=1)
    a.set_ylabel("test accuracy (%)")
    a.set_title(f"{report['task']}: {report['verdict']}")
    names = [s["source"].split("/")[-1] for s in report["sources"]]
    b.bar(names, [s["generated"] for s in report["sources"]], color="#dddddd", label="generated")
    b.bar(names, [s["kept"] for s in report["sources"]], color="#2a9d8f", label="kept (correct)")
    b.set_title("training rationales per source")
    b.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
