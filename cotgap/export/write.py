"""Write exported rows as a Hugging Face ``datasets`` folder or as chat-``messages`` JSON Lines,
with the dataset card, never over an existing path and never leaving a half-written result.

- ``hf``: ``OUT/`` is ``Dataset.save_to_disk``'s folder with the card as ``OUT/README.md`` (the
  name the hub shows); it is built under a temporary name beside ``OUT`` and renamed into place.
- ``chat-jsonl``: ``OUT`` is the JSON Lines file and ``OUT.README.md`` the card beside it (a name
  no tool reading ``*.jsonl`` picks up); each is written atomically (``cotgap.jsonio``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cotgap.errors import UserError
from cotgap.jsonio import atomic_write_text, write_jsonl
from cotgap.rundir import make_dir

CARD_SUFFIX = ".README.md"  # chat-jsonl: the card beside OUT
HF_CARD = "README.md"  # hf: the card inside OUT
# chat-jsonl leaves out the text columns: TRL reads a ``prompt`` or ``completion`` column as the
# dataset's type (prompt-completion) beside ``messages``, and the texts are in the turns anyway.
CHAT_JSONL_DROP = ("prompt", "completion", "response")


def card_path(out: Path, fmt: str) -> Path:
    return out / HF_CARD if fmt == "hf" else out.with_name(out.name + CARD_SUFFIX)


def check_free(out: Path, card: Path) -> None:
    """Refuse an ``out`` (or card) that exists: an export never replaces anything."""
    for p in (out, card):
        if p.exists() or p.is_symlink():
            raise UserError(f"{p} exists; export never overwrites: choose a new OUT")


def shaped(rows: list[dict], fmt: str) -> list[dict]:
    """The rows as ``fmt`` stores them (chat-jsonl without ``CHAT_JSONL_DROP``)."""
    if fmt == "hf":
        return rows
    return [{k: v for k, v in r.items() if k not in CHAT_JSONL_DROP} for r in rows]


def check_turns(rows: list[dict]) -> None:
    """chat-jsonl needs every record's turns; the first record without them is named."""
    for r in rows:
        if r.get("messages") is None:
            raise UserError(
                f"source {r['source']!r}, doc_id {r['doc_id']}: no chat turns ({r.get('messages_note')}); "
                "--format hf keeps every record with its prompt as sent"
            )


def write(rows: list[dict], out: Path, fmt: str, card_text: str, card: Path) -> None:
    make_dir(out.parent, "OUT's folder")
    if fmt == "hf":
        _write_hf(rows, out, card_text)
    else:
        write_jsonl(out, rows)
        atomic_write_text(card, card_text)


def _write_hf(rows: list[dict], out: Path, card_text: str) -> None:
    from datasets import Dataset

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        Dataset.from_list(rows).save_to_disk(str(tmp))
        (tmp / HF_CARD).write_text(card_text, encoding="utf-8")
        os.rename(tmp, out)  # fails (and keeps what is there) if OUT appeared meanwhile
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
