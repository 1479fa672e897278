"""cotgap's own progress bars: one rich bar per long stage, instead of the libraries' tqdm bars.

A bar is drawn only where :func:`cotgap.output.bar_console` says (a terminal, not verbose); every
helper here yields None otherwise, and the callers then leave the libraries' own bars on
(verbose, or cotgap used as a library) or off (output captured, not on a terminal).

- :func:`requests` — requests done / total with the ETA, for evaluation and generation (vLLM's
  ``use_tqdm`` hook: :func:`vllm_tqdm`; the transformers backend: :class:`CountingHook`);
- :func:`bar` — any count (training steps with the current loss: ``backends/train_progress.py``).
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path

from cotgap import output

#: Folder names too generic to tell a model by (``<run>/student/model``): the parent is shown too.
_GENERIC_NAMES = frozenset({"model", "merged", "hf"})

_active: list = []  # the rich Progress being drawn (one at a time: rich allows one live display)


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

    return (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), *([TextColumn(unit)] if unit else []),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))


@contextlib.contextmanager
def bar(label: str, total: int | None, unit: str = ""):
    """A progress bar for the block (the finished bar stays as a line), or None where none is drawn.
    Library output is never redirected through it: that is the capture's job."""
    console = output.bar_console()
    if console is None or _active:
        yield None
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
    """Stop the bar being drawn, if any (also after a failure that skipped its normal end)."""
    while _active:
        _active.pop().stop()


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
