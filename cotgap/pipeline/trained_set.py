"""The student's training set as it was handed to the trainer, stored beside the trained model.

A strategy may train on any subset of the kept rationales (a share of one teacher's, several
rationales per question), so what the student learnt from cannot be rebuilt from the run's
``filtered/`` folder in general. ``RunContext.train_student`` therefore writes
``student/examples.jsonl`` after training: one row per example given to the trainer, in order, with
the example as the chat ``messages`` the trainer tokenised (``cotgap.backends.sft_tokens``: the
template's own end of turn is trained) and as ``prompt`` / ``completion`` texts, where it came from
(``source``, ``model``, ``doc_id``, ``sample``, ``correct``), its static ``weight`` if any, and what
tokenisation did to it at ``training.max_length``: ``trained`` (False: left out, under
``overlength: drop``), ``prompt_tokens_cut`` and ``response_tokens_cut`` — taken from the
training job's own tokenisation (``cotgap.backends.train_job``), not tokenised again. It is inside the train
stage's output folder, so the stage record's digests cover it.
"""

from __future__ import annotations

from pathlib import Path

from cotgap.jsonio import read_jsonl, write_jsonl

#: The file, inside the student's folder, and that folder inside the run directory.
EXAMPLES_FILE = "examples.jsonl"
STUDENT_DIR = "student"


def path_in(run_path: Path) -> Path:
    return Path(run_path) / STUDENT_DIR / EXAMPLES_FILE


def write(student_dir: Path, records: list[dict], examples: list[dict], cuts: list, tokenizer) -> Path:
    """Store ``examples`` (built from ``records``, in the same order) with their tokenisation facts:
    ``cuts`` as the training's one tokenisation found them
    (:attr:`cotgap.backends.train_job.Tokenised.cuts`: per example [prompt, response] tokens cut,
    None where left out); ``tokenizer`` says the prompt format."""
    prompt_format = "chat" if getattr(tokenizer, "chat_template", None) else "plain"  # as training_examples decides
    out = []
    for rec, ex, cut in zip(records, examples, cuts):
        out.append(
            {
                "prompt": ex["prompt"],
                "completion": ex["completion"],
                "messages": ex["messages"],
                "prompt_format": prompt_format,
                "source": ex.get("source"),
                "model": rec.get("model"),
                "doc_id": ex["doc_id"],
                "sample": rec.get("sample", 0),
                "correct": rec.get("correct"),
                "weight": ex.get("weight"),
                "trained": cut is not None,
                "prompt_tokens_cut": cut[0] if cut is not None else None,
                "response_tokens_cut": cut[1] if cut is not None else None,
            }
        )
    path = Path(student_dir) / EXAMPLES_FILE
    write_jsonl(path, out)
    return path


def read(run_path: Path) -> list[dict] | None:
    """The stored training set of the run at ``run_path``, or None (trained before it was stored)."""
    path = path_in(run_path)
    return read_jsonl(path) if path.is_file() else None
