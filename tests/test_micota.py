"""micota: the DARE-TIES teacher assistant (mergekit), the size rule, cross-run caching, one CLI run.

All on tiny random-init Llama models (cotgap.testing). A random-init TA gets no train question
right, so the end-to-end run gives the merge a long parent that has learnt the answer format
(the short parent fully fine-tuned to say "So the answer is Yes."): the TA inherits it and gets
the "Yes" questions right. The plugin's own way of making the long parent (fine-tuning the short
parent on the teacher's long CoT) is exercised in-process, where a correct TA is not needed.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from cotgap_plugins import _merge, micota

from cotgap import plugins
from cotgap.errors import ProtocolError, UserError
from cotgap.jsonio import read_json
from cotgap.testing import FakeContext

MERGEKIT_YAML = Path(sys.executable).parent / "mergekit-yaml"


def _tensors(folder) -> dict:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        out.update(load_file(f))
    return out


@pytest.fixture(scope="module")
def other_parent(tmp_path_factory):
    """Same architecture and size as the session ``tiny_teacher`` (96x3), another random init."""
    from cotgap.testing import build_model

    return build_model(tmp_path_factory.mktemp("tiny-long"), hidden=96, layers=3, seed=2)


@pytest.fixture(scope="module")
def format_long_parent(tmp_path_factory, tiny_teacher):
    """The short parent (tiny_teacher) fully fine-tuned to answer "So the answer is Yes."."""
    from cotgap.backends.training import TrainConfig, train_sft
    from cotgap.tasks import synthetic

    task = synthetic.get("synthetic_navigate")
    examples = [
        {"prompt": f"Q: {e['input']}\nA: Let's think step by step.\n", "completion": "So the answer is Yes."}
        for e in task.generate(8, seed=3)
    ]
    cfg = TrainConfig(method="full", learning_rate=3e-3, epochs=20, per_device_batch_size=8, warmup_ratio=0.0, bf16=False)
    out = tmp_path_factory.mktemp("format-long") / "ft"
    return Path(train_sft(str(tiny_teacher), examples, out, cfg, progress=False).path)


def _runner(tmp_path, out, **overrides):
    from rich.console import Console

    from cotgap import config as config_mod
    from cotgap.pipeline.runner import Runner

    # the TA's and the parents' budget too (micota's max_new_tokens, 512 by default)
    overrides["strategy_params"] = {"max_new_tokens": 48, **overrides.get("strategy_params", {})}
    cfg = config_mod.load(
        None, {"strategy": "micota", "task": "synthetic_navigate", "limit": 4, "out": str(tmp_path / out), **overrides}
    )
    cfg.generation.backend = "hf"
    cfg.generation.max_new_tokens = 48  # random-init models write until the limit: keep it short
    return Runner(cfg, Console(quiet=True)).prepare()


@pytest.fixture()
def caches(tmp_path, monkeypatch):
    monkeypatch.setenv("COTGAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COTGAP_GENERATION_CACHE", str(tmp_path / "gencache"))
    return tmp_path


def test_registered_as_a_strategy_object_with_typed_params():
    strat = plugins.strategies()["micota"]
    assert strat.defaults == micota.MiCoTA.defaults() and strat.defaults["short_parent"] == "qwen2.5-coder-0.5b-instruct"
    assert isinstance(strat.impl, micota.MiCoTA)
    with pytest.raises(UserError, match="strategy_params.ta_samples of strategy micota must be an integer"):
        strat.impl.validate_params({"ta_samples": "2"})
    with pytest.raises(UserError, match="dtype of strategy micota must be one of float32, bfloat16, float16"):
        strat.impl.validate_params({"dtype": "int8"})  # also the long parent's save dtype: floating only


def test_params_rules_live_on_the_params_class():
    """Every rule on ``MiCoTA.Params`` (fields' ranges, ``check``), checked once by the core: DARE's
    density must be > 0 (it keeps that fraction of the delta and rescales by 1/density)."""
    make = lambda **p: FakeContext(strategy=micota.MiCoTA(), params=p).params  # noqa: E731
    for bad, needle in (
        ({"density": 0}, "strategy_params.density of strategy micota must be > 0.0, got 0.0"),
        ({"density": 1.5}, "strategy_params.density of strategy micota must be <= 1.0"),
        ({"ta_samples": 2}, "strategy_params of strategy micota: ta_samples > 1 needs ta_temperature > 0"),
        ({"short_parent": ""}, "strategy_params of strategy micota: short_parent is required"),
        ({"long_parent_lora": {"epoch": 1}}, "strategy_params of strategy micota: unknown long_parent_lora key(s) epoch"),
        ({"normalize": "yes"}, "strategy_params.normalize of strategy micota must be true or false or null"),
    ):
        with pytest.raises(UserError) as err:
            make(**bad)
        assert needle in str(err.value) and "\n" not in str(err.value)
    p = make(density=1, ta_samples=2, ta_temperature=0.8, long_parent_lora={"epochs": 2.0})
    assert (p.density, p.ta_samples, p.given) == (1.0, 2, {"density", "ta_samples", "ta_temperature", "long_parent_lora"})
    assert (p.merge_seed_for(7), make(merge_seed=3).merge_seed_for(7)) == (7, 3)


def test_merge_equals_mergekit_cli_and_differs_from_parents(tmp_path, tiny_teacher, other_parent):
    config = _merge.dare_ties_config(short_parent=str(tiny_teacher), long_parent=str(other_parent))
    assert config["merge_method"] == "dare_ties" and config["base_model"] == str(tiny_teacher)
    assert config["models"] == [{"model": str(other_parent), "parameters": {"density": 0.5, "weight": 0.5}}]
    assert config["dtype"] == "bfloat16" and config["parameters"] == {"normalize": False, "int8_mask": True}
    text = _merge.to_yaml(config)
    (tmp_path / "ta.yml").write_text(text)
    _merge.run_merge(config, tmp_path / "api", seed=7, yaml_text=text)
    cli = subprocess.run(
        [str(MERGEKIT_YAML), str(tmp_path / "ta.yml"), str(tmp_path / "cli"), "--random-seed", "7"],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    api, ref = _tensors(tmp_path / "api"), _tensors(tmp_path / "cli")
    assert api and api.keys() == ref.keys()
    assert all(torch.equal(api[k], ref[k]) for k in api)  # tensor for tensor
    short, long = _tensors(tiny_teacher), _tensors(other_parent)
    differing = [k for k in api if not torch.equal(short[k], long[k])]
    assert differing and api.keys() == short.keys()
    for k in differing:
        assert not torch.equal(api[k], short[k].to(api[k].dtype)) and not torch.equal(api[k], long[k].to(api[k].dtype)), k
    # DARE's dropping follows the seed: another seed, another TA
    _merge.run_merge(config, tmp_path / "seed8", seed=8, yaml_text=text)
    assert any(not torch.equal(api[k], v) for k, v in _tensors(tmp_path / "seed8").items())
    # with a separate base, both parents are task vectors and the weights are normalised
    two = _merge.dare_ties_config(short_parent=str(tiny_teacher), long_parent=str(other_parent), base_model="/b")
    assert len(two["models"]) == 2 and two["parameters"]["normalize"] is True


def test_size_rule_student_lt_ta_lt_teacher(caches, tiny_student, tiny_teacher):
    """Refused by the ``check`` hook inside ``Runner.prepare``: before the baseline, before any model runs."""
    # TA (the short parent's size) not larger than the student
    for short in (tiny_student, tiny_teacher):
        with pytest.raises(ProtocolError, match="not larger than the student"):
            _runner(
                caches,
                f"r-{short.name}",
                student=str(tiny_teacher),
                teachers=["scripted:long"],
                strategy_params={"short_parent": str(short)},
            )
    # TA not smaller than the teacher
    with pytest.raises(ProtocolError, match="not smaller than the teacher"):
        _runner(
            caches,
            "r-teacher",
            student=str(tiny_student),
            teachers=[str(tiny_teacher)],
            strategy_params={"short_parent": str(tiny_teacher)},
        )
    # parents of different architectures cannot be merged
    with pytest.raises(UserError, match="architecture"):
        _runner(
            caches,
            "r-shape",
            student=str(tiny_student),
            teachers=["scripted:long"],
            strategy_params={"short_parent": str(tiny_teacher), "long_parent": str(tiny_student)},
        )
    # bad parameters too
    with pytest.raises(UserError, match="density"):
        _runner(
            caches,
            "r-density",
            student=str(tiny_student),
            teachers=["scripted:long"],
            strategy_params={"short_parent": str(tiny_teacher), "density": 0},
        )
    assert not (caches / "gencache").exists() and not (caches / "cache").exists()  # refused before any work
    for out in ("r-teacher", "r-shape", "r-density"):
        assert not (caches / out / "baseline").exists() and not (caches / out / "manifest.json").exists()
    # the same checks guard ``generate`` (a hook caller that skipped ``check``)
    ok = _runner(
        caches, "r-ok", student=str(tiny_student), teachers=["scripted:long"], strategy_params={"short_parent": str(tiny_teacher)}
    )
    ok.ctx.params = micota.MiCoTA.validate_params({**ok.ctx.params, "short_parent": str(tiny_student)})
    with pytest.raises(ProtocolError, match="not larger than the student"):
        plugins.strategy_hooks("micota").generate(strategy="micota", ctx=ok.ctx)


def test_long_parent_and_ta_are_built_once_and_reused_by_another_run(caches, tiny_student, tiny_teacher):
    # 3 epochs on 4 examples: 3 updates (with a single update the warm-up step has lr 0: no change at all)
    params = {"short_parent": str(tiny_teacher), "long_parent_lora": {"method": "lora", "epochs": 3}, "measure_long_parent": True}
    hooks = plugins.strategy_hooks("micota")
    infos = []
    for out in ("run-a", "run-b"):
        r = _runner(caches, out, student=str(tiny_student), teachers=["scripted:long"], strategy_params=params)
        sources = hooks.generate(strategy="micota", ctx=r.ctx)
        info, tokens = r.book.records["micota"], r.book.records["rationale_tokens"]
        assert set(sources) == {"scripted:long", info["ta"]["source"]} and info["ta"]["source"].startswith("TA:")
        assert tokens["teacher"]["all"]["n"] == 4 and tokens["teacher"]["all"]["mean"] > 0
        assert {"ta", "short_parent", "long_parent", "ta_over_teacher"} <= set(tokens)
        assert tokens["long_parent"]["all"]["n"] == 4 and info["long_parent"]["saved_as"] == "float32"
        assert info["long_parent"]["train_shots"] == 3  # trained on the 3-shot prompt the parents generate from
        assert info["long_parent"]["examples_seen"] == min(4, info["long_parent"]["updates"])  # batch of 1
        assert r.book.records["micota.ta_intermediate"]["intermediate"] in (True, False)
        assert (r.run.path / "strategy" / "micota" / "long_parent_generations.jsonl").exists()
        assert (r.run.path / "strategy" / "micota" / "ta_merge.yml").exists()
        assert (r.run.path / "stages" / "strategy.micota.ta_merge.json").exists()
        infos.append((info, dict(r.book.generation_stats)))
    (a, _), (b, gen_b) = infos
    assert a["long_parent"]["cache"] == "built" and a["ta"]["cache"] == "built"
    assert b["long_parent"]["cache"] == "reused" and b["ta"]["cache"] == "reused"
    assert a["ta"]["path"] == b["ta"]["path"] and Path(a["ta"]["path"]).parent == caches / "cache" / "micota"
    assert gen_b == {"computed": 0, "reused": 4}  # teacher, TA and both parents' generations all cached
    merged = yaml.safe_load((Path(a["ta"]["path"]) / "micota_merge.yml").read_text())
    assert merged["base_model"] == str(tiny_teacher) and merged["models"][0]["model"] == a["long_parent"]["path"]
    # merged in float32: the LoRA task vector is far below bfloat16's resolution and would round away
    assert merged["dtype"] == "float32"
    short, long, ta = (_tensors(p) for p in (tiny_teacher, a["long_parent"]["path"], a["ta"]["path"]))
    changed = [k for k in ta if not torch.equal(long[k], short[k])]
    assert changed  # the long parent learnt something
    for k in changed:  # DARE keeps about half of the task vector's entries
        frac = (ta[k] != short[k]).float().mean().item()
        assert 0.3 < frac < 0.7, (k, frac)


def test_long_parent_is_saved_in_the_merge_dtype_so_its_delta_survives(caches, tiny_student, tiny_teacher):
    """Training in bf16 (forced on here; ``auto`` picks it on a GPU or a bf16 CPU) must not round the
    long parent to bfloat16 before a float32 merge. On CPU, as on a GPU: the dtype of the saved
    model is chosen by the same code after training (``training.saved_dtype``)."""
    from cotgap.backends.training import saved_dtype

    assert saved_dtype(None, True) == torch.bfloat16 and saved_dtype(None, False) is None  # the student's default
    with pytest.raises(ValueError, match="floating torch dtype"):
        saved_dtype("int8", True)
    r = _runner(
        caches,
        "r-dtype",
        student=str(tiny_student),
        teachers=["scripted:long"],
        strategy_params={"short_parent": str(tiny_teacher)},
    )
    short = r.ctx.resolve_model(str(tiny_teacher))
    records = r.ctx.generate_rationales(r.ctx.teachers[0])
    lora = {"method": "lora", "epochs": 3, "bf16": True}  # 3 updates (the first, warm-up, has lr 0)
    made = {d: micota.make_long_parent(r.ctx, short, records, lora, d) for d in ("float32", "bfloat16")}
    assert made["float32"]["path"] != made["bfloat16"]["path"]  # the save dtype is part of the cache key
    base, f32, b16 = (_tensors(p) for p in (tiny_teacher, made["float32"]["path"], made["bfloat16"]["path"]))
    assert {v.dtype for v in f32.values()} == {torch.float32} and {v.dtype for v in b16.values()} == {torch.bfloat16}
    delta = {k: f32[k] != base[k] for k in base}
    changed = sum(d.sum().item() for d in delta.values())
    # entries whose change is below bfloat16's resolution: a bfloat16 copy of the parent rounds them back to
    # the base's bfloat16 value, so a merge would see no delta there; the float32 parent keeps them
    hidden = sum((d & (f32[k].to(torch.bfloat16) == base[k].to(torch.bfloat16))).sum().item() for k, d in delta.items())
    assert changed > 0 and hidden > 0.2 * changed, (changed, hidden)


def test_cli_run_trains_on_the_ta(tmp_path, tiny_student, tiny_teacher, format_long_parent):
    cfg = tmp_path / "micota.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "generation": {"max_new_tokens": 48},
                "strategy_params": {
                    "short_parent": str(tiny_teacher),
                    "long_parent": str(format_long_parent),
                    "weight_long": 1.0,
                    "max_new_tokens": 48,
                },
            }
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cotgap",
            "run",
            "--strategy",
            "micota",
            "--config",
            str(cfg),
            "--student",
            str(tiny_student),
            "--teacher",
            "scripted:long",
            "--task",
            "synthetic_navigate",
            "--limit",
            "6",
            "--backend",
            "hf",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COTGAP_CACHE": str(tmp_path / "cache"), "COTGAP_GENERATION_CACHE": str(tmp_path / "gc")},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = read_json(tmp_path / "run" / "report.json")
    sources = {s["source"]: s for s in report["sources"]}
    ta = next(name for name in sources if name.startswith("TA:"))
    assert set(sources) == {"scripted:long", ta}
    assert sources[ta]["kept"] > 0 and report["training"]["examples"] == sources[ta]["kept"]  # TA data only
    tokens = report["strategy_records"]["rationale_tokens"]
    assert tokens["teacher"]["correct"]["n"] == 6 and tokens["ta"]["correct"]["n"] == sources[ta]["kept"]
    assert "short_parent" in tokens and tokens["ta_over_teacher"]["all"] is not None
    info = report["strategy_records"]["micota"]
    assert info["sizes"]["student"] < info["sizes"]["ta"] and info["long_parent"] == {"given": str(format_long_parent)}
    assert (tmp_path / "run" / "strategy" / "micota" / "ta_merge.yml").exists()
    # the three lengths measured by default; weight_long 1 makes the TA the long parent, not intermediate:
    # one line on the terminal and a field in report.json say so
    verdict = report["strategy_records"]["micota.ta_intermediate"]
    assert verdict["ta"] == tokens["ta"]["all"]["mean"] and verdict["long_parent"] == tokens["long_parent"]["all"]["mean"]
    assert verdict["short_parent"] == tokens["short_parent"]["all"]["mean"]
    lo, ta, hi = verdict["short_parent"], verdict["ta"], verdict["long_parent"]
    assert verdict["intermediate"] is (lo < ta < hi)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if "micota: the TA is" in line]
    assert len(lines) == 1 and ("NOT intermediate" in lines[0]) is (not verdict["intermediate"])


@pytest.mark.parametrize(
    "short, ta, long, intermediate, words",
    [
        (86.8, 166.0, 241.6, True, "short parent 86.8 < TA 166.0 < long parent 241.6"),
        (86.8, 86.4, 85.1, False, "not above the short parent's"),  # the old default: a TA as short as its parents
        (86.8, 250.0, 241.6, False, "not below the long parent's"),
        (86.8, 86.8, 241.6, False, "not above the short parent's"),  # strictly between
        (None, 100.0, 241.6, None, "not measured: short_parent"),
    ],
)
def test_ta_intermediate_is_strictly_between_the_parents(short, ta, long, intermediate, words):
    def stat(mean):
        return None if mean is None else {"all": {"n": 30, "mean": mean}}

    verdict = micota.ta_intermediate({"short_parent": stat(short), "ta": stat(ta), "long_parent": stat(long)})
    assert verdict["intermediate"] is intermediate and words in verdict["reason"]
    assert (verdict["short_parent"], verdict["ta"], verdict["long_parent"]) == (short, ta, long)


def test_defaults_make_a_long_parent_that_writes_long_cot():
    """The measured recipe (docs/strategies.md) is the default: a long-CoT teacher, the long parent
    trained on the generation prompt at lr 3e-4, a budget the long CoT fits in, all lengths measured."""
    d = micota.MiCoTA.defaults()
    assert micota.MiCoTA.default_teachers == ("scripted:long",)
    assert d["long_parent_lora"]["learning_rate"] == 3e-4 and d["long_parent_shots"] is None
    assert d["max_new_tokens"] == 512 and d["measure_short_parent"] and d["measure_long_parent"]
