"""Experiment tracking (issue 15, item 4): ``training.report_to: tensorboard`` on a tiny run writes
the Trainer's curves and, at the end, the run's results and verdict, under ``<run>/logs/tensorboard``;
unknown or uninstalled trackers are refused in one line; tracking is not part of the run's key."""

from __future__ import annotations

import pytest
from rich.console import Console

from cotgap import config as config_mod
from cotgap.errors import UserError


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_gets_training_curves_and_the_runs_results(tmp_path, tiny_student):
    from cotgap.pipeline.runner import Runner, run_identity

    overrides = {
        "strategy": "plain",
        "student": str(tiny_student),
        "teachers": ["scripted"],
        "task": "synthetic_navigate",
        "limit": 6,
        "out": str(tmp_path / "run-tb"),
        "generation": {"backend": "hf"},
        "training": {"epochs": 1, "report_to": "tensorboard"},
    }
    cfg = config_mod.load(None, overrides)
    report = Runner(cfg, Console(quiet=True), generation_cache=str(tmp_path / "gc")).prepare().execute()
    tb = tmp_path / "run-tb" / "logs" / "tensorboard"
    curves = _events(tb)
    assert "train/loss" in curves.Tags()["scalars"] and len(curves.Scalars("train/loss")) >= 1
    results = _events(tb / "results")
    got = {tag: results.Scalars(tag)[0].value for tag in results.Tags()["scalars"]}
    assert got["cotgap/distilled_accuracy"] == pytest.approx(report["distilled"]["accuracy"])
    assert got["cotgap/baseline_accuracy"] == pytest.approx(report["baseline"]["accuracy"])
    assert got["cotgap/p_value"] == pytest.approx(report["difference"]["p_value"])
    verdict = results.Tensors("cotgap/verdict/text_summary")[0].tensor_proto.string_val[0].decode()
    assert verdict == report["verdict"]
    # tracking never changes a run's identity (a re-run with another tracker reuses every stage)
    plain = config_mod.load(None, {**overrides, "training": {"epochs": 1}})
    assert run_identity(plain) == run_identity(cfg)


@pytest.mark.parametrize(
    "value, message", [("neptune", "unknown tracker 'neptune'"), (["tensorboard", "nope"], "unknown tracker 'nope'")]
)
def test_bad_trackers_are_refused(value, message):
    with pytest.raises(UserError, match=message):
        config_mod.load(None, {"training": {"report_to": value}})


def test_uninstalled_tracker_is_refused_with_an_install_hint(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(UserError, match=r"wandb is not installed \(pip install wandb\)"):
        config_mod.load(None, {"training": {"report_to": ["wandb"]}})
