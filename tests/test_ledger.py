"""The request ledger: a generation interrupted mid-stage resumes with only the unanswered
requests, for the in-process backends (transformers, vLLM); the API backend is tested against a
real server in tests/test_api_teacher.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cotgap.backends import runtime
from cotgap.backends.ledger import RequestLedger, request_key

SCRIPT = r"""
import json, sys
from pathlib import Path
from rich.console import Console
from cotgap import config
from cotgap.backends import ledger
from cotgap.pipeline.runner import Runner

student, teacher, backend, out = sys.argv[1:5]
logs = []

def run_context(cache):
    cfg = config.load(None, {"student": student, "teachers": [teacher], "task": "synthetic_object_counting",
                             "limit": 8, "out": str(Path(out) / cache / "run"),
                             "generation": {"backend": backend, "ledger_chunk": 2,
                                            "engines": {"default": {"dtype": "float32", "max_model_len": 4096}}}})
    runner = Runner(cfg, Console(file=open("/dev/null", "w")), log=logs.append).prepare()
    runner.run.unlock()  # only the context is used here; the next prepare() on this directory takes the lock
    runner.ctx._cache_dir = Path(out) / cache / "gencache"  # the generation cache is the core's (private)
    return runner.ctx

# 1. interrupted after 3 answers (as a kill between two answers would leave it)
real_add = ledger.RequestLedger.add_partial
def add_then_stop(self, attr, req, res):
    real_add(self, attr, req, res)
    if len(self) == 3:
        raise KeyboardInterrupt
ledger.RequestLedger.add_partial = add_then_stop
ctx = run_context("a")
try:
    ctx.generate_rationales(ctx.teachers[0])
except KeyboardInterrupt:
    pass
cache = ctx._cache_dir
finished = list((cache / "generations").glob("*.jsonl"))
kept = sum(1 for f in (cache / "requests").glob("*.jsonl") for _ in f.read_text().splitlines())
ledger.RequestLedger.add_partial = real_add

# 2. the re-run sends only the rest
resumed = run_context("a").generate_rationales(ctx.teachers[0])
sent_line = [l for l in logs if "requests sent" in l][-1]
# 3. an uninterrupted run elsewhere
fresh = run_context("b").generate_rationales(ctx.teachers[0])
strip = lambda recs: [{k: r[k] for k in ("doc_id", "response", "correct")} for r in recs]
print(json.dumps({"finished_after_interrupt": len(finished), "kept": kept, "sent_line": sent_line,
                  "equal": strip(resumed) == strip(fresh), "n": len(fresh),
                  "ledger_left": len(list((cache / "requests").glob("*.jsonl")))}))
"""


@pytest.mark.parametrize("backend", ["hf", "vllm"])
def test_interrupted_generation_resumes_with_only_the_missing_requests(backend, tmp_path):
    if backend == "vllm" and not runtime.vllm_available():
        pytest.skip("vLLM is not installed")
    from cotgap.testing import build_model

    student = build_model(tmp_path / "student", hidden=128, layers=1, seed=0, init_std=0.2)
    teacher = build_model(tmp_path / "teacher", hidden=128, layers=2, seed=1, init_std=0.2)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(student), str(teacher), backend, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["finished_after_interrupt"] == 0  # a partial ledger is never a finished generation
    # vLLM persists per chunk of 2 (ledger_chunk), transformers per request: 3 or 4 answers kept
    assert 3 <= got["kept"] < got["n"] == 8, got
    assert got["sent_line"].endswith(f"{8 - got['kept']} requests sent, {got['kept']} answered from the ledger"), got
    assert got["equal"] and got["ledger_left"] == 0, got


def test_torn_last_line_is_ignored_and_answers_survive_a_reopen(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = RequestLedger(path)
    ledger.add_partial("generate_until", ("prompt one", {"until": ["\n"]}), "answer one")
    ledger.add_partial("loglikelihood", ("x", "y"), (0.0, True))  # not a generation: ignored
    ledger.close()
    with open(path, "a") as f:
        f.write('{"key": "abc", "respo')  # a kill mid-write
    again = RequestLedger(path)
    assert len(again) == 1
    assert again.answers[request_key("prompt one", {"until": ["\n"]})]["response"] == "answer one"
    assert request_key("prompt one", {"until": ["\n"]}) != request_key("prompt one", {"until": ["Q:"]})
