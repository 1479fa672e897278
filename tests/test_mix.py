"""mix: the mixing rule (unit level) and two real runs on a tiny student with scripted teachers.

The runs share one run directory and generation cache (baseline and generations are reused by the
second run): the default command through the CLI, then ``published_batching: true`` in-process with
a spy on ``RunContext.train_student`` that sees exactly what went into training.
"""

import dataclasses
import os
import shutil
import subprocess
import sys
import types

import pytest
from cotgap_plugins import mix

from cotgap.errors import UserError
from cotgap.jsonio import read_json, read_jsonl
from cotgap.testing import FakeContext

LONG, SHORT = "scripted:long:0.3", "scripted:short:0.3"
S_NAME, E_NAME = f"{LONG} [strong]", f"{SHORT} [easy]"
ROLES = {"strong": LONG, "easy": SHORT}  # scripted teachers have no size: the roles are named


def _recs(doc_ids, tag, correct=True):
    return [{"doc_id": d, "response": f"{tag}{d}", "correct": correct, "sample": 0} for d in doc_ids]


# -- the mixing rule ----------------------------------------------------------------------------
def test_ratio_and_each_teacher_keeps_its_own_questions():
    strong = _recs(range(0, 30), "L")  # questions 0-29 (0-9 only the strong teacher solved)
    easy = _recs(range(10, 50), "S")  # questions 10-49 (30-49 only the easy teacher solved)
    mixed, info = mix.mix_records(strong, easy, ratio=0.2, seed=1)
    assert info["target_size"] == 40 and info["taken"] == {"strong": 8, "easy": 32}
    assert len(mixed) == 40 and info["ratio_achieved"] == 0.2
    assert {r["response"] for r in mixed} <= {r["response"] for r in strong + easy}
    # distinct questions: nothing is drawn twice, and one-teacher questions are used
    assert len({r["doc_id"] for r in mixed}) == 40 and info["questions_in_both_draws"] == 0
    # seeded and reproducible
    assert mix.mix_records(strong, easy, ratio=0.2, seed=1)[0] == mixed
    assert mix.mix_records(strong, easy, ratio=0.2, seed=2)[0] != mixed


def test_size_and_overlap_options():
    strong, easy = _recs(range(0, 30), "L"), _recs(range(10, 50), "S")
    _, all_info = mix.mix_records(strong, easy, ratio=0.25, size="all")
    assert all_info["target_size"] == 50 and all_info["taken"] == {"strong": 12, "easy": 38}
    fixed, info = mix.mix_records(strong, easy, ratio=0.5, size=10)
    assert len(fixed) == 10 and info["taken"] == {"strong": 5, "easy": 5}
    same = _recs(range(20), "L"), _recs(range(20), "S")
    _, indep = mix.mix_records(*same, ratio=0.5, distinct_questions=False, seed=3)
    _, dist = mix.mix_records(*same, ratio=0.5, distinct_questions=True, seed=3)
    assert dist["questions"] == 20 and indep["questions"] < 20


def test_shortfall_policies():
    strong, easy = _recs(range(3), "L"), _recs(range(40), "S")  # strong has 3, its share is 8
    _, keep = mix.mix_records(strong, easy, ratio=0.2, shortfall="keep")
    assert keep["taken"] == {"strong": 3, "easy": 32} and keep["shortfall"]["strong"] == {"wanted": 8, "available": 3}
    _, fill = mix.mix_records(strong, easy, ratio=0.2, shortfall="fill")
    assert fill["taken"] == {"strong": 3, "easy": 37}
    _, ratio = mix.mix_records(strong, easy, ratio=0.2, shortfall="ratio")
    assert ratio["taken"]["strong"] == 3 and abs(ratio["ratio_achieved"] - 0.2) < 0.05
    _, ok = mix.mix_records(strong, easy, ratio=0.05)
    assert ok["shortfall"] == {}


def _params(**given):
    """``Mix.Params`` as the core validates them (through the testing kit's context)."""
    return FakeContext(strategy=mix.Mix(), params=given).params


