"""`cotgap sweep --dry-run`: the plan of a grid (cells and skip reasons, teacher-generation jobs,
student baselines, resources) made offline — no model loaded, nothing downloaded — and the paper's
grid (examples/paper-bbh-qwen.yaml): 240 cells, 60 generation jobs, 60 baselines."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.pipeline import plan_needs
from cotgap.pipeline.grid import load_grid
from cotgap.strategy import Strategy

ROOT = Path(__file__).resolve().parents[1]
SMOL, Q05, Q15, UNSIZED = (
    "smollm2-135m-instruct",
    "qwen2.5-coder-0.5b-instruct",
    "qwen2.5-coder-1.5b-instruct",
    "someorg/unsized-model",
)

SMALL = f"""
name: small
tasks: [synthetic_object_counting]
students: [{SMOL}, {Q05}]
teachers: [{Q05}, {Q15}, {UNSIZED}]
strategies:
  - plain
  - {{name: mind, teachers: [{Q15}], params: {{perspectives: [null, "Be brief."]}}}}
  - {{name: mix, teachers: [[{Q15}, {Q05}]]}}
resources:
  {Q15}: {{num_gpus: 1}}
  default: {{num_cpus: 2}}
limit: 5
"""


@pytest.fixture()
def offline_net(monkeypatch):
    """No network at all (a connection attempt fails the test), and the hub offline."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"the dry run tried to open a network connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def dry_run(path: Path, *extra: str) -> dict:
    res = CliRunner().invoke(cli, ["sweep", "--config", str(path), "--dry-run", "--json", *extra])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_small_grid_plan(tmp_path, offline_net):
    p = tmp_path / "small.yaml"
    p.write_text(SMALL)
    plan = dry_run(p, "--out", str(tmp_path / "sw"))
    assert {"cells", "generation_jobs", "baselines"} <= set(plan)
    cells = {(c["strategy"], c["student"], tuple(c["teachers"])): c for c in plan["cells"] if not c["alone_of"]}
    assert len(cells) == 10  # plain 2 x 3, mind 2 x 1, mix 2 x 1
    # and each mix cell's teachers alone (plain at the mix cell's updates): 2 x 2
    alone = [c for c in plan["cells"] if c["alone_of"]]
    assert len(plan["cells"]) == 14 and all(c["reference"] == c["alone_of"] for c in alone)
    assert [c["status"] for c in alone if c["student"] == Q05 and c["teachers"] == [Q05]] == ["skipped"]
    assert all({"task", "student", "teachers", "strategy", "status", "reason", "resources"} <= set(c) for c in plan["cells"])
    assert plan["counts"]["cells"] == {"run": 9, "skipped": 3, "unknown": 2}
    skipped = cells[("plain", Q05, (Q05,))]
    assert skipped["status"] == "skipped" and skipped["reason"].startswith("protocol: student " + Q05)
    assert "not smaller than teacher" in skipped["reason"] and skipped["generation_jobs"] == []
    assert cells[("mix", Q05, (Q15, Q05))]["status"] == "skipped"
    unknown = cells[("plain", SMOL, (UNSIZED,))]
    assert unknown["status"] == "unknown" and f"could not size {UNSIZED}" in unknown["reason"]
    assert "parameters_b" in unknown["reason"]
    assert plan["models"][UNSIZED]["parameters"] is None and plan["models"][Q15]["source"] == "zoo"
    assert cells[("plain", SMOL, (Q15,))]["status"] == "run" and cells[("plain", SMOL, (Q15,))]["reason"] is None

    # generation jobs: one per teacher x task x sampling, shared across students and strategies
    jobs = {(j["teacher"], j["sampling"]["description"]): j for j in plan["generation_jobs"]}
    assert len(jobs) == len(plan["generation_jobs"]) == 4
    greedy15 = jobs[(Q15, None)]  # plain (2 students), mind's task-prompt perspective (2), mix (1), alone (2)
    assert len(greedy15["cells"]) == 7 and greedy15["sampling"] == {"samples": 1, "temperature": 0.0, "description": None}
    assert len(jobs[(Q15, "Be brief.")]["cells"]) == 2
    assert len(jobs[(Q05, None)]["cells"]) == 3  # plain smol/0.5b, mix smol, alone smol (skipped cells need none)
    assert jobs[(UNSIZED, None)]["status"] == "unknown" and greedy15["status"] == "run"
    assert all(j["exact"] for j in plan["generation_jobs"])
    by_id = {j["id"]: j for j in plan["generation_jobs"]}
    assert {by_id[i]["teacher"] for i in cells[("mix", SMOL, (Q15, Q05))]["generation_jobs"]} == {Q15, Q05}

    # baselines: one per student x task; resources: the model's entry, else default's
    assert {b["student"]: len(b["cells"]) for b in plan["baselines"]} == {SMOL: 7, Q05: 4}  # not skipped ones
    assert all(b["resources"] == {"num_cpus": 2} for b in plan["baselines"])
    assert greedy15["resources"] == {"num_gpus": 1} and jobs[(Q05, None)]["resources"] == {"num_cpus": 2}
    assert all(c["resources"] == {"num_cpus": 2} for c in plan["cells"])


