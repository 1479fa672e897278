"""One tiny finished run shared by tests/test_export.py and tests/test_lm_eval_files.py (built once
per test process): plain, a chat student, two teachers (the scripted one, plain prompts; the tiny
chat teacher, 8 new tokens), ``train_shots: 1`` (exemplar turns) and ``training.max_length`` small
enough that the trainer cuts prompts and drops examples. The training job's one tokenisation
(``train_job.encode``) is recorded, so tests compare an export with what the train stage really
tokenised."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

LIMIT = 4
MAX_LENGTH = 200  # the tiny tokenizer's prompts are ~440 tokens, rationales ~160-230


@dataclass
class TinyRun:
    path: Path
    cache: Path  # the generation cache (and shared baselines)
    config: dict  # the overrides it was run with
    report: dict
    trained: list  # [(examples the training job tokenised, the rows it gave the trainer)]


_RUN: TinyRun | None = None


def overrides(student, teacher, out: Path) -> dict:
    return {
        "strategy": "plain",
        "student": str(student),
        "teachers": ["scripted", str(teacher)],
        "task": "synthetic_navigate",
        "limit": LIMIT,
        "out": str(out),
        "train_shots": 1,
        "training": {"epochs": 1, "max_length": MAX_LENGTH},
        "generation": {"backend": "hf", "max_new_tokens": 8},
    }


def tiny_run(tmp_path_factory, student, teacher) -> TinyRun:
    global _RUN
    if _RUN is None:
        from rich.console import Console

        from cotgap import config
        from cotgap.backends import train_job
        from cotgap.pipeline.runner import Runner

        tmp = tmp_path_factory.mktemp("tiny-run")
        trained = []
        real = train_job.encode

        def spy(tokenizer, examples, cfg):
            tokens = real(tokenizer, examples, cfg)
            trained.append(([dict(e) for e in examples], tokens.rows))
            return tokens

        cfg_overrides = overrides(student, teacher, tmp / "run")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(train_job, "encode", spy)  # TrainJob.build's call, the training's only one
            cfg = config.load(None, cfg_overrides)
            report = Runner(cfg, Console(quiet=True), generation_cache=str(tmp / "gen")).prepare().execute()
        _RUN = TinyRun(path=tmp / "run", cache=tmp / "gen", config=cfg_overrides, report=report, trained=trained)
    return _RUN
