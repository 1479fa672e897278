"""JSON and JSONL files written atomically: the one I/O layer the pipeline and the reports share.

Every file is written to a temporary name in its own folder and renamed into place, so a kill
never leaves a half-written file that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cotgap import interrupts


def key_of(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    interrupts.check()  # after the write: what was finished is kept, then a swallowed Ctrl-C stops the run


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(Path(path), json.dumps(obj, indent=2, default=str) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(Path(path), "".join(json.dumps(r, default=str) + "\n" for r in rows))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


#: Files up to this size are hashed whole; larger ones (model weights) by size and three samples,
#: so verifying a resumed 7B run does not re-read 15 GB.
FULL_HASH_LIMIT = 64 << 20
_SAMPLE = 1 << 20


def file_digest(path: Path) -> str:
    """A content digest of ``path``: sha256 of the whole file, or for a large one of its size and
    its first, middle and last MiB (``sampled:`` prefix) — enough to catch truncation and copies
    of another file, cheap on weights."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
            return h.hexdigest()[:32]
        h.update(str(size).encode())
        for offset in (0, size // 2, size - _SAMPLE):
            f.seek(offset)
            h.update(f.read(_SAMPLE))
    return "sampled:" + h.hexdigest()[:32]
