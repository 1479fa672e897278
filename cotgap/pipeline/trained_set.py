"""The student's training set as it was handed to the trainer, stored beside the trained model.

A strategy may train on any subset of the kept rationales (mix draws a 1:4 mix, MIND several
perspectives per question), so what the student learnt from cannot be rebuilt from the run's
``filtered/`` folder in general. ``RunContext.train_student`` therefore writes
``student/examples.jsonl`` after training: one row per example given to the trainer, in order, with
the prompt and completion exactly as tokenised (the student's EOS is appended at tokenisation),
the same example as chat ``messages``, where it came from (``source``, ``model``, ``doc_id``,
``sample``, ``correct``), its static ``weight`` if any, and what tokenisation did to it at
``training.max_length``: ``trained`` (False: the rationale alone did not fit, the example was
dropped) and ``prompt_tokens_cut`` (prompt tokens cut from the left). It is inside the train
stage's output folder, so the stage record's digests cover it.
"""

from __future__ import annotations

from pathlib import Path

from cotgap.backends.training import tokenize
from cotgap.jsonio import read_jsonl, write_jsonl

#: The file, inside the student's folder, and that folder inside the run directory.
EXAMPLES_FILE = "examples.jsonl"
STUDENT_DIR = "student"


def path_in(run_path: Path) -> Path:
    return Path(run_path) / STUDENT_DIR / EXAMPLES_FILE


def write(student_dir: Path, records: list[dict], examples: list[dict], tokenizer, max_length: int) -> Path:
    """Store ``examples`` (built from ``records``, in the same order) with their tokenisation facts."""
    rows, _ = tokenize(tokenizer, examples, max_length)
    prompt_kept = {r["example_index"]: r["labels"].count(-100) for r in rows}
    prompt_format = "chat" if getattr(tokenizer, "chat_template", None) else "plain"  # as training_examples decides
    out = []
    for i, (rec, ex) in enumerate(zip(records, examples)):
        prompt_tokens = len(tokenizer(ex["prompt"], add_special_tokens=False)["input_ids"])
        out.append({
            "prompt": ex["prompt"], "completion": ex["completion"], "messages": ex["messages"],
            "prompt_format": prompt_format,
            "source": ex.get("source"), "model": rec.get("model"), "doc_id": ex["doc_id"],
            "sample": rec.get("sample", 0), "correct": rec.get("correct"), "weight": ex.get("weight"),
            "trained": i in prompt_kept, "prompt_tokens_cut": prompt_tokens - prompt_kept[i] if i in prompt_kept else None,
        })
    path = Path(student_dir) / EXAMPLES_FILE
    write_jsonl(path, out)
    return path


def read(run_path: Path) -> list[dict] | None:
    """The stored training set of the run at ``run_path``, or None (trained before it was stored)."""
    path = path_in(run_path)
    return read_jsonl(path) if path.is_file() else None
