"""Capture a process's own stdout and stderr into a log file, at the file-descriptor level.

Engines and libraries write to the terminal through every path there is: Python ``print`` and
``warnings``, ``logging`` handlers bound to ``sys.stderr`` at import, tqdm, C++ code writing to
fd 2 (torch's "Kernel … is already registered"), and child processes (vLLM's engine core, git
called by lm-eval) that inherit fds 1 and 2. Replacing ``sys.stdout`` catches only the first
few, so :class:`Capture` points fds 1 and 2 themselves at the log (``dup2``) and gives cotgap's
own rich consoles a duplicate of the original descriptor to keep writing to the terminal.

This module does the plumbing only; *when* to capture is :mod:`cotgap.output`'s decision.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import os
import sys
from pathlib import Path

#: The descriptors captured: the process's stdout and stderr.
FDS = (1, 2)


def _fileno(stream) -> int | None:
    """The descriptor behind ``stream``, or None (click's CliRunner and StringIO streams have none)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _flush(stream) -> None:
    with contextlib.suppress(Exception):
        stream.flush()


def _flush_c_stdio() -> None:
    """Flush C stdio buffers (``fflush(NULL)``): a C library's buffered output belongs to the
    descriptor it was written for, not to whatever fd 1 is when the buffer happens to fill."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def _open_log(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def _point_fds_at(log_fd: int, fds=FDS) -> None:
    """``fds`` become ``log_fd`` (which is closed: they hold it now)."""
    try:
        for target in fds:
            os.dup2(log_fd, target)
    finally:
        os.close(log_fd)


class Capture:
    """Fds 1 and 2 redirected into ``path`` (appended) between :meth:`start` and :meth:`stop`;
    with ``path`` None, fd 1 only, onto fd 2 (stdout kept for a command's JSON, libraries' output
    still shown).

    ``consoles``: rich consoles that must keep reaching the original stdout/stderr; while the
    capture lasts each one whose file is fd 1 or 2 writes to a duplicate of that descriptor.
    """

    def __init__(self, path: str | Path | None, consoles=(), *, temporary: bool = False, header: str = ""):
        self.path = Path(path) if path is not None else None
        self.temporary = temporary  # a placeholder log: removed when empty, or when moved
        self.discard = False  # remove the log at stop whatever it holds
        self._header = header.encode()  # written first: what opens this command's part of the log
        self._consoles = list(consoles)
        self._saved: dict[int, int] = {}
        self._console_files: list[tuple[object, object]] = []
        self._streams: tuple | None = None
        self._faulthandler = False

    # -- start / stop ---------------------------------------------------------------------------
    def start(self) -> Capture:
        # first: a log that cannot be opened changes nothing
        log_fd = _open_log(self.path) if self.path is not None else os.dup(2)
        if self._header and self.path is not None:
            os.write(log_fd, self._header)
        for s in (sys.stdout, sys.stderr, *(c.file for c in self._consoles)):
            _flush(s)
        _flush_c_stdio()
        self._saved = {fd: os.dup(fd) for fd in FDS}
        for c in self._consoles:
            fd = _fileno(c.file)
            if fd in self._saved:
                old = c.file
                c.file = open(
                    os.dup(self._saved[fd]),
                    "w",
                    buffering=1,
                    encoding=getattr(old, "encoding", None) or "utf-8",
                    errors="replace",
                )
                self._console_files.append((c, old))
        _point_fds_at(log_fd, FDS if self.path is not None else (1,))
        self._streams = (sys.stdout, sys.stderr)
        # Python-level writers that are not on fds 1/2 (a test runner's streams) are sent to the log too.
        if _fileno(sys.stdout) != 1:
            sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
        if self.path is None:
            return self
        if _fileno(sys.stderr) != 2:
            sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
        if not faulthandler.is_enabled():  # a fatal signal in an engine leaves its traceback in the log
            faulthandler.enable(file=2)
            self._faulthandler = True
        return self

    def stop(self) -> None:
        """Put fds 1 and 2 back and give the consoles their own files again. The streams made for
        the capture are flushed, never closed: a logging handler may still hold one."""
        if not self._saved:
            return
        for s in (sys.stdout, sys.stderr, *(self._streams or ())):
            _flush(s)
        _flush_c_stdio()
        if self._faulthandler:
            faulthandler.disable()
            self._faulthandler = False
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
            self._streams = None
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self._saved = {}
        for console, old in self._console_files:
            _flush(console.file)
            console.file.close()
            console.file = old
        self._console_files = []
        if self.path is not None and (
            self.discard or (self.temporary and self.path.exists() and self.path.stat().st_size <= len(self._header))
        ):
            self.path.unlink(missing_ok=True)

    # -- moving the log ---------------------------------------------------------------------------
    def move(self, path: str | Path) -> None:
        """Continue the log in ``path`` (appended), carrying over what the current one holds: a
        run's log starts in a temporary file and moves into the run directory once that is known."""
        path = Path(path)
        if self.path is None or path.resolve() == self.path.resolve():
            return
        for s in (sys.stdout, sys.stderr, *(self._streams or ())):
            _flush(s)
        _flush_c_stdio()
        earlier = self.path.read_bytes() if self.path.exists() else b""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            f.write(earlier)
        if self._saved:
            _point_fds_at(_open_log(path))
        if self.temporary:
            self.path.unlink(missing_ok=True)
        self.path, self.temporary = path, False

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
