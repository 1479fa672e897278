"""Training progress on cotgap's bar (or its lines in a log): optimizer steps done / total with the current loss.

Passed to ``train_sft`` through the callbacks it already accepts (with ``progress=False``, which
turns the Trainer's own tqdm bar off): see :func:`for_policy`.
"""

from __future__ import annotations

import contextlib

from transformers import TrainerCallback

from cotgap import output, progress


class TrainingProgress(TrainerCallback):
    """A bar (or, in a log, plain lines) from ``on_train_begin`` to ``on_train_end``: steps
    (``state.global_step`` out of ``state.max_steps``) and the latest logged loss."""

    def __init__(self, label: str = "training"):
        self.label = label
        self._stack: contextlib.ExitStack | None = None
        self._bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._stack = contextlib.ExitStack()
        self._bar = self._stack.enter_context(progress.bar(self.label, state.max_steps or None, unit="steps"))

    def on_step_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.update(completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if self._bar is not None and isinstance(loss, (int, float)):
            self._bar.update(info=f"loss {loss:.4g}")

    def on_train_end(self, args, state, control, **kwargs):
        if self._stack is not None:
            self._stack.close()
        self._stack = self._bar = None


def for_policy() -> tuple[list, bool]:
    """``train_sft``'s extra ``callbacks`` and its ``progress`` flag under the output policy:
    cotgap's bar, or its lines in a log, where cotgap shows progress; the Trainer's own bar only
    where libraries keep theirs (verbose, or cotgap used as a library)."""
    return ([TrainingProgress()] if progress.shown() else []), output.library_bars()
