"""Experiment tracking (issue 15, item 4): ``training.report_to: tensorboard`` on a tiny run writes
the Trainer's curves and, at the end, the run's results and verdict, under ``<run>/logs/tensorboard``;
unknown or uninstalled trackers are refused in one line; tracking is not part of the run's key."""

from __future__ import annotations

import pytest

from cotgap import config as config_mod
from cotgap.errors import UserError


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_gets_training_curves_and_the_runs_results(cotgap_runner):
    from pathlib import Path

    from cotgap.pipeline.runner import run_identity

    runner = cotgap_runner(limit=6, training={"report_to": "tensorboard"})
    cfg = runner.cfg
    report = runner.prepare().execute()
    tb = Path(cfg.out) / "logs" / "tensorboard"
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
    plain = cotgap_runner(limit=6, out=cfg.out).cfg
    assert plain.training.report_to != cfg.training.report_to and run_identity(plain) == run_identity(cfg)


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