def test_params_presets_and_teacher_count():
    assert mix.parse_ratio("1:4") == pytest.approx(0.2) and mix.parse_ratio(0.5) == 0.5
    p = _params(preset="mix-large")
    assert p.share == 0.2 and p.roles == ["large", "small"] and p.ratio_fraction == "1:4" and p.given == {"preset"}
    quarter = _params(ratio="1:4")  # the paper's spelling, kept as written, used as a share
    assert quarter.ratio == "1:4" and quarter.share == pytest.approx(0.2) and quarter.ratio_fraction == "1:4"
    assert _params(preset="mix-long", ratio="1:4").share == 0.2  # the preset's own ratio, written out
    assert _params(size=12).size == 12 and _params(seed=5).seed_for(0) == 5 and _params().seed_for(9) == 9
    for bad, needle in (
        ({"preset": "mix-long", "ratio": 0.5}, "strategy_params of strategy mix: preset mix-long fixes ratio 1:4 (0.2)"),
        ({"ratio": 1.5}, "strategy_params of strategy mix: ratio must be in [0, 1], got 1.5"),
        ({"ratio": "x"}, "strategy_params of strategy mix: ratio must be a number in [0, 1] or 'a:b', got 'x'"),
        ({"ratio": "1:-4"}, "ratio must be a number in [0, 1] or 'a:b', got '1:-4'"),
        ({"ratio": "0:0"}, "ratio must be a number in [0, 1] or 'a:b'"),
        ({"preset": "mix-huge"}, "strategy_params.preset of strategy mix must be one of null, mix-long, mix-large"),
        ({"size": "some"}, "strategy_params of strategy mix: size must be 'short', 'all' or a non-negative integer"),
        ({"size": -1}, "size must be 'short', 'all' or a non-negative integer, got -1"),
        ({"shortfall": "no"}, "strategy_params.shortfall of strategy mix must be one of keep, ratio, fill"),
        ({"distinct_questions": "yes"}, "strategy_params.distinct_questions of strategy mix must be true or false"),
    ):
        with pytest.raises(UserError) as err:
            _params(**bad)
        assert needle in str(err.value) and "\n" not in str(err.value)
    ctx = types.SimpleNamespace(teachers=[object()] * 3, params=_params(), config=types.SimpleNamespace(seed=0))
    with pytest.raises(UserError, match="exactly 2 teachers"):
        mix.Mix().generate(ctx)


def test_given_is_what_the_user_set_not_the_defaults():
    """The preset rule needs no knowledge of what the user set (the rule is on the values); ``given``
    still says which values the user wrote, e.g. for a plugin's own messages."""
    p = _params(ratio=0.2, preset="mix-large")
    assert p.given == {"ratio", "preset"} and dict(p)["size"] == "short"
    assert _params().given == frozenset() and dict(_params()) == mix.Mix.defaults()


# -- the roles ----------------------------------------------------------------------------------
def _ref(spec, n_params=None):
    """A teacher as the runner resolves it; ``n_params`` None: a model without a size (scripted)."""
    from cotgap.models.resolve import resolve

    ref = resolve(spec)
    return ref if n_params is None else types.SimpleNamespace(spec=ref.spec, n_params=n_params)


def _roles(teachers, **params):
    ordered, how = mix.assign_roles(teachers, _params(**params))
    return [t.spec for t in ordered], how


def test_roles_are_named_never_positional():
    a, b = _ref(LONG), _ref(SHORT)
    assert _roles([b, a], strong=LONG, easy=SHORT) == ([LONG, SHORT], "named")
    assert _roles([a, b], easy=LONG) == ([LONG, SHORT][::-1], "named")  # one name places the other teacher
    assert _roles([b, a], strong=LONG)[0] == [LONG, SHORT]
    with pytest.raises(UserError, match="same teacher"):
        _roles([a, b], strong=LONG, easy=LONG)
    with pytest.raises(UserError, match="not one of this run's teachers"):
        _roles([a, b], strong="scripted:long:0.5")


def test_unnamed_roles_by_size_else_refused_in_one_line():
    big, small = _ref("qwen2.5-coder-1.5b-instruct"), _ref("qwen2.5-coder-0.5b-instruct")
    # zoo sizes are pinned: the larger model is the strong one whatever the order (Mix-Large)
    assert _roles([small, big]) == ([big.spec, small.spec], "parameters")
    assert _roles([small, big], preset="mix-large")[0] == [big.spec, small.spec]
    for pair, params in (
        ([_ref(LONG), _ref(SHORT)], {}),  # no size
        ([_ref("qwen2.5-coder-1.5b-instruct", 1.5e9), _ref(SHORT, 1.7e9)], {}),  # one class
        ([small, big], {"preset": "mix-long"}),
    ):  # long vs short is not a size
        with pytest.raises(UserError) as err:
            _roles(pair, **params)
        assert "\n" not in str(err.value) and "strong" in str(err.value) and "easy" in str(err.value)


