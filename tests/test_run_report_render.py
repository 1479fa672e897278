"""The run's rich table prints names as data: mix's sources are "model [strong]" / "model [easy]"."""

from __future__ import annotations

from rich.console import Console

from cotgap.report.run_report import render


def _report(**over) -> dict:
    src = {"source": "qwen [strong]", "scripted": False, "generated": 30, "correct": 16, "train_accuracy": 53.3, "kept": 16}
    report = {
        "strategy": {"name": "mix"},
        "task": "t[x]",
        "student": "s",
        "ablation": "cross_teacher_intersection [a]",
        "baseline": {"accuracy": 10.0, "n": 20},
        "distilled": {"accuracy": 20.0, "n": 20},
        "difference": {"diff": 10.0, "low": -5.0, "high": 25.0},
        "verdict": "no significant change",
        "sources": [src, {**src, "source": "small [easy]", "scripted": True}],
        "training": {"examples": 11, "updates": 6},
        "accuracy_by_scoring": {"baseline": {"strict": 5.0, "robust": 10.0}, "distilled": {"strict": 15.0, "robust": 20.0}},
        "scoring": "robust",
        "notes": ["a note with [brackets]"],
    }
    report.update(over)
    return report


def test_source_names_with_brackets_are_printed_verbatim():
    console = Console(record=True, width=200)
    render(_report(), console)
    text = console.export_text()
    assert "teacher qwen [strong]: train accuracy" in text
    assert "teacher small [easy] (scripted): examples kept" in text
    assert "t[x]" in text and "[ABLATION: cross_teacher_intersection [a]]" in text
    assert "a note with [brackets]" in text
    assert "strict scoring: baseline → distilled" in text and "5.0% → 15.0%" in text
    assert "+10.0  [-5.0, +25.0]" in text


def test_length_limits_budget_and_unequal_updates_are_shown():
    from cotgap.report import limits

    gens = [
        {"tokens": 384, "max_gen_toks": 384, "correct": False},
        {"tokens": 383, "max_gen_toks": 384, "correct": True},
        {"tokens": 90, "max_gen_toks": 384, "correct": False},
    ]
    counts = limits.generation_limits(gens)
    assert counts == {"hit_max_gen_toks": 2, "hit_max_gen_toks_without_answer": 1}
    # records that cannot tell (scripted / API teachers, older records): unknown, not zero
    assert limits.generation_limits([{"correct": True}]) == {"hit_max_gen_toks": None, "hit_max_gen_toks_without_answer": None}
    rep = _report()
    rep["sources"][0].update(counts)
    rep["training"].update(
        max_steps=6, truncation={"max_length": 1024, "prompt_truncated": {"qwen [strong]": 3}, "dropped": {"qwen [strong]": 1}}
    )
    rep["unequal_updates"] = {"note": "published_batching: the paper's batch 5 x grad-accum 4", "updates": 6}
    console = Console(record=True, width=200)
    render(rep, console)
    text = console.export_text()
    assert "teacher qwen [strong]: stopped at max_gen_toks without an answer" in text
    assert "11 / 6  (max_steps 6)" in text
    assert "training examples over max_length 1024: prompt cut / response cut / dropped" in text and "3 / 0 / 1" in text
    assert "unequal updates: published_batching" in text


def test_the_exact_test_is_printed_beside_the_interval():
    diff = {
        "diff": 20.0,
        "low": 5.0,
        "high": 40.0,
        "confidence": 0.95,
        "test": "mcnemar-exact",
        "p_value": 0.125,
        "wins": 4,
        "losses": 0,
        "alpha": 0.05,
    }
    console = Console(record=True, width=200)
    render(_report(difference=diff), console)
    text = console.export_text()
    assert "+20.0  [+5.0, +40.0]" in text
    assert "McNemar exact test (decides the verdict)" in text and "p = 0.125  (4 wins, 0 losses; α = 0.05)" in text
