"""What reaches the terminal, and where the rest goes (the CLI's output policy).

- cotgap's own lines (stage lines, tables, results, errors) go to its rich consoles, built here.
- On a terminal: colour, one progress bar per long stage (:mod:`cotgap.progress`), and engine and
  library chatter (vLLM/torch/transformers warnings, their progress bars, engine subprocesses)
  captured into a log file (:func:`chatter`): ``<run>/logs/engines.log`` for a run, the sweep
  directory's ``logs/`` for a sweep, a temporary file otherwise — named in error lines.
- Not on a terminal (a pipe, a file): no colour, no bars, and no wrapping at all — a very large
  width and soft wrap, so a table row or a path is always one whole line (``cotgap tasks | grep``);
  each long stage prints a plain progress line instead of a bar, at most every 30 seconds (a
  piped or Slurm-logged run shows where it is: :func:`line_console`, :class:`cotgap.progress.LineBar`).
- ``-v/--verbose``: nothing is captured and libraries draw their own bars, as they would alone.

Outside the CLI (cotgap used as a library, tests driving ``Runner``) nothing is configured and the
libraries' own output is left as it is.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

#: Width of a console that does not write to a terminal: wide enough that nothing ever wraps.
PIPE_WIDTH = 1_000_000
#: Where a run's (or a sweep's) captured chatter goes, relative to its directory.
LOG_DIR = "logs"
LOG_FILE = "engines.log"


@dataclass
class _State:
    configured: bool = False  # the CLI decided the policy (else: library use, nothing changed)
    verbose: bool = False
    stage: Console | None = None  # where stage lines and progress bars go
    log_path: Path | None = None  # the latest command's chatter log, for error lines


STATE = _State()


class PipeConsole(Console):
    """A console for a pipe or a file: plain lines that never wrap; rules are short, not
    ``PIPE_WIDTH`` characters of line."""

    def rule(self, title="", *, characters: str = "─", style="rule.line", align="center") -> None:
        self.print(f"{characters * 2} {title} {characters * 2}" if title else characters * 40)


def make_console(stream=None, *, stderr: bool = False) -> Console:
    """A console on ``stream`` (default: the current stdout, or stderr): rich as usual on a
    terminal, a :class:`PipeConsole` elsewhere. Soft wrap everywhere: a path printed on a
    terminal is wrapped by the terminal, so copying it gives it back whole."""
    stream = stream if stream is not None else (sys.stderr if stderr else sys.stdout)
    if _isatty(stream):
        return Console(file=stream, soft_wrap=True)
    return PipeConsole(file=stream, width=PIPE_WIDTH, soft_wrap=True, color_system=None, highlight=False)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def configure(*, verbose: bool) -> tuple[Console, Console]:
    """Called by the ``cli`` group for every command: the policy, and the (stdout, stderr)
    consoles built on the streams of this invocation."""
    out, err = make_console(sys.stdout), make_console(sys.stderr)
    STATE.configured, STATE.verbose, STATE.stage, STATE.log_path = True, verbose, out, None
    return out, err


def reset() -> None:
    """Back to "not configured" once a command is over (in-process callers, tests, see the next)."""
    STATE.configured, STATE.verbose, STATE.stage, STATE.log_path = False, False, None, None


def use_stage_console(console: Console) -> None:
    """Stage lines and bars go to ``console`` (stderr for a command whose stdout is JSON)."""
    STATE.stage = console


def captures() -> bool:
    """Whether engine and library output is kept off the terminal (the CLI, not verbose)."""
    return STATE.configured and not STATE.verbose


def library_bars() -> bool:
    """Whether libraries (vLLM, lm-eval, the Trainer) should draw their own progress bars."""
    return not captures()


def bar_console() -> Console | None:
    """The terminal console cotgap's own progress bars are drawn on, or None (no bars)."""
    c = STATE.stage
    return c if captures() and c is not None and c.is_terminal else None


def line_console() -> Console | None:
    """The console cotgap's plain progress lines go to where no bar can be drawn because the output
    is not a terminal (a pipe, a file, a Slurm log), or None: verbose runs leave progress to the
    libraries, and library use prints nothing of cotgap's."""
    c = STATE.stage
    return c if captures() and c is not None and not c.is_terminal else None


class _NoCapture:
    """What :func:`chatter` yields when nothing is captured."""

    path = None

    def move(self, path) -> None:
        pass


@contextlib.contextmanager
def chatter(log_path: str | Path | None = None, *, consoles=(), name: str = "cotgap", json_stdout: bool = False):
    """Engine and library output into ``log_path`` (or a temporary ``<name>-*.log`` until the
    caller ``move``s it into a run directory) for the block, unless verbose. ``consoles``: cotgap's
    own, which keep writing to the terminal. The log stays named in ``STATE.log_path`` after the
    block, for the error line of a command that failed in it; a temporary log that ends empty, or
    in bad input (one line, nothing to look at), is removed. ``json_stdout``: the command prints
    JSON on stdout after the block, so verbose library output written to stdout goes to stderr."""
    if not captures():
        with _stdout_to_stderr(json_stdout and STATE.configured, consoles):
            yield _NoCapture()
        return
    from cotgap.capture import Capture
    from cotgap.errors import UserError

    temporary = log_path is None
    if temporary:
        fd, log_path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
        os.close(fd)
    cap = Capture(log_path, consoles, temporary=temporary, header=_header())
    cap.start()
    try:
        yield cap
    except UserError:
        cap.discard = cap.temporary
        raise
    finally:
        for close in _CLOSERS:
            close()  # a bar left open by a failure must not draw over the error line (cotgap.progress)
        cap.stop()
        STATE.log_path = cap.path if cap.path.exists() else None


#: what closes cotgap's open progress bars when a capture ends: registered by :mod:`cotgap.progress`
#: on import (output does not import progress, which draws on output's consoles)
_CLOSERS: list = []


def on_capture_end(close) -> None:
    """Call ``close()`` whenever a captured command ends (before its error line is printed)."""
    if close not in _CLOSERS:
        _CLOSERS.append(close)


@contextlib.contextmanager
def _stdout_to_stderr(wanted: bool, consoles):
    if not wanted:
        yield
        return
    from cotgap.capture import Capture

    with Capture(None, consoles):
        yield


def _header() -> str:
    """The line that opens each command's part of a log (a resumed run appends to its log)."""
    return f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: {shlex.join(['cotgap', *sys.argv[1:]])} =====\n"


def run_log(run_dir: str | Path) -> Path:
    """A run's (or a sweep's) chatter log."""
    return Path(run_dir) / LOG_DIR / LOG_FILE


def log_note() -> str:
    """``"; engine and library output in <log>"`` for an error line, or "" when nothing was captured."""
    return f"; engine and library output in {STATE.log_path}" if STATE.log_path else ""
