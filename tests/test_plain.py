"""plain and what every strategy shares: the plugin listing, the generation cache's source labels, and
the report's per-source training counts and token lengths (issue #4, item 4) on one tiny run."""

import subprocess
import sys

from cotgap import plugins


def test_all_four_strategies_listed_with_their_hooks():
    rows = {r["name"]: r for r in plugins.describe_plugins()}
    for name in ("plain", "mix", "micota", "mind"):
        assert rows[name]["strategies"] == [name]
        assert {"register_strategies", "generate", "filter", "train"} <= set(rows[name]["hooks"])
    for name in ("mix", "micota", "mind"):  # refuse bad runs before the baseline
        assert "check" in rows[name]["hooks"]
    out = subprocess.run([sys.executable, "-m", "cotgap", "plugins", "--json"], capture_output=True, text=True)
    assert out.returncode == 0
    import json

    listed = {r["name"]: r for r in json.loads(out.stdout)}
    assert all(listed[n]["strategies"] == [n] for n in ("plain", "mix", "micota", "mind"))


def test_cached_generations_carry_the_callers_source_label(cotgap_runner):
    """The generation cache is shared across strategies; a reused record must not keep the label (e.g.
    "<model> [large]") of the strategy that generated it first."""
    runner = cotgap_runner(limit=3).prepare()
    ctx = runner.ctx
    first = ctx.generate_rationales("scripted", source="scripted [large]")
    again = ctx.generate_rationales("scripted")
    assert runner.book.generation_stats == {"computed": 1, "reused": 1}  # the runner's bookkeeping
    assert {r["source"] for r in first} == {"scripted [large]"} and {r["source"] for r in again} == {"scripted"}
    assert [r["response"] for r in first] == [r["response"] for r in again]


def test_report_counts_training_examples_per_source_and_tokens(cotgap_runner):
    report = cotgap_runner(teachers=["scripted:long:0.3", "scripted:short"], limit=8).prepare().execute()
    identity = report["strategy"].pop("identity")  # which code ran it (cotgap.strategy_identity)
    assert identity["distribution"] == "cotgap" and len(identity["code"]) == 16
    assert report["strategy"] == {"name": "plain", "plugin": "plain", "params": {"samples": 1, "temperature": 0.0}}
    src = {s["source"]: s for s in report["sources"]}
    assert src["scripted:long:0.3"]["kept"] < 8 == src["scripted:short"]["kept"]
    # plain trains on every kept rationale of every teacher
    assert report["training"]["examples_per_source"] == {n: s["kept"] for n, s in src.items()}
    assert all(s["trained"] == s["kept"] for s in src.values())
    assert report["training"]["examples"] == sum(s["kept"] for s in src.values())
    assert report["training"]["updates"] > 0
    long_len = src["scripted:long:0.3"]["rationale_length_all"]
    short_len = src["scripted:short"]["rationale_length_all"]
    assert long_len["mean_tokens"] > short_len["mean_tokens"] > 0  # student-tokenizer lengths
    assert long_len["mean_words"] > short_len["mean_words"] > 0
