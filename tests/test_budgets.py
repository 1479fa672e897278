"""Grid budgets (issue 27): equal updates or equal cost (teacher tokens, seconds) — the grid key's
validation, how cells are held to it (max_steps, or a stop read from the compute ledger while the
real trainers run), what sweep.json and the summary record, and the cross-run report's statement."""

from __future__ import annotations

import io
import types

import pytest
from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.errors import UserError
from cotgap.jsonio import read_json, write_json
from cotgap.pipeline import budgets
from cotgap.pipeline.grid import load_grid

Q05, Q15 = "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"
BASE = f"tasks: [synthetic_navigate]\nstudents: [{Q05}]\nteachers: [{Q15}]\nstrategies: [plain, onpolicy]\n"


def _grid(tmp_path, extra: str):
    p = tmp_path / "grid.yaml"
    p.write_text(BASE + extra)
    return load_grid(p, out=str(tmp_path / "sw"))


@pytest.mark.parametrize(
    "text,message",
    [
        ("budget: {tokens: 5}", "budget must name one of updates, teacher_tokens, seconds"),
        ("budget: {teacher_tokens: 5, seconds: 3}", "budget must name one of"),
        ("budget: {teacher_tokens: -5}", "budget.teacher_tokens must be a positive integer or plain"),
        ("budget: {teacher_tokens: 2.5}", "budget.teacher_tokens must be a positive integer"),
        ("budget: {seconds: 0}", "budget.seconds must be a positive number or plain"),
        ("budget: {updates: 10}", "a fixed count is training.max_steps"),
        ("budget: {seconds: 60}\nequal_updates: true", "contradicts budget: seconds: 60"),
        ("budget: 7", "budget must name one of"),
    ],
)
def test_bad_budgets_are_refused_in_one_line(tmp_path, text, message):
    with pytest.raises(UserError, match=message) as err:
        _grid(tmp_path, text + "\n")
    assert "\n" not in str(err.value)


def test_budget_kinds_set_each_cell_up(tmp_path):
    plain, onp = _grid(tmp_path, "").cells  # the default: equal updates, as before
    assert plain.budget == onp.budget == budgets.DEFAULT and onp.reference == plain.name
    g = _grid(tmp_path, "budget: {teacher_tokens: 5000}\ntraining: {max_steps: 40}\n")
    assert g.grid["budget"] == {"mode": "teacher_tokens", "value": 5000} and not g.grid["equal_updates"]
    # a fixed budget: every cell stopped at it, independent of the others, max_steps only a cap
    assert all(
        c.reference is None and c.config.training.stop_teacher_tokens == 5000 and c.config.training.max_steps == 40
        for c in g.cells
    )
    plain, onp = _grid(tmp_path, "budget: {seconds: plain}\ntraining: {max_steps: 40}\n").cells
    # measured on the reference: known once it has run (max_steps stays a cap, not the budget)
    assert onp.reference == plain.name and onp.config.training.stop_seconds == 0
    assert not any(c.reference for c in _grid(tmp_path, "budget: none\n").cells)


def test_unset_stops_leave_stage_keys_as_they_were():
    from cotgap import TrainConfig

    keys = TrainConfig().stage_inputs()
    assert "stop_teacher_tokens" not in keys and "stop_seconds" not in keys
    assert TrainConfig(stop_teacher_tokens=9).stage_inputs()["stop_teacher_tokens"] == 9


def _reference(folder, *, generated: int, updates: int, seconds: float):
    """A finished reference cell's stage records, as the runner writes them."""
    write_json(folder / "stages" / "generate.json", {"compute": {"teacher_tokens_generated": generated}, "seconds": 9})
    write_json(
        folder / "stages" / "train.json",
        {"result": {"updates": updates}, "seconds": seconds, "strategy_records": {}, "compute": {"tokens_trained": 77}},
    )


def test_apply_measures_the_reference(tmp_path):
    from cotgap.rundir import RunDir

    plain, onp = _grid(tmp_path, "budget: {teacher_tokens: plain}\n").cells
    assert budgets.apply(onp, tmp_path / "sw")["note"].startswith("the reference cell did not train")
    RunDir(tmp_path / "sw" / plain.name)
    _reference(tmp_path / "sw" / plain.name, generated=1234, updates=6, seconds=41.5)
    rec = budgets.apply(onp, tmp_path / "sw")
    assert rec == {"mode": "teacher_tokens", "value": "plain", "reference": plain.name, "limit": 1234}
    assert onp.config.training.stop_teacher_tokens == 1234 and onp.config.training.max_steps == -1
    assert budgets.apply(plain, tmp_path / "sw")["limit"] is None  # the reference runs at its own epochs
    onp.budget = {"mode": "seconds", "value": "plain"}
    assert budgets.apply(onp, tmp_path / "sw")["limit"] == 41.5 and onp.config.training.stop_seconds == 41.5


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from cotgap.testing import build_model

    root = tmp_path_factory.mktemp("budget-pair")
    return (
        build_model(root / "student", hidden=64, layers=2, seed=0),
        build_model(root / "teacher", hidden=96, layers=3, seed=1, init_std=0.2),
    )


