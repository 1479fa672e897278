"""The exported records of a run: one fixed set of columns per kind, so every format gets the same rows.

Every row starts with ``messages`` (chat turns, the assistant's rationale last) and carries
``config_hash`` (the run's identity key), ``task``, ``source``, ``model``, ``doc_id``, ``sample``
and ``correct``; BBH rows also carry the benchmark's ``canary``.

- generations / kept: ``prompt`` (as the teacher received it), ``response`` (its rationale, as
  generated), ``input``, ``target``, ``answer`` (what the task's filter extracted),
  ``messages_check`` (how the turns were confirmed, ``turns``) or ``messages_note`` (why a row has
  none), and ``extra`` (any other fields of the record, as JSON text: e.g. the prompt variant a strategy wrote it under).
- training: ``messages`` exactly as the student was trained on them (tokenised turn by turn with
  its chat template, ``cotgap.backends.sft_tokens``), ``prompt`` / ``completion`` as texts,
  ``prompt_format`` (chat | plain), ``weight`` (a static per-example weight, or null),
  ``prompt_tokens_cut`` and ``response_tokens_cut`` (tokens cut at ``training.max_length``, as
  LLaMA-Factory's ``cutoff_len`` cuts). Examples left out (``overlength: drop``) are not
  exported: the student never saw them.
"""

from __future__ import annotations

import json

from cotgap.errors import UserError
from cotgap.export import benchmark, turns
from cotgap.export.run_source import RunInfo
from cotgap.jsonio import read_json, read_jsonl
from cotgap.pipeline import trained_set

#: Generated-record fields that have a column of their own (the rest go to ``extra``).
GENERATED_FIELDS = ("doc_id", "input", "target", "prompt", "response", "answer", "correct", "sample", "source", "model")


def build(run: RunInfo, what: str, bench: benchmark.Benchmark) -> list[dict]:
    """The rows of ``what`` (generations | kept | training) for the run."""
    rows = _training(run) if what == "training" else _generated(run, "generations" if what == "generations" else "filtered")
    for r in rows:
        r.update(config_hash=run.key, task=run.config["task"])
        if bench.canary:
            r["canary"] = bench.canary
    return rows


def _generated(run: RunInfo, folder: str) -> list[dict]:
    """Rows of ``generations/`` or ``filtered/``, source by source in the run's order."""
    stage = "generate" if folder == "generations" else "filter"
    index = (run.stages.get(stage) or {}).get("sources") or read_json(run.path / "generations" / "index.json")
    teacher_turns = turns.TeacherTurns(run)
    rows = []
    for source, fname in index.items():
        for rec in read_jsonl(run.path / folder / fname):
            prompt_turns, how = teacher_turns.of(rec)
            response = str(rec.get("response", ""))
            rows.append(
                {
                    "messages": [*prompt_turns, {"role": "assistant", "content": response}] if prompt_turns else None,
                    "source": source,
                    "model": rec.get("model", source),
                    "doc_id": int(rec["doc_id"]),
                    "sample": int(rec.get("sample", 0)),
                    "correct": bool(rec.get("correct")),
                    "prompt": str(rec.get("prompt", "")),
                    "response": response,
                    "input": str(rec.get("input", "")),
                    "target": str(rec.get("target", "")),
                    "answer": str(rec.get("answer", "")),
                    "messages_check": how if prompt_turns else None,
                    "messages_note": None if prompt_turns else how,
                    "extra": json.dumps({k: v for k, v in rec.items() if k not in GENERATED_FIELDS}, sort_keys=True, default=str),
                }
            )
    return rows


def _training(run: RunInfo) -> list[dict]:
    """Rows of the stored training set (``trained_set``), the examples the trainer dropped left out."""
    stored = trained_set.read(run.path)
    if stored is None:
        raise UserError(
            f"run {run.path} was trained before cotgap stored its training examples "
            f"({trained_set.STUDENT_DIR}/{trained_set.EXAMPLES_FILE}); delete its stages/train.json and "
            "re-run the same command to retrain, or export --what kept"
        )
    return [
        {
            "messages": ex["messages"],
            "source": ex.get("source"),
            "model": ex.get("model"),
            "doc_id": int(ex["doc_id"]),
            "sample": int(ex.get("sample") or 0),
            "correct": ex.get("correct"),
            "prompt": ex["prompt"],
            "completion": ex["completion"],
            "prompt_format": ex.get("prompt_format"),
            "weight": None if ex.get("weight") is None else float(ex["weight"]),
            "prompt_tokens_cut": int(ex.get("prompt_tokens_cut") or 0),
            "response_tokens_cut": int(ex.get("response_tokens_cut") or 0),
        }
        for ex in stored
        if ex.get("trained", True)
    ]
