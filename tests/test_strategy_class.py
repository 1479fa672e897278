"""``cotgap.Strategy``: typed parameters checked by name, and every hook method a hook."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from cotgap import Strategy, UserError, plugins
from cotgap.testing import FakeContext


class Sampled(Strategy):
    name = "sampled-test"

    @dataclass
    class Params:
        samples: int = field(default=2, metadata={"min": 1})
        temperature: float = field(default=0.7, metadata={"min": 0.0, "max": 2.0})
        mode: str = field(default="a", metadata={"choices": ("a", "b")})
        note: str | None = None

    def filter(self, ctx, source, records):  # undecorated override
        return records[:1]


def test_params_defaults_and_valid_values():
    assert Sampled.validate_params({}) == {"samples": 2, "temperature": 0.7, "mode": "a", "note": None}
    assert Sampled.validate_params({"temperature": 1, "note": "x"})["temperature"] == 1.0  # int where float is fine


@pytest.mark.parametrize(
    "given, needle",
    [
        ({"sample": 3}, "unknown parameter(s) for strategy sampled-test: sample"),
        ({"samples": "3"}, "strategy_params.samples of strategy sampled-test must be an integer"),
        ({"samples": True}, "must be an integer"),
        ({"samples": 0}, "must be >= 1"),
        ({"temperature": 3.0}, "must be <= 2.0"),
        ({"mode": "c"}, "must be one of a, b"),
    ],
)
def test_bad_params_are_refused_by_name(given, needle):
    with pytest.raises(UserError) as exc:
        Sampled.validate_params(given)
    assert needle in str(exc.value)


def test_undecorated_methods_of_a_strategy_object_are_hooks():
    obj = Sampled()
    plugins.pm.register(obj, name="sampled-test-plugin")
    try:
        hooks = {h.name for h in plugins.pm.get_hookcallers(obj)}
        assert {"check", "generate", "filter", "train"} <= hooks
        info = plugins.strategies()["sampled-test"]
        assert info.impl is obj and info.defaults["samples"] == 2
        caller = plugins.strategy_hooks("sampled-test")
        assert caller.filter(strategy="sampled-test", ctx=None, source="s", records=[1, 2, 3]) == [1]
    finally:
        plugins.pm.unregister(name="sampled-test-plugin")


def test_plain_is_the_base_class_under_its_name():
    info = plugins.select("plain")
    assert type(info.impl).__mro__[1] is Strategy and info.defaults == {"samples": 1, "temperature": 0.0}
    assert (
        plugins.describe_plugins()[[r["name"] for r in plugins.describe_plugins()].index("plain")]["module"]
        == "cotgap_plugins.plain"
    )


def test_fake_context_unit_tests_one_method():
    from cotgap.testing import FakeContext

    ctx = FakeContext(params={"samples": 1, "temperature": 0.0}, teacher_names=("a", "b"))
    data = Strategy().generate(ctx)
    assert set(data) == {"a", "b"} and all(len(v) == 4 for v in data.values())
    records = data["a"] + [{"doc_id": 9, "response": "wrong", "correct": False}]
    assert Strategy().filter(ctx, "a", records) == data["a"]
    Strategy().train(ctx, data)
    assert len(ctx.trained[0]["records"]) == 8


def test_run_strategy_end_to_end_on_tiny_models(tmp_path):
    from cotgap.testing import run_strategy

    class FirstTwo(Strategy):
        name = "first-two-test"

        def filter(self, ctx, source, records):
            return [r for r in records if r["correct"]][:2]

    report = run_strategy(FirstTwo(), tmp_path)
    assert report["strategy"]["name"] == "first-two-test"
    assert [s["kept"] for s in report["sources"]] == [2] and report["training"]["examples"] == 2
    assert report["verdict"] in {"helped", "hurt", "no significant change"}


def test_built_in_plugins_use_only_the_public_api():
    """plugins/*.py may import ``cotgap`` (what it exports) and each other, nothing inside cotgap."""
    import ast
    from pathlib import Path

    offenders = []
    for path in sorted((Path(__file__).resolve().parents[1] / "plugins").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("cotgap.")]
    assert offenders == []


def test_every_built_in_is_a_strategy_object():
    for name in ("plain", "mix", "micota", "mind"):
        assert isinstance(plugins.select(name).impl, Strategy), name


def test_an_edited_strategy_recomputes_its_stages_and_nothing_else(tmp_path, monkeypatch):
    """Results follow the code: the strategy's identity (distribution, version, code digest) is
    in the manifest and in its stages' keys, so editing its module recomputes generate, filter,
    train and the distilled evaluation on the next run, while the baseline is reused."""
    import importlib

    from cotgap.testing import build_model, run_strategy

    src = tmp_path / "pkg" / "cotgap_edited.py"
    src.parent.mkdir()
    src.write_text("from cotgap import Strategy\n\n\nclass Edited(Strategy):\n    name = 'edited'\n")
    monkeypatch.syspath_prepend(str(src.parent))
    module = importlib.import_module("cotgap_edited")
    student = build_model(tmp_path / "student", hidden=64, layers=2)
    first = run_strategy(module.Edited(), tmp_path / "r", student=student)
    manifest = json.loads((tmp_path / "r" / "run" / "manifest.json").read_text())
    code = manifest["strategy"]["identity"]["code"]
    assert first["run"]["computed"] == ["baseline", "generate", "filter", "train", "distilled"]
    src.write_text(src.read_text() + "    # a comment is an edit: the code is not the same file\n")
    again = run_strategy(module.Edited(), tmp_path / "r", student=student)
    assert again["run"]["cached"] == ["baseline"]
    assert again["run"]["computed"] == ["generate", "filter", "train", "distilled"]
    assert json.loads((tmp_path / "r" / "run" / "manifest.json").read_text())["strategy"]["identity"]["code"] != code


def test_a_hook_method_with_other_parameter_names_is_named_with_the_expected_ones(monkeypatch):
    """``def filter(self, ctx, src, recs)`` fails pluggy's validation (it passes arguments by name):
    the plugin is listed as failed with the method, its parameters and the hook's, and ``run
    --strategy`` for its name points there instead of a bare "unknown strategy"."""

    class Misnamed(Strategy):
        name = "misnamed"

        def filter(self, ctx, src, recs):
            return recs

    plugins.load_plugins()
    monkeypatch.setattr(plugins, "load_failures", dict(plugins.load_failures))
    monkeypatch.setattr(plugins, "failed_strategies", dict(plugins.failed_strategies))
    assert plugins._register(Misnamed(), "misnamed-plugin") is False
    why = plugins.load_failures["misnamed-plugin"]
    assert why == (
        "Misnamed.filter(ctx, src, recs) does not match the hook filter(ctx, source, records): pluggy "
        "passes arguments by name, so its parameters must be named ctx, source, records"
    )
    with pytest.raises(UserError) as err:
        plugins.select("misnamed")
    assert "its plugin 'misnamed-plugin' failed to load (Misnamed.filter(ctx, src, recs) does not match" in str(err.value)


def test_params_are_the_validated_object_read_only_with_what_the_user_set():
    """``ctx.params`` is the strategy's validated ``Params`` (``ctx.params.k``; also a read-only
    mapping, what the manifest records); rules across fields live in ``Params.check``, once;
    ``given`` names what the user set explicitly."""

    class Sampler(Strategy):
        name = "sampler"

        @dataclass
        class Params:
            samples: int = field(default=1, metadata={"min": 1})
            temperature: float = field(default=0.0, metadata={"min": 0.0})
            k: int = 3

            def check(self):
                if self.samples > 1 and self.temperature <= 0:
                    raise UserError("samples > 1 needs temperature > 0")

    p = Sampler.validate_params({"k": 5})
    assert (p.k, p["k"], p.samples, dict(p)) == (5, 5, 1, {"samples": 1, "temperature": 0.0, "k": 5})
    assert p.given == {"k"}
    with pytest.raises(AttributeError, match="read-only"):
        p.k = 6
    with pytest.raises(UserError, match="strategy_params of strategy sampler: samples > 1 needs temperature > 0"):
        Sampler.validate_params({"samples": 2})
    with pytest.raises(UserError, match="samples > 1 needs temperature > 0"):  # the base class's own rule
        Strategy.validate_params({"samples": 2})


class Inheriting(Strategy):
    """A third-party strategy whose ``Params`` derives from the base class's (a dataclass subclass)."""

    name = "inheriting-test"

    @dataclass
    class Params(Strategy.Params):
        k: int = field(default=3, metadata={"min": 1})

        def check(self):  # no super().check(): the base class's rule runs anyway
            if self.k > self.samples * 10:
                raise UserError(f"k must be <= 10 x samples, got k {self.k}, samples {self.samples}")


def test_a_subclass_params_inherits_samples_temperature_and_the_sampling_rule():
    p = Inheriting.validate_params({"k": 4})
    assert dict(p) == {"samples": 1, "temperature": 0.0, "k": 4} and p.given == {"k"}
    assert Inheriting.defaults() == {"samples": 1, "temperature": 0.0, "k": 3}
    assert (p.samples, p.temperature) == (1, 0.0)
    with pytest.raises(UserError) as err:
        Inheriting.validate_params({"samples": 2, "k": 4})  # the base class's rule, not re-written here
    assert str(err.value) == (
        "strategy_params of strategy inheriting-test: samples > 1 needs temperature > 0 (greedy samples are identical)"
    )
    with pytest.raises(UserError, match="strategy_params.samples of strategy inheriting-test must be >= 1"):
        Inheriting.validate_params({"samples": 0})  # the base field's range too
    with pytest.raises(UserError, match="strategy_params of strategy inheriting-test: k must be <= 10 x samples"):
        Inheriting.validate_params({"k": 11})  # the subclass's own rule
    assert Inheriting.validate_params({"samples": 2, "temperature": 0.7, "k": 11}).k == 11
    # the base generate samples as the inherited fields say
    ctx = FakeContext(strategy=Inheriting(), params={"samples": 2, "temperature": 0.5}, teacher_names=("a",))
    assert ctx.params.given == {"samples", "temperature"}
    assert sorted({r["sample"] for r in Inheriting().generate(ctx)["a"]}) == [0, 1]
    plan = Inheriting().planned_generations(ctx.params, ["a"])
    assert [(g.samples, g.temperature) for g in plan] == [(2, 0.5)]


def test_a_rule_calling_super_runs_the_base_rule_too_and_a_params_of_its_own_starts_afresh():
    class Explicit(Strategy):
        name = "explicit-test"

        @dataclass
        class Params(Strategy.Params):
            def check(self):
                super().check()  # the conventional spelling works as well

    with pytest.raises(UserError, match="samples > 1 needs temperature > 0"):
        Explicit.validate_params({"samples": 3})
    # a Params that does not derive from the base class has none of its fields: the base generate
    # then writes one greedy rationale per question (what the shortest third-party plugin relies on)
    with pytest.raises(UserError, match="unknown parameter"):
        Sampled2.validate_params({"samples": 2})
    ctx = FakeContext(strategy=Sampled2(), teacher_names=("a",))
    assert {r["sample"] for r in Sampled2().generate(ctx)["a"]} == {0}


class Sampled2(Strategy):
    name = "own-params-test"

    @dataclass
    class Params:
        k: int = 1


def test_given_names_only_what_the_user_set_through_the_fake_context():
    ctx = FakeContext(strategy=Inheriting(), params={"temperature": 0.0})  # a default value, set explicitly
    assert ctx.params.given == {"temperature"} and ctx.params.k == 3
    assert FakeContext(strategy=Inheriting()).params.given == frozenset()
    again = Inheriting.validate_params(ctx.params)  # validated Params checked again keep what the user set
    assert again.given == {"temperature"} and dict(again) == dict(ctx.params)
