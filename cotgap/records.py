"""The shape of a generation record: what ``ctx.generate_rationales`` returns, a strategy's
``generate`` hands back per source, ``filter`` receives and returns, and ``train`` trains on.

``Record`` is a ``TypedDict`` (records stay plain dicts: they are read from and written to JSON
Lines as they are). Every record carries ``RECORD_FIELDS``; the rest are set where known.
"""

from __future__ import annotations

from typing import TypedDict

#: Fields every generated record carries (the filter and the training read them).
RECORD_FIELDS = ("doc_id", "response", "correct")


class Record(TypedDict, total=False):
    """One rationale of one teacher for one train question."""

    doc_id: int  # the train question (index into the task's train split)
    response: str  # the rationale and answer as the teacher wrote them (a reasoning model: its reply)
    correct: bool  # scored by the task's own filter, as the evaluation would score it
    reasoning: str  # a reasoning model's separate reasoning (API reasoning_content), when it has one
    answer: str  # what the task's filter extracted
    target: str  # the gold answer
    sample: int  # which of the ``samples`` draws
    source: str  # the source (a teacher's spec, or a strategy's name for what it generated)
    model: str  # the model that wrote it
    tokens: int  # generated tokens, where the engine counts them
    max_gen_toks: int  # the generation budget it was written under
    weight: float  # a static per-example loss multiplier (docs/plugins.md, "Changing the loss")


def missing_fields(record) -> list[str]:
    """The RECORD_FIELDS a generated record lacks (all of them if it is not a mapping)."""
    return [k for k in RECORD_FIELDS if not isinstance(record, dict) or k not in record]