def test_teacher_token_stop_holds_the_real_onpolicy_trainer(tmp_path, pair):
    """TRL's DistillationTrainer under a 40-teacher-token budget: the ledger, read live, stops it
    at the first update that reaches the budget, long before its 12 updates."""
    from cotgap_plugins import _distill, _distill_trainers
    from transformers import AutoTokenizer

    from cotgap import TrainConfig
    from cotgap.pipeline.compute import ComputeLedger
    from cotgap.tasks import synthetic

    student, teacher = pair
    task = synthetic.get("synthetic_navigate")
    examples = [{"prompt": ex["input"] + "\nA:", "completion": task.rationale(ex)} for ex in task.generate(8, seed=3)]
    counts, ledger, seen = _distill_trainers.Counts(), ComputeLedger(), []
    cfg = TrainConfig(method="full", learning_rate=1e-3, max_steps=12, warmup_ratio=0.0, stop_teacher_tokens=40)
    ledger.watch("train", counts.state)
    stop = budgets.stop_callback(cfg, lambda: budgets.teacher_tokens(ledger.running("train")), seen.append)
    params = {"divergence": "reverse_kl", "beta": None, "sample_temperature": 1.0, "max_new_tokens": 8}
    fn = _distill.training_function("onpolicy", params, str(teacher), "teacher", counts, log=lambda *a: None)
    result = fn(str(student), examples, tmp_path / "out", cfg, AutoTokenizer.from_pretrained(student), callbacks=[stop])

    (rec,) = seen
    scored = counts.state()["teacher_tokens_scored"]
    assert rec["stopped_by"] == "teacher_tokens" and rec["stopped_at_update"] == result.updates < 12
    assert rec["spent"]["teacher_tokens"] == scored >= 40
    assert scored - 8 * result.updates < 40  # one update (at most 8 tokens per sample here) short of it was not enough


class CostRunner:
    """A runner that records each cell's training limits; the plain reference 'generates' 1,000
    teacher tokens and trains 5 updates, the other cell spends 1,020 teacher tokens in training."""

    seen: dict = {}

    def __init__(self, cfg, console, log=None, *, generation_cache=None, ablation_peers=None, force=False):
        self.cfg = cfg

    def prepare(self):
        from cotgap.rundir import RunDir

        t = self.cfg.training
        CostRunner.seen[self.cfg.strategy] = (t.max_steps, t.stop_teacher_tokens)
        self.run = RunDir(self.cfg.out)
        ref = self.cfg.strategy == "plain"
        spent = {
            "limits": {"teacher_tokens": t.stop_teacher_tokens, "seconds": 0.0},
            "stopped_by": "teacher_tokens",
            "spent": {"teacher_tokens": 1020, "seconds": 3.0},
            "stopped_at_update": 4,
        }
        write_json(
            self.run / "stages" / "generate.json", {"compute": {"teacher_tokens_generated": 1000 if ref else 0}, "seconds": 2}
        )
        write_json(
            self.run / "stages" / "train.json",
            {
                "result": {"updates": 5 if ref else 4},
                "seconds": 3.0,
                "strategy_records": {} if ref else {"training.budget": spent},
                "compute": {"teacher_tokens_scored": 0 if ref else 1020},
            },
        )
        self.run.computed, self.ctx, self.book = (
            ["train"],
            types.SimpleNamespace(),
            types.SimpleNamespace(generation_stats={"computed": 0, "reused": 0}),
        )
        return self

    def execute(self):
        return {"verdict": "no significant change"}


def test_sweep_holds_cells_to_the_reference_cost_and_shows_it(tmp_path, monkeypatch):
    from rich.console import Console

    from cotgap.pipeline import sweep

    monkeypatch.setattr("cotgap.pipeline.runner.Runner", CostRunner)
    p = tmp_path / "grid.yaml"
    p.write_text(BASE + "budget: {teacher_tokens: plain}\n")
    res = CliRunner().invoke(cli, ["sweep", "--config", str(p), "--out", str(tmp_path / "sw"), "--no-report"])
    assert res.exit_code == 0, res.output
    s = read_json(tmp_path / "sw" / "sweep.json")
    assert s["grid"]["budget"] == {"mode": "teacher_tokens", "value": "plain"}
    plain, onp = s["cells"]
    assert CostRunner.seen == {"plain": (-1, 0), "onpolicy": (-1, 1000)}  # the reference's 1,000 tokens, own epochs
    assert onp["budget"]["limit"] == 1000 and onp["budget"]["spent"]["stopped_by"] == "teacher_tokens"
    assert onp["equal_updates"] is None and onp["compute"]["teacher_tokens_scored"] == 1020
    assert plain["compute"]["teacher_tokens_generated"] == 1000 and plain["compute"]["train_seconds"] == 3.0
    out = io.StringIO()
    sweep.render_summary(s, Console(file=out, width=250))
    text = out.getvalue()
    assert "≤ 1,000 tok (spent 1,020)" in text and "1,020 / 3" in text and "1,000 / 3" in text
    assert "budget: teacher_tokens: plain — each cell held to its reference plain cell's teacher tokens" in text


