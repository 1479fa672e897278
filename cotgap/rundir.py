"""A run directory: one config, one run at a time, content-keyed stages whose files are verified.

- **One config**: ``run.json`` holds the run's key (a hash of its config) and is written first, once.
  A run with another config on the directory is refused, naming the difference, unless ``force``
  asks to start the directory afresh.
- **A lock**: an exclusive ``flock`` on ``.lock`` for the whole run; a second run on the directory
  is refused at once with the holder's PID (it does not wait: a queued run would silently start
  minutes later on whatever the first one left).
- **Stages**: ``stages/<name>.json`` = ``{"key", "run", "consumes", "files", ...}``, written last,
  after the stage's files. ``key`` hashes the stage's inputs, ``run`` is the run key, ``consumes``
  the keys of the stages whose outputs it read, ``files`` the size and digest of every file the
  stage wrote. A stage counts as finished only when all of these match; anything else (missing,
  other inputs, a corrupt record, a truncated or altered file, killed half-way) is reported in one
  line and recomputed. The old record is removed *before* a stage recomputes, so a kill in the
  middle never leaves an old record beside new files.
- **Relocatable**: records hold paths relative to the directory (``relative``/``absolute``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path
from typing import Any

from cotgap import interrupts
from cotgap.errors import UserError
from cotgap.jsonio import file_digest, key_of, read_json, write_json

RUN_FILE = "run.json"
RUN_SCHEMA = "cotgap.rundir/1"
LOCK_FILE = ".lock"
# What marks a folder as a cotgap run directory (and so may be wiped by --force).
MARKERS = (RUN_FILE, "stages", "config.json", "manifest.json")


class RunDir:
    def __init__(self, path: str | Path, *, create: bool = True):
        self._lock_fd: int | None = None
        self._run_key: str | None = None
        self.path = Path(path).expanduser().resolve()
        if create:
            make_dir(self.path, "--out")
        elif not self.path.is_dir():
            raise UserError(f"{path} is not a directory")
        self.computed: list[str] = []
        self.skipped: list[str] = []

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    # -- identity and lock --------------------------------------------------------------------------
    def claim(self, config: dict, *, force: bool = False) -> str:
        """Lock the directory and bind it to ``config`` (see the module docstring); returns the run key."""
        self.lock()
        key = key_of(config)
        existing = self.identity()
        if existing is not None and existing.get("key") != key and not force:
            self.unlock()
            raise UserError(
                f"run directory {self.path} holds another config ({config_diff(existing.get('config'), config)}); "
                "use --force to start it afresh, or another --out"
            )
        if existing is None and not force and self._has_foreign_content():
            self.unlock()
            raise UserError(
                f"{self.path} is not empty and is not a cotgap run directory of this version; "
                "choose an empty or new --out" + (" (or --force: it is a run directory)" if self.is_run_dir() else "")
            )
        if force and (existing is None or existing.get("key") != key):
            self._wipe()
        if self.identity() is None:
            write_json(
                self.path / RUN_FILE,
                {"schema": RUN_SCHEMA, "key": key, "config": config, "created": time.strftime("%Y-%m-%dT%H:%M:%S")},
            )
        self._run_key = key
        return key

    def identity(self) -> dict | None:
        """``run.json``, or None where there is none (a corrupt one is an error: it cannot be trusted)."""
        p = self.path / RUN_FILE
        if not p.exists():
            return None
        try:
            data = read_json(p)
        except (ValueError, OSError):
            raise UserError(f"{p} is corrupt; the directory's config cannot be known (use --force to start afresh)") from None
        if not isinstance(data, dict) or data.get("schema") != RUN_SCHEMA:
            raise UserError(f"{p} is not a cotgap run file")
        return data

    def is_run_dir(self) -> bool:
        return any((self.path / m).exists() for m in MARKERS)

    def _has_foreign_content(self) -> bool:
        return any(p.name != LOCK_FILE for p in self.path.iterdir())

    def _wipe(self) -> None:
        if not self.is_run_dir() and self._has_foreign_content():
            raise UserError(f"--force refused: {self.path} is not a cotgap run directory")
        for p in self.path.iterdir():
            if p.name != LOCK_FILE:
                _remove(p)

    def lock(self) -> None:
        """Take the directory's exclusive lock, or refuse naming the process that holds it."""
        path = self.path / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(
                f"{self.path} is in use by PID {holder} (another cotgap run or sweep); "
                "wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __del__(self):
        self.unlock()

    # -- paths --------------------------------------------------------------------------------------
    def relative(self, path: str | Path) -> str:
        """``path`` relative to the directory when inside it (records stay valid when it moves)."""
        p = Path(path).resolve()
        return str(p.relative_to(self.path)) if p.is_relative_to(self.path) else str(p)

    def absolute(self, path: str | Path) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.path / p

    # -- stages -------------------------------------------------------------------------------------
    def record(self, name: str) -> dict | None:
        """The stage's record, or None (missing or unreadable: it will be recomputed)."""
        p = self.path / "stages" / f"{name}.json"
        if not p.is_file():  # missing, or a folder, FIFO or device in its place: never read
            return None
        try:
            rec = read_json(p)
        except (ValueError, OSError):
            return None
        return rec if isinstance(rec, dict) else None

    def problem(self, name: str, key: str | None = None) -> str | None:
        """Why stage ``name`` does not count as finished (for inputs ``key``, if given), or None."""
        p = self.path / "stages" / f"{name}.json"
        if not p.exists() and not p.is_symlink():
            return "not run"
        if not p.is_file():
            return f"{self.relative(p)} is not a regular file"
        rec = self.record(name)
        if rec is None:
            return f"{self.relative(p)} is corrupt or unreadable"
        if key is not None and rec.get("key") != key:
            return "its inputs changed"
        if self._run_key is not None and rec.get("run") != self._run_key:
            return "it belongs to another config"
        for stage, consumed in (rec.get("consumes") or {}).items():
            upstream = self.record(stage)
            if upstream is None or upstream.get("key") != consumed:
                return f"the {stage} stage it used has changed"
        return self._file_problem(rec.get("files") or {})

    def _file_problem(self, files: dict) -> str | None:
        for rel, want in files.items():
            f = self.path / rel
            if not f.is_file():
                return f"{rel} is missing"
            if f.stat().st_size != want.get("size") or file_digest(f) != want.get("digest"):
                return f"{rel} does not match its record"
        return None

    def verify(self) -> None:
        """Refuse (naming the stage) a directory whose records do not form one run's chain: every
        record of this run's config, every consumed stage unchanged, every file as recorded.
        Read-only: nothing is written, so archives can be checked."""
        identity = self.identity()
        if identity is None:
            raise UserError(f"{self.path} has no {RUN_FILE}: not a run directory of this cotgap version")
        self._run_key = identity.get("key")
        for rec in sorted((self.path / "stages").glob("*.json")):
            why = self.problem(rec.stem)
            if why is not None:
                raise UserError(
                    f"run {self.path}: stage {rec.stem} cannot be trusted ({why}); re-run it with the same config to recompute"
                )

    def is_done(self, name: str, key: str) -> bool:
        return self.problem(name, key) is None

    def stage(self, name: str, inputs: Any, compute, *, log=None, outputs=(), consumes=None) -> dict:
        """Run ``compute()`` unless stage ``name`` already finished with the same ``inputs``.

        ``compute`` writes its artefacts (under the relative paths ``outputs``) and returns a JSON-able
        info dict, kept in the record; ``consumes`` maps the stages it read to their keys."""
        interrupts.rearm()  # Ctrl-C from the first instant of the stage (cotgap.interrupts)
        key = key_of(inputs)
        why = self.problem(name, key)
        if why is None:
            self.skipped.append(name)
            if log:
                log(f"[dim]✓ {name}: cached[/dim]")
            return self.record(name)
        if log:
            note = "" if why in ("not run", "its inputs changed") else f" [yellow]({why}; recomputing)[/yellow]"
            log(f"[bold]▶ {name}[/bold]{note}")
        record = self.path / "stages" / f"{name}.json"
        _remove(record)  # invalid first (a kill below leaves no stale record behind); a folder in its place too
        for rel in outputs:
            _remove(self.path / rel)
        t0 = time.time()
        info = compute() or {}
        interrupts.check()  # an interrupt swallowed inside compute: the stage is not recorded as finished
        files = {
            self.relative(f): {"size": f.stat().st_size, "digest": file_digest(f)}
            for rel in outputs
            for f in _files(self.path / rel)
        }
        write_json(
            record,
            {
                "key": key,
                "run": self._run_key,
                "consumes": dict(consumes or {}),
                "files": files,
                "seconds": round(time.time() - t0, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                **info,
            },
        )
        self.computed.append(name)
        return self.record(name)


def make_dir(path: Path, what: str) -> None:
    """Create ``path`` (and parents) as a writable folder, or refuse in one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{what} {path}: a file is in the way (a folder is needed)") from None
    except NotADirectoryError:
        raise UserError(f"{what} {path}: a parent of it is a file") from None
    except PermissionError:
        raise UserError(f"{what} {path}: permission denied") from None
    except OSError as exc:
        raise UserError(f"{what} {path}: {exc.strerror}") from None
    if not path.is_dir():
        raise UserError(f"{what} {path}: a file is in the way (a folder is needed)")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: not writable")


def config_diff(old: Any, new: Any, limit: int = 3) -> str:
    """The first ``limit`` differing dotted keys of two configs, ``key: old → new`` (lists item by
    item; long strings from where they differ)."""
    diffs: list[str] = []

    def walk(a, b, where):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{where}[{i}]")
        elif a != b:
            diffs.append(f"{where}: {_shown(a, b)} → {_shown(b, a)}")

    walk(old or {}, new or {}, "")
    more = f", and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more if diffs else "an unreadable config"


def _shown(v: Any, other: Any) -> str:
    """``v`` for a one-line message: a long string from shortly before where it differs from ``other``."""
    if isinstance(v, str) and isinstance(other, str) and len(v) > 60:
        common = len(os.path.commonprefix([v, other]))
        start = max(0, common - 20)
        return repr(("…" if start else "") + v[start : start + 60] + ("…" if len(v) > start + 60 else ""))
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _files(p: Path) -> list[Path]:
    if p.is_file():
        return [p]
    return sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else []


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()
