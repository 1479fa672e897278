"""Output paths checked before a command does any work: a folder it will write into, or a file it
will create, that is in the way, read-only or otherwise unwritable is refused in one line (exit 2)
instead of failing half-way as an internal error."""

from __future__ import annotations

import os
from pathlib import Path

from cotgap.errors import UserError
from cotgap.rundir import make_dir


def writable_dir(path: str | Path, what: str) -> Path:
    """``path`` created if needed and writable (``rundir.make_dir``'s checks); returns it."""
    p = Path(path).expanduser()
    make_dir(p, what)
    return p


def writable_file(path: str | Path, what: str) -> Path:
    """``path`` can be written as a file: not a folder, not a read-only file, in a writable folder
    (created if needed); returns it."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{what} {p}: a folder is in the way (a file is needed)")
    make_dir(p.parent if str(p.parent) else Path("."), f"{what}'s folder")
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{what} {p}: not writable")
    return p
