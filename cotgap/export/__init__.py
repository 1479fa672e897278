"""``cotgap export``: a run's rationales as a dataset other tools read.

``export(run_dir, what, fmt, out)`` reads a finished run directory (never writes to it) and
writes one of three record sets in one of two formats, with a dataset card beside it:

- ``what``: ``generations`` (every rationale the sources wrote, ``generations/``), ``kept`` (those
  the per-teacher filter kept, ``filtered/``), ``training`` (exactly the examples the student was
  trained on, as the train stage stored them: ``student/examples.jsonl``, see
  ``cotgap.pipeline.trained_set``).
- ``fmt``: ``hf`` (a Hugging Face ``datasets`` folder, ``save_to_disk``; its card is ``README.md``
  inside it) or ``chat-jsonl`` (one JSON object a line with a ``messages`` list of
  ``{role, content}`` turns, the format TRL, LLaMA-Factory and ms-swift read; its card is
  ``OUT.README.md`` beside it).

Every record carries ``source``, ``doc_id``, ``correct`` and ``config_hash`` (the run's identity
key from ``run.json``). Modules: ``run_source`` (open and check the run), ``rows`` (the records),
``turns`` (teacher prompts as chat turns), ``card`` (the dataset card), ``write`` (the two formats).
"""

from __future__ import annotations

from pathlib import Path

WHAT = ("generations", "kept", "training")
FORMATS = ("hf", "chat-jsonl")


def export(run_dir: str | Path, what: str, fmt: str, out: str | Path, *, log=None) -> dict:
    """Export ``what`` of the run at ``run_dir`` as ``fmt`` to ``out``; returns ``{"out", "card", "n"}``.
    Bad input (not a run directory, the stage ``what`` needs unfinished, ``out`` existing) is a
    one-line ``UserError`` raised before anything is written."""
    from cotgap.errors import UserError
    from cotgap.export import benchmark, card, rows, run_source, write

    if what not in WHAT:
        raise UserError(f"--what must be one of {', '.join(WHAT)}, not {what!r}")
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    out = Path(out).expanduser().resolve()
    card_path = write.card_path(out, fmt)
    write.check_free(out, card_path)
    run = run_source.open_run(run_dir, what)
    bench = benchmark.of(run)
    records = rows.build(run, what, bench)
    if fmt == "chat-jsonl":
        write.check_turns(records)
    records = write.shaped(records, fmt)
    text = card.render(run, what, fmt, records, bench)
    write.write(records, out, fmt, text, card_path)
    if log:
        log(f"exported {len(records)} {what} records of {run.path} to {out} (card: {card_path})")
    return {"out": out, "card": card_path, "n": len(records)}
