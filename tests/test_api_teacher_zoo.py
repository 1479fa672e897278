"""A real model as an API teacher: Qwen2.5-Coder-0.5B-Instruct (zoo) served by ``vllm serve`` on
127.0.0.1 gives the same rationales, and the same kept rationales, as the in-process vLLM engine
on the same prompts with greedy sampling (8 train questions of synthetic_object_counting)."""

from __future__ import annotations

import pytest

from cotgap.backends import runtime
from cotgap.jsonio import read_jsonl
from tests.test_api_teacher import ENGINE, ENV, _engine_config, cotgap_run

pytestmark = [pytest.mark.zoo, pytest.mark.skipif(not runtime.vllm_available(), reason="vLLM is not installed")]

TEACHER = "qwen2.5-coder-0.5b-instruct"


def _sources(run) -> tuple[list[dict], list[dict]]:
    def pick(folder):
        (f,) = sorted((run / folder).glob("00-*.jsonl"))
        return [{k: r[k] for k in ("doc_id", "response", "answer", "correct")} for r in read_jsonl(f)]

    return pick("generations"), pick("filtered")


def test_api_teacher_keeps_the_same_rationales_as_in_process(tmp_path):
    from cotgap.testing import build_model
    from tests.test_zoo_strategies import need

    need(TEACHER)
    from cotgap.backends.local_server import LocalServer
    from cotgap.models import zoo

    student = build_model(tmp_path / "student", hidden=128, layers=1, seed=0, init_std=0.2)
    path = str(zoo.ensure(TEACHER))
    cfg = _engine_config(tmp_path)
    local = cotgap_run(tmp_path / "local", student, TEACHER, "--config", str(cfg), backend="vllm")
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-2000:]
    server = LocalServer(path, ENGINE, seed=1234, log_path=tmp_path / "serve.log", env=ENV).start()
    try:
        api = cotgap_run(tmp_path / "api", student, f"openai:{path}@{server.base_url};parameters_b=0.63;concurrency=4",
                         "--config", str(cfg), backend="vllm")
    finally:
        server.stop()
    assert api.returncode == 0, api.stdout[-2000:] + api.stderr[-2000:]
    (gen_local, kept_local), (gen_api, kept_api) = _sources(tmp_path / "local" / "run"), _sources(tmp_path / "api" / "run")
    assert len(gen_api) == len(gen_local) == 8
    assert gen_api == gen_local
    assert kept_api == kept_local and len(kept_api) > 0  # the 0.5B model solves some of them