def test_small_grid_tables_and_no_resources(tmp_path, offline_net):
    before = os.environ.get("TRANSFORMERS_OFFLINE")
    p = tmp_path / "small.yaml"
    p.write_text(SMALL.split("resources:")[0] + "limit: 5\n")
    plan = dry_run(p)
    assert all(j["resources"] == {} for j in plan["generation_jobs"] + plan["baselines"])
    res = CliRunner().invoke(cli, ["sweep", "--config", str(p), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.stdout and "could not size" in res.stdout
    assert "plan: 14 cells (9 run, 3 skipped, 2 unknown), 4 teacher-generation jobs, 2 student baselines" in " ".join(
        res.stdout.split()
    )
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ.get("TRANSFORMERS_OFFLINE") == before  # restored


class _OwnGenerate(Strategy):
    name = "custom"

    def generate(self, ctx):  # pragma: no cover - never called by the plan
        return {}


class _Info:
    def __init__(self, impl):
        self.impl, self.name = impl, impl.name

    def validate_params(self, given):
        return self.impl.validate_params(given)


def test_needs_of_other_strategies(tmp_path):
    g = load_grid(_write(tmp_path, f"tasks: [synthetic_navigate]\nstudents: [{SMOL}]\nteachers: [{Q15}]\nstrategies: [micota]\n"))
    from cotgap import plugins

    needs, notes = plan_needs.cell_needs(g.cells[0], [Q15], plugins.strategies()["micota"])
    assert [n.model for n in needs] == [Q15, Q05] and "teacher assistant" in notes[0]  # Q05: the short parent
    needs, notes = plan_needs.cell_needs(g.cells[0], [Q15], _Info(_OwnGenerate()))
    assert [(n.model, n.exact) for n in needs] == [(Q15, False)] and "approximation" in notes[0]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "grid.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "extra, message",
    [
        ("resources: [1]\n", "resources must map model names"),
        (f"resources: {{{Q15}: {{num_gpus: -1}}}}\n", f"resources.{Q15}.num_gpus must be a non-negative number"),
        (f"resources: {{{Q15}: {{gpus: 1}}}}\n", "unknown key(s) gpus (known: num_gpus, num_cpus)"),
        ("resources: {nope/model: {num_gpus: 1}}\n", "resources names 'nope/model', which is not a student or teacher"),
        ("resources: {default: {num_cpus: yes}}\n", "resources.default.num_cpus must be a non-negative number"),
        ("parameters_b: {other/model: 7}\n", "parameters_b names 'other/model'"),
        (f"parameters_b: {{{UNSIZED}: 0}}\n", "must be a positive number of billions"),
        (f"parameters_b: {{{Q15}: 1.5}}\n", "only hub models take a declared size"),
    ],
)
def test_bad_resources_or_sizes(tmp_path, extra, message):
    p = _write(tmp_path, f"tasks: [synthetic_navigate]\nstudents: [{SMOL}]\nteachers: [{Q15}, {UNSIZED}]\n{extra}")
    res = CliRunner().invoke(cli, ["sweep", "--config", str(p), "--dry-run", "--json"])
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_unknown_task(tmp_path):
    p = _write(tmp_path, f"tasks: [no_such_task]\nstudents: [{SMOL}]\nteachers: [{Q15}]\n")
    res = CliRunner().invoke(cli, ["sweep", "--config", str(p), "--dry-run"])
    assert res.exit_code == 2 and "unknown task(s) no_such_task" in res.stderr


def test_paper_grid_plan_offline(offline_net, tmp_path):
    plan = dry_run(ROOT / "examples" / "paper-bbh-qwen.yaml", "--out", str(tmp_path / "paper"))
    assert len(plan["cells"]) == 240 and plan["counts"]["cells"] == {"run": 240, "skipped": 0, "unknown": 0}
    assert len(plan["generation_jobs"]) == 60 and len(plan["baselines"]) == 60
    assert len({c["task"] for c in plan["cells"]}) == 15
    assert len({c["student"] for c in plan["cells"]}) == 4 and len({c["teachers"][0] for c in plan["cells"]}) == 4
    assert all(m["source"] == "declared" for m in plan["models"].values()) and len(plan["models"]) == 8
    assert all(len(j["cells"]) == 4 and j["exact"] and j["status"] == "run" for j in plan["generation_jobs"])
    assert all(len(b["cells"]) == 4 for b in plan["baselines"])
    tp = {
        "Qwen/Qwen2.5-72B-Instruct": 4,
        "Qwen/Qwen2.5-32B-Instruct": 2,
        "Qwen/QwQ-32B-Preview": 2,
        "Qwen/Qwen2.5-14B-Instruct": 1,
    }
    for j in plan["generation_jobs"]:
        assert j["engine"]["tensor_parallel_size"] == tp[j["teacher"]] == j["resources"]["num_gpus"]
    assert all(b["resources"] == {"num_gpus": 1, "num_cpus": 8} for b in plan["baselines"])
    training = load_grid(ROOT / "examples" / "paper-bbh-qwen.yaml").cells[0].config.training
    # the paper's Table 1 through the preset, as LLaMA-Factory applied it (docs/training.md)
    assert (
        training.preset,
        training.method,
        training.lr(),
        training.epochs,
        training.per_device_batch_size,
        training.grad_accum,
        training.warmup_ratio,
        training.scheduler,
        training.bf16,
        training.max_length,
        training.loss_average,
    ) == ("paper-full", "full", 1e-5, 2, 2, 1, 0.0, "cosine", "auto", 8192, "token")
    assert plan["training"] == [{**{k: v for k, v in plan["training"][0].items()}, "preset": "paper-full", "cells": 240}]
    budgets = {j["teacher"]: j["max_new_tokens"] for j in plan["generation_jobs"]}
    assert budgets["Qwen/QwQ-32B-Preview"] == 8192 and budgets["Qwen/Qwen2.5-72B-Instruct"] is None  # the task's 1,024