def test_published_batching_is_per_device_times_accumulation_times_processes():
    from cotgap.backends.training import TrainConfig

    one = TrainConfig()
    over = mix.published_overrides(one)
    assert over["grad_accum"] == 4 and over["max_steps"] == -1  # the paper's own epochs
    b = mix.batching(TrainConfig(**{**dataclasses.asdict(one), **over}))
    assert (b["per_device_batch_size"], b["grad_accum"], b["processes"], b["global_batch"]) == (5, 4, 1, 20)
    # on 4 processes (as the launcher ran them) the global batch is 5 x 4 x 4, not 20
    b4 = mix.batching(TrainConfig(**{**dataclasses.asdict(one), **over}), 4)
    assert (b4["per_device_batch_size"], b4["processes"], b4["global_batch"]) == (5, 4, 80)


# -- real runs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_student):
    from rich.console import Console

    from cotgap import config as config_mod
    from cotgap.pipeline.context import RunContext
    from cotgap.pipeline.runner import Runner

    tmp = tmp_path_factory.mktemp("mix")
    run = tmp / "run"
    env = {**os.environ, "COTGAP_GENERATION_CACHE": str(tmp / "gc")}
    (tmp / "roles.yaml").write_text(f"strategy_params: {{strong: '{LONG}', easy: '{SHORT}'}}\n")
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "cotgap",
            "run",
            "--strategy",
            "mix",
            "--teacher",
            SHORT,
            "--teacher",
            LONG,
            "--config",
            str(tmp / "roles.yaml"),
            "--student",
            str(tiny_student),
            "--task",
            "synthetic_navigate",
            "--limit",
            "20",
            "--backend",
            "hf",
            "--out",
            str(run),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]
    default = {
        "report": read_json(run / "report.json"),
        "mixed": read_jsonl(run / "strategy" / "mix" / "mixed.jsonl"),
        "filtered": {name: read_jsonl(run / "filtered" / f) for name, f in read_json(run / "generations" / "index.json").items()},
        "generations": {
            name: read_jsonl(run / "generations" / f) for name, f in read_json(run / "generations" / "index.json").items()
        },
    }
    shutil.copytree(run, tmp / "default-run")

    trained = []
    original = RunContext.train_student

    def spy(self, records, **kw):
        trained.append([dict(r) for r in records])
        return original(self, records, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COTGAP_GENERATION_CACHE", str(tmp / "gc"))
        mp.setattr(RunContext, "train_student", spy)
        cfg = config_mod.load(
            None,
            {
                "strategy": "mix",
                "student": str(tiny_student),
                "teachers": [LONG, SHORT],
                "task": "synthetic_navigate",
                "limit": 20,
                "out": str(tmp / "published"),
                "strategy_params": {**ROLES, "published_batching": True},
            },
        )
        cfg.generation.backend = "hf"
        published = Runner(cfg, Console(quiet=True)).prepare().execute()
    assert len(trained) == 1
    return {"default": default, "published": published, "trained": trained[0], "run": run}


def _key(r):
    return (r["source"], r["doc_id"], r["response"])


def test_mix_ratio_is_exact_and_only_correct_rationales(runs):
    d = runs["default"]
    trained, mixed = runs["trained"], d["mixed"]
    # the spy saw exactly the set the plugin wrote out (same data, same seed in both runs)
    assert sorted(map(_key, trained)) == sorted(map(_key, mixed))
    # both teachers got some wrong, and kept exactly their own correct rationales
    for name in (S_NAME, E_NAME):
        gens, kept = d["generations"][name], d["filtered"][name]
        assert 0 < sum(not g["correct"] for g in gens) < len(gens)
        assert sorted(map(_key, kept)) == sorted(map(_key, [g for g in gens if g["correct"]]))
    # every trained rationale is one its own teacher got right
    kept_keys = {name: set(map(_key, recs)) for name, recs in d["filtered"].items()}
    correct = {_key(g): g["correct"] for recs in d["generations"].values() for g in recs}
    for r in trained:
        assert r["correct"] and correct[_key(r)] is True and _key(r) in kept_keys[r["source"]]
    n_short = len(d["filtered"][E_NAME])
    n_strong = sum(r["source"] == S_NAME for r in trained)
    assert len(trained) == n_short  # size "short": as many as the short teacher kept
    assert abs(n_strong - 0.2 * n_short) <= 1 and n_strong >= 1
    assert len(trained) - n_strong == sum(r["source"] == E_NAME for r in trained)
    recs = d["report"]["strategy_records"]
    assert recs["mix.examples_per_source"] == {S_NAME: n_strong, E_NAME: len(trained) - n_strong}
    assert recs["mix.ratio"]["achieved"] == pytest.approx(n_strong / len(trained))


def test_cli_run_reports_strategy_records(runs):
    report = runs["default"]["report"]
    assert report["strategy"]["name"] == "mix" and report["verdict"]
    recs = report["strategy_records"]
    assert recs["mix.params"]["ratio"] == 0.2 and recs["mix.params"]["ratio_fraction"] == "1:4"
    assert recs["mix.params"]["preset"] is None and recs["mix.params"]["published_batching"] is False
    # the teachers were given short first: the named roles, not the order, decide
    assert (recs["mix.params"]["strong"], recs["mix.params"]["easy"], recs["mix.params"]["roles_by"]) == (LONG, SHORT, "named")
    assert recs["mix.ratio"]["target"] == 0.2
    tr = recs["mix.training"]
    assert tr["updates"] == report["training"]["updates"] == tr["plain_updates"]  # same budget as plain
    assert report["unequal_updates"] is None
    assert {s["source"] for s in report["sources"]} == {S_NAME, E_NAME}
    assert (runs["run"].parent / "default-run" / "student" / "model" / "config.json").exists()


def test_published_batching_gives_fewer_updates_and_is_flagged(runs):
    default, published = runs["default"]["report"], runs["published"]
    assert published["training"]["examples"] == default["training"]["examples"]
    assert published["training"]["updates"] < default["training"]["updates"]
    flag = published["unequal_updates"]  # declared by the strategy (Strategy.unequal_updates), kept by the core
    assert flag["updates"] == published["training"]["updates"] and flag["note"].startswith("published_batching")
    tr = published["strategy_records"]["mix.training"]
    assert tr["plain_updates"] == default["training"]["updates"]
    assert published["strategy_records"]["mix.batching"]["batching"] == "5 per device x 4 accumulation x 1 process = 20"
    assert (tr["per_device_batch_size"], tr["grad_accum"], tr["processes"], tr["global_batch"]) == (5, 4, 1, 20)
    assert published["strategy_records"]["mix.params"]["published_batching"] is True
    # another config, so another run directory (the default run's is left as it was)
    assert read_json(runs["run"].parent / "published" / "run.json")["config"]["strategy_params"] == {
        **ROLES,
        "published_batching": True,
    }
    assert read_json(runs["run"] / "run.json")["config"]["strategy_params"] == ROLES


# -- the check hook and default teachers ----------------------------------------------------------
def test_wrong_teacher_count_refused_before_any_work(tmp_path, tiny_student):
    out = tmp_path / "one-teacher"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "cotgap",
            "run",
            "--strategy",
            "mix",
            "--teacher",
            LONG,
            "--student",
            str(tiny_student),
            "--task",
            "synthetic_navigate",
            "--limit",
            "4",
            "--backend",
            "hf",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COTGAP_GENERATION_CACHE": str(tmp_path / "gc")},
    )
    assert cli.returncode == 2, cli.stdout[-2000:] + cli.stderr[-2000:]
    assert "exactly 2 teachers" in cli.stderr and "Traceback" not in cli.stderr
    # refused by the ``check`` hook in Runner.prepare: no baseline, no manifest, no generation
    assert not (out / "baseline").exists() and not (out / "stages").exists() and not (out / "manifest.json").exists()
    assert not (tmp_path / "gc").exists()


def test_no_teacher_given_uses_mix_default_teachers(tmp_path, tiny_student):
    from rich.console import Console

    from cotgap import config as config_mod
    from cotgap.config import DEFAULT_TEACHERS
    from cotgap.pipeline.runner import Runner

    def prepared(strategy):
        cfg = config_mod.load(
            None,
            {
                "strategy": strategy,
                "student": str(tiny_student),
                "task": "synthetic_navigate",
                "limit": 4,
                "out": str(tmp_path / strategy),
            },
        )
        assert cfg.teachers == []  # nothing named: the runner fills in the strategy's default teachers
        return Runner(cfg, Console(quiet=True)).prepare()

    r = prepared("mix")  # resolves zoo names only (pinned sizes): no model is fetched or loaded
    assert (
        [t.spec for t in r.teachers]
        == list(mix.DEFAULT_TEACHERS)
        == ["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct"]
    )
    assert read_json(r.run / "config.json")["teachers"] == list(mix.DEFAULT_TEACHERS)
    assert len(read_json(r.run / "manifest.json")["models"]["teachers"]) == 2
    # a strategy that registered no default teachers keeps the core's default
    assert [t.spec for t in prepared("plain").teachers] == list(DEFAULT_TEACHERS)
