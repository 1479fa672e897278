"""lm-eval's own result files for one evaluation, written by lm-eval's ``EvaluationTracker``.

Beside cotgap's ``results.json`` / ``samples.jsonl`` each evaluation stage folder holds
``lm-eval/results_<date>.json`` and ``lm-eval/samples_<task>_<date>.jsonl``: the files the
``lm_eval`` command writes with ``--output_path … --log_samples``, written by the same tracker
methods the command calls, so tools that read lm-eval's output read cotgap's numbers. They live
inside the stage's output folder, so the stage record covers them with its file digests.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from pathlib import Path

#: The folder, inside an evaluation stage's output folder, that holds lm-eval's files.
FOLDER = "lm-eval"


def tracker(folder: Path):
    """An ``EvaluationTracker`` writing into ``folder`` itself. lm-eval puts its files in a
    ``<model name>/`` subfolder unless the output path names a ``.json`` file, in which case they
    go beside it: ``results_<date>.json`` (from the stem ``results``) and ``samples_<task>_<date>.jsonl``."""
    from lm_eval.loggers import EvaluationTracker

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return EvaluationTracker(output_path=str(folder / "results.json"))


def save(evaluation_tracker, out: dict, model_name: str | None = None) -> list[Path]:
    """Write ``simple_evaluate``'s output ``out`` as lm-eval's CLI does after a run with
    ``log_samples=True``: the aggregated results, then each task's samples. ``out`` is not changed
    (the tracker rewrites the dicts it is given). Returns the files written; a tracker that could
    not write (it only logs a warning) is an error here: the stage would otherwise finish without them."""
    out = copy.deepcopy(out)
    samples = out.pop("samples", None) or {}
    general = evaluation_tracker.general_config_tracker
    if model_name:  # a custom LM object gets a random name from lm-eval
        from lm_eval.utils import sanitize_model_name

        general.model_name, general.model_name_sanitized = model_name, sanitize_model_name(model_name)
    folder = Path(evaluation_tracker.output_path).parent
    with _failures() as failed:
        evaluation_tracker.save_results_aggregated(results=out, samples=samples)
        for task_name in out.get("configs", {}):
            evaluation_tracker.save_results_samples(task_name=task_name, samples=samples.get(task_name, []))
    written = listed(folder)
    if failed or not any(p.name.startswith("results_") for p in written):
        # the cause's text is kept: a full disk ("No space left on device") is then reported as one
        raise RuntimeError(
            f"lm-eval's EvaluationTracker could not write its files into {folder}: {'; '.join(failed) or 'no results file'}"
        )
    return written


@contextlib.contextmanager
def _failures():
    """The errors the tracker hit while saving: it catches them and only logs a warning and the
    exception's repr (at INFO, below the level cotgap sets for lm-eval), so they are caught here."""
    log = logging.getLogger("lm_eval.loggers.evaluation_tracker")
    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the tracker's "Saving ..." chatter stays off the console
    failed: list[str] = []
    try:
        yield failed
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]
        for i, m in enumerate(messages):  # "Could not save ...", then repr(exception)
            if m.startswith("Could not"):
                failed.append(f"{m} ({messages[i + 1]})" if i + 1 < len(messages) else m)


def listed(folder: Path) -> list[Path]:
    """lm-eval's files in ``folder`` (an evaluation's ``lm-eval/``), results first; [] when absent."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and p.name.startswith(("results_", "samples_"))]
    return sorted(files, key=lambda p: (not p.name.startswith("results_"), p.name))
