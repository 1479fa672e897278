"""cotgap's own progress: one rich bar per long stage, instead of the libraries' tqdm bars, or in a
log one plain line at most every :data:`LINE_INTERVAL_S` seconds.

A bar is drawn where :func:`cotgap.output.bar_console` says (a terminal, not verbose); where the
output is captured but not a terminal (:func:`cotgap.output.line_console`: a pipe, a Slurm log) the
same helpers yield a :class:`LineBar`, which prints ``done/total · rate · ETA · info`` lines. Every
helper yields None otherwise, and the callers then leave the libraries' own bars on (verbose, or
cotgap used as a library).

- :func:`requests` — requests done / total with the ETA, for evaluation and generation (vLLM's
  ``use_tqdm`` hook: :func:`vllm_tqdm`; the transformers backend: :class:`CountingHook`);
- :func:`bar` — any count (training steps with the current loss: ``backends/train_progress.py``).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import time
from pathlib import Path

from cotgap import output

#: Folder names too generic to tell a model by (``<run>/student/model``): the parent is shown too.
_GENERIC_NAMES = frozenset({"model", "merged", "hf"})

#: Seconds between two progress lines in a log; the environment variable below overrides it (tests).
LINE_INTERVAL_S = 30.0
LINE_INTERVAL_ENV = "COTGAP_PROGRESS_INTERVAL"

_active: list = []  # the rich Progress (or LineBar) shown now: one at a time, as rich allows one live display


class Bar:
    """One task of a rich ``Progress``: ``advance(n)``, or ``update(completed, info)``."""

    def __init__(self, progress, task_id):
        self._progress, self._task = progress, task_id

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)

    def update(self, completed: float | None = None, info: str | None = None) -> None:
        fields = {} if info is None else {"info": info}
        self._progress.update(self._task, completed=completed, **fields)


def _columns(unit: str):
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return (
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *([TextColumn(unit)] if unit else []),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )


class LineBar:
    """A bar for a log: the same ``advance`` / ``update`` as :class:`Bar`, shown as one plain line
    (``training 12/40 steps · 0.8/s · ETA 0:00:35 · loss 1.92``) at most every ``interval``
    seconds, and once more when it stops (``in 0:00:50`` instead of the ETA). The rate is the
    stage's average so far: steady enough to read a line every 30 seconds. (Hand-written: rich's
    ``Progress`` off a terminal shows nothing until it stops, and tqdm's file mode writes ``\r``
    redraws.)"""

    def __init__(self, console, label: str, total: float | None, unit: str = "", interval: float = LINE_INTERVAL_S):
        self._console, self.label, self.total, self.unit, self.interval = console, label, total, unit, interval
        self.done: float = 0
        self.info = ""
        self._t0 = self._last = time.monotonic()
        self._shown: tuple | None = None  # (done, info) of the latest line printed

    def advance(self, n: float = 1) -> None:
        self.done += n
        self._tick()

    def update(self, completed: float | None = None, info: str | None = None) -> None:
        if completed is not None:
            self.done = completed
        if info is not None:
            self.info = info
        self._tick()

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._print(now)

    def stop(self) -> None:
        """The last line (unless the latest one already said it all)."""
        if self._shown != (self.done, self.info):
            self._print(time.monotonic(), end=True)

    def _print(self, now: float, end: bool = False) -> None:
        self._shown = (self.done, self.info)
        self._console.print(self.line(now - self._t0, end=end), markup=False, highlight=False)

    def line(self, elapsed: float, end: bool = False) -> str:
        """``  <label> done/total [unit] · rate · ETA (or: in <elapsed>) · info``."""
        rate = self.done / elapsed if elapsed > 0 and self.done else None
        total = _number(self.total) if self.total else "?"
        parts = [f"{self.label} {_number(self.done)}/{total}" + (f" {self.unit}" if self.unit else "")]
        if rate:
            parts.append(f"{rate:.0f}/s" if rate >= 100 else f"{rate:.3g}/s")
        if end:
            parts.append(f"in {_clock(elapsed)}")
        elif rate and self.total:
            parts.append(f"ETA {_clock(max(self.total - self.done, 0) / rate)}")
        if self.info:
            parts.append(self.info)
        return "  " + " · ".join(parts)


def _number(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:.1f}"


def _clock(seconds: float) -> str:
    """``h:mm:ss``, as rich's time columns show it."""
    return str(datetime.timedelta(seconds=int(seconds)))


