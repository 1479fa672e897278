"""The protocol sealed at the plugin boundary: each bypass tried from a plugin is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from cotgap import ProtocolError, Strategy


@pytest.fixture()
def run_bypass(cotgap_register, cotgap_runner, shared_generations):
    """``run_bypass(**methods)``: a strategy ``bypass`` (one source ``s``: the scripted teacher's
    rationales; its correct ones; SFT on them) with ``methods`` (functions of ``self, ...``) in place
    of its own; returns the core's prepared runner for it (``.execute()`` runs it end to end)."""

    def generate(self, ctx):
        return {"s": ctx.generate_rationales("scripted", source="s")}

    def run(**methods):
        cotgap_register(type("Bypass", (Strategy,), {"name": "bypass", "generate": generate, **methods})())
        return cotgap_runner(strategy="bypass", generation_cache=shared_generations).prepare()

    return run


def test_a_fine_tuned_teacher_cannot_be_evaluated_as_the_student(tmp_path, run_bypass, tiny_teacher):
    def train(self, ctx, data):
        teacher = ctx.resolve_model(str(tiny_teacher))
        return ctx.train_model(teacher, [r for v in data.values() for r in v], tmp_path / "impostor")

    runner = run_bypass(train=train)
    with pytest.raises(ProtocolError, match="did not write; only the student fine-tuned"):
        runner.execute()
    assert not (Path(runner.cfg.out) / "distilled").exists()


def test_train_student_fine_tunes_the_student_only(run_bypass, tiny_teacher):
    def train(self, ctx, data):
        return ctx.train_student([r for v in data.values() for r in v], base=ctx.resolve_model(str(tiny_teacher)))

    with pytest.raises(ProtocolError, match="fine-tunes the student only"):
        run_bypass(train=train).execute()


def test_the_student_cannot_write_its_own_training_data(run_bypass):
    def generate(self, ctx):
        return {"self": ctx.generate_rationales(ctx.student, source="self")}

    with pytest.raises(ProtocolError, match="is not smaller than teacher"):
        run_bypass(generate=generate).execute()


def test_filter_sees_one_source_and_the_parameters_only(run_bypass):
    seen = {}

    def filter(self, ctx, source, records):
        seen.update(
            attrs={a for a in ("run", "cache_dir", "generate_rationales", "teachers", "config", "records") if hasattr(ctx, a)},
            source=ctx.source,
            params=ctx.params,
        )
        return [r for r in records if r["correct"]]

    run_bypass(filter=filter).execute()
    assert seen == {"attrs": set(), "source": "s", "params": {"samples": 1, "temperature": 0.0}}  # bypass's own
