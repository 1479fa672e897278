"""A run directory with atomic writes and content-keyed stages.

Each stage records ``stages/<name>.json`` = ``{"key": <hash of its inputs>, ...}`` after its
artefacts are written. A stage whose record exists with the same key is skipped; anything else
(missing, different inputs, killed half-way) is recomputed. Every file is written to a temporary
name and renamed into place, so a kill never leaves a half-written artefact that looks finished.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cotgap.jsonio import key_of, read_json, write_json


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        self.computed: list[str] = []
        self.skipped: list[str] = []

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    def record(self, name: str) -> dict | None:
        p = self.path / "stages" / f"{name}.json"
        return read_json(p) if p.exists() else None

    def is_done(self, name: str, key: str) -> bool:
        rec = self.record(name)
        return rec is not None and rec.get("key") == key

    def mark_done(self, name: str, key: str, seconds: float, **info: Any) -> None:
        write_json(self.path / "stages" / f"{name}.json",
                   {"key": key, "seconds": round(seconds, 2), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **info})

    def stage(self, name: str, inputs: Any, compute, *, log=None) -> dict:
        """Run ``compute()`` unless stage ``name`` already finished with the same ``inputs``.

        ``compute`` writes its artefacts and returns a JSON-able info dict (kept in the record).
        """
        key = key_of(inputs)
        if self.is_done(name, key):
            self.skipped.append(name)
            if log:
                log(f"[dim]✓ {name}: cached[/dim]")
            return self.record(name)
        if log:
            log(f"[bold]▶ {name}[/bold]")
        t0 = time.time()
        info = compute() or {}
        self.mark_done(name, key, time.time() - t0, **info)
        self.computed.append(name)
        return self.record(name)
