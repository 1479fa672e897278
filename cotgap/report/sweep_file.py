"""The sweep summary file (``sweep.json``): its schema name and a reader the reports share."""

from __future__ import annotations

from pathlib import Path

from cotgap.errors import UserError
from cotgap.jsonio import read_json

SCHEMA = "cotgap.sweep/1"


def read_summary(path: Path) -> dict | None:
    p = Path(path) / "sweep.json"
    if not p.is_file():
        return None
    try:
        data = read_json(p)
    except ValueError:
        raise UserError(f"{p} is not valid JSON") from None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None