def line_interval() -> float:
    """:data:`LINE_INTERVAL_S`, or the seconds ``COTGAP_PROGRESS_INTERVAL`` gives."""
    return float(os.environ.get(LINE_INTERVAL_ENV) or LINE_INTERVAL_S)


def shown() -> bool:
    """Whether cotgap shows progress itself (a bar, or lines in a log)."""
    return output.bar_console() is not None or output.line_console() is not None


@contextlib.contextmanager
def bar(label: str, total: int | None, unit: str = ""):
    """A progress bar for the block (the finished bar stays as a line), a :class:`LineBar` where
    the output is a log, or None where cotgap shows no progress. Library output is never
    redirected through it: that is the capture's job."""
    console, lines = output.bar_console(), output.line_console()
    if (console is None and lines is None) or _active:
        yield None
        return
    if console is None:
        _active.append(LineBar(lines, label, total, unit, line_interval()))
        try:
            yield _active[-1]
        finally:
            close_active()
        return
    from rich.progress import Progress

    progress = Progress(*_columns(unit), console=console, redirect_stdout=False, redirect_stderr=False)
    task = progress.add_task(label, total=total, info="")
    _active.append(progress)
    progress.start()
    try:
        yield Bar(progress, task)
    finally:
        close_active()


def close_active() -> None:
    """Stop the bar being drawn (or the lines, with their last one), if any (also after a failure
    that skipped its normal end)."""
    while _active:
        _active.pop().stop()


output.on_capture_end(close_active)


def requests(total: int, model: str | None = None):
    """A bar of generation requests done out of ``total`` (see :func:`bar`)."""
    name = model_label(model) if model else ""
    return bar(f"requests{f' · {name}' if name else ''}", total)


def model_label(path: str) -> str:
    """A short name for a model path: its folder, with the parent for generic folder names."""
    p = Path(str(path).rstrip("/"))
    return f"{p.parent.name}/{p.name}" if p.name in _GENERIC_NAMES and p.parent.name else p.name


class TqdmShim:
    """The part of tqdm's interface ``vllm.LLM.generate`` uses (``update``, ``n``, ``postfix``,
    ``format_dict["elapsed"]``, ``refresh``, ``close``; iteration for "Rendering prompts"),
    forwarding finished requests to a cotgap bar. Iterables are passed through uncounted."""

    def __init__(self, iterable=None, *args, bar: Bar | None = None, total=None, **kwargs):
        self.iterable, self.total, self.n = iterable, total, 0
        self.postfix = self.desc = None
        self.disable = False
        self._bar = bar if iterable is None else None
        self._t0 = time.monotonic()

    def __iter__(self):
        return iter(self.iterable if self.iterable is not None else ())

    def __len__(self) -> int:
        return len(self.iterable) if self.iterable is not None else int(self.total or 0)

    @property
    def format_dict(self) -> dict:
        return {"elapsed": max(time.monotonic() - self._t0, 1e-6), "n": self.n, "total": self.total}

    def update(self, n: float = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.advance(n)

    def refresh(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def set_description(self, *args, **kwargs) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def vllm_tqdm(b: Bar):
    """A ``use_tqdm`` callable for ``vllm.LLM.generate`` that advances ``b``."""
    return functools.partial(TqdmShim, bar=b)


class CountingHook:
    """An lm-eval cache hook that advances a bar by one per answered request, then passes the
    answer on to the hook it wraps (the request ledger): lm-eval's transformers LM calls it once
    per request as each batch finishes."""

    def __init__(self, inner, b: Bar):
        self.inner, self._bar = inner, b

    def add_partial(self, attr, req, res) -> None:
        self._bar.advance(1)
        if self.inner is not None:
            self.inner.add_partial(attr, req, res)
