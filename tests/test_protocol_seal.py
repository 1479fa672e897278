"""The protocol sealed at the plugin boundary: each bypass tried from a plugin is refused."""

from __future__ import annotations

import types

import pytest

from cotgap import ProtocolError, plugins
from cotgap.hookspecs import hookimpl


def _run(tmp_path, monkeypatch, student, **hooks):
    from rich.console import Console

    from cotgap import config as config_mod
    from cotgap.pipeline.runner import Runner

    mod = types.ModuleType("cotgap_test_bypass")

    @hookimpl
    def register_strategies(register):
        register("bypass")

    mod.register_strategies = register_strategies
    defaults = {
        "generate": lambda strategy, ctx: {"s": ctx.generate_rationales("scripted", source="s")},
        "filter": lambda strategy, ctx, source, records: [r for r in records if r["correct"]],
        "train": lambda strategy, ctx, data: ctx.train_student([r for v in data.values() for r in v]),
    }
    for name, fn in {**defaults, **hooks}.items():
        setattr(mod, name, hookimpl(fn))
    plugins.pm.register(mod, name="bypass-test")
    try:
        cfg = config_mod.load(
            None,
            {
                "strategy": "bypass",
                "student": str(student),
                "teachers": ["scripted"],
                "task": "synthetic_navigate",
                "limit": 4,
                "out": str(tmp_path / "r"),
                "training": {"epochs": 1},
                "generation": {"backend": "hf"},
            },
        )
        monkeypatch.setenv("COTGAP_GENERATION_CACHE", str(tmp_path / "gc"))
        return Runner(cfg, Console(quiet=True)).prepare().execute()
    finally:
        plugins.pm.unregister(name="bypass-test")


def test_a_fine_tuned_teacher_cannot_be_evaluated_as_the_student(tmp_path, monkeypatch, tiny_student, tiny_teacher):
    def train(strategy, ctx, data):
        teacher = ctx.resolve_model(str(tiny_teacher))
        return ctx.train_model(teacher, [r for v in data.values() for r in v], tmp_path / "impostor")

    with pytest.raises(ProtocolError, match="did not write; only the student fine-tuned"):
        _run(tmp_path, monkeypatch, tiny_student, train=train)
    assert not (tmp_path / "r" / "distilled").exists()


def test_train_student_fine_tunes_the_student_only(tmp_path, monkeypatch, tiny_student, tiny_teacher):
    def train(strategy, ctx, data):
        return ctx.train_student([r for v in data.values() for r in v], base=ctx.resolve_model(str(tiny_teacher)))

    with pytest.raises(ProtocolError, match="fine-tunes the student only"):
        _run(tmp_path, monkeypatch, tiny_student, train=train)


def test_the_student_cannot_write_its_own_training_data(tmp_path, monkeypatch, tiny_student):
    def generate(strategy, ctx):
        return {"self": ctx.generate_rationales(ctx.student, source="self")}

    with pytest.raises(ProtocolError, match="is not smaller than teacher"):
        _run(tmp_path, monkeypatch, tiny_student, generate=generate)


def test_filter_sees_one_source_and_the_parameters_only(tmp_path, monkeypatch, tiny_student):
    seen = {}

    def filter(strategy, ctx, source, records):
        seen.update(
            attrs={a for a in ("run", "cache_dir", "generate_rationales", "teachers", "config", "records") if hasattr(ctx, a)},
            source=ctx.source,
            params=ctx.params,
        )
        return [r for r in records if r["correct"]]

    _run(tmp_path, monkeypatch, tiny_student, filter=filter)
    assert seen == {"attrs": set(), "source": "s", "params": {}}
