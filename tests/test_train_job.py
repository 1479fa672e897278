"""The training path as one job (``cotgap.backends.train_job.TrainJob``): built once, its examples
tokenised once, serialisable to the launcher's workers, its facts reused by the stored training set."""

from __future__ import annotations

import json

import pytest

from cotgap import Strategy
from cotgap.backends import sft_tokens
from cotgap.backends.train_job import TrainJob
from cotgap.backends.training import TrainConfig, tokenize
from cotgap.errors import UserError
from cotgap.jsonio import read_json, read_jsonl


def _examples(n: int) -> list[dict]:
    return [
        {"prompt": f"Q: {i} plus {i}? A:", "completion": f" {i} plus {i} is {2 * i}." * (1 + 3 * (i % 2)), "source": f"s{i % 2}"}
        for i in range(n)
    ]


def test_a_job_survives_the_trip_to_the_workers(tmp_path, tiny_student):
    cfg = TrainConfig(max_length=24, seed=7)
    examples = [*_examples(4), {**_examples(1)[0], "weight": 0.5}]
    job = TrainJob.build(str(tiny_student), examples, tmp_path / "student", cfg)
    back = TrainJob.from_json(json.loads(json.dumps(job.to_json())))
    assert (back.base_path, back.out_dir, back.cfg, back.examples) == (job.base_path, job.out_dir, cfg, examples)
    assert back.tokens == job.tokens and back.work == tmp_path / "student.work"
    assert job.rows[-1]["weight"] == 0.5 and back.rows[-1]["weight"] == 0.5
    # the public tokenize gives the job's rows and truncation counts
    from transformers import AutoTokenizer

    rows, counts = tokenize(AutoTokenizer.from_pretrained(str(tiny_student)), examples, cfg)
    assert (rows, counts) == (job.rows, job.tokens.truncation)
    assert sum(counts["response_truncated"].values()) == sum(1 for c in job.tokens.cuts if c and c[1]) > 0


def test_a_job_with_nothing_to_train_is_refused_when_built(tmp_path, tiny_student):
    cfg = TrainConfig(max_length=8, overlength="drop")
    with pytest.raises(UserError, match="no training example fits training.max_length = 8 tokens"):
        TrainJob.build(str(tiny_student), _examples(2), tmp_path / "student", cfg)


class Counted(Strategy):
    name = "counted"


def test_a_student_training_tokenises_each_example_once(cotgap_run, monkeypatch, tmp_path):
    """``student/examples.jsonl`` takes its cutoff facts from the job: one ``sft_tokens.encode``
    per example handed to the trainer (the stored set used to tokenise them a second time)."""
    calls = []
    real = sft_tokens.encode

    def counting(tokenizer, messages, **kw):
        calls.append(messages[-1]["content"])
        return real(tokenizer, messages, **kw)

    monkeypatch.setattr(sft_tokens, "encode", counting)
    cotgap_run(Counted(), limit=4)
    run = tmp_path / "run0" / "run"
    stored = read_jsonl(run / "student" / "examples.jsonl")
    trained = read_json(run / "stages" / "train.json")["result"]["examples"]
    assert calls == [r["completion"] for r in stored] and len(stored) == trained > 0
    assert all(r["trained"] and r["prompt_tokens_cut"] == 0 for r in stored)