def test_report_states_the_budget_of_each_comparison():
    from cotgap.report import budget_note

    cfg = {"stop_teacher_tokens": 1000, "max_steps": -1, "epochs": 2}
    compute = {
        "stages": {"train": {"teacher_tokens_scored": 1020, "wall_seconds": 30.0}},
        "total": {"teacher_tokens_generated": 900, "teacher_tokens_scored": 1020},
    }
    onp = budget_note.run_budget(cfg, {"training.budget": {"stopped_by": "teacher_tokens"}}, compute, 4)
    assert onp["kind"] == "teacher_tokens" and onp["teacher_tokens_training"] == 1020 and onp["teacher_tokens_total"] == 1920
    plain = budget_note.run_budget({"max_steps": -1, "epochs": 2}, {}, {"stages": {}, "total": {}}, 5)
    runs = [
        {"task": "t", "setting": s, "teacher": "T", "student": "S", "dir": f"/sw/{s}", "budget": b}
        for s, b in (("onpolicy", onp), ("plain", plain))
    ]
    sweeps = [
        {
            "grid": {"budget": {"mode": "teacher_tokens", "value": "plain"}},
            "cells": [{"dir": f"/sw/{s}"} for s in ("onpolicy", "plain")],
        }
    ]
    note = budget_note.statements(runs, sweeps)["t"]
    assert note.startswith("equal teacher tokens spent by the training [grid budget: teacher_tokens: plain]")
    assert "onpolicy (T → S): limit 1,000 teacher tokens, 4 updates, 1,020 teacher tokens in training" in note
    assert "stopped by its teacher tokens budget" in note and "plain (T → S): 5 updates, 0 teacher tokens" in note
    old = budget_note.statements(runs, [{"grid": {"equal_updates": True}, "cells": [{"dir": "/sw/plain"}]}])["t"]
    assert old.startswith("equal optimizer updates [grid budget: updates: plain]")  # a sweep.json from before budgets


def test_paper_distill_gpu_grid_plans_five_strategies_at_equal_updates(tmp_path):
    """examples/paper-distill-gpu.yaml: its dry run (no model, no download) plans 8 cells per task,
    every one to run, each non-plain cell at a plain reference's updates (onpolicy at plain on its
    own 3B teacher, the one that shares the student's vocabulary)."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "paper-distill-gpu.yaml"
    g = load_grid(path, out=str(tmp_path / "pdg"))
    assert g.grid["budget"] == budgets.DEFAULT and len(g.grid["tasks"]) == 15
    assert {c.strategy for c in g.cells} == {"plain", "mix", "micota", "mind", "onpolicy"}
    by = {(c.task, c.setting, tuple(c.teachers), c.alone_of is not None): c for c in g.cells}
    onp = by[("word_sorting", "onpolicy", ("Qwen/Qwen2.5-3B-Instruct",), False)]
    assert onp.reference == by[("word_sorting", "plain", ("Qwen/Qwen2.5-3B-Instruct",), False)].name
    res = CliRunner().invoke(cli, ["sweep", "--config", str(path), "--dry-run", "--json", "--out", str(tmp_path / "pdg")])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    assert len(plan["cells"]) == 120 and {c["status"] for c in plan["cells"]} == {"run"}


def test_seconds_stop_holds_the_core_sft_training(pair, cotgap_runner):
    """plain through the core with ``training.stop_seconds``: the core's SFT trainer gets the stop,
    the training ends after its first update (every update takes longer than the limit), the
    train stage records what was spent and the run's report states its budget."""
    student, _ = pair
    runner = cotgap_runner(
        student=student,
        limit=6,
        training={"epochs": 3, "learning_rate": 1e-3, "stop_seconds": 0.001},
        generation={"max_new_tokens": 8},
    )
    report = runner.prepare().execute()
    rec = report["strategy_records"]["training.budget"]
    assert rec["stopped_by"] == "seconds" and rec["stopped_at_update"] == 1 == report["training"]["updates"]
    b = report["training"]["budget"]
    assert b["kind"] == "seconds" and b["limit"] == 0.001 and b["stopped_by"] == "seconds"
    assert b["teacher_tokens_training"] == 0 < b["teacher_tokens_total"]  # the scripted teacher's rationales
