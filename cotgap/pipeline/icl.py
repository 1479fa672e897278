"""``cotgap select --measure``: few-shot CoT accuracy of teachers and students on the test split.

Each model is evaluated with lm-eval exactly as a run's baseline is (the task's few-shot CoT
prompt, its answer extraction, the same test split for the same seed / limit), and the
accuracies are written as the task-selection table ``task,model,role,accuracy`` (percent)
that :func:`cotgap.report.selection.select_tasks` reads.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cotgap.errors import UserError
from cotgap.protocol.constants import RUN_SEED, SPLIT_SEED, SYNTHETIC_N

COLUMNS = ("task", "model", "role", "accuracy")


def measure(
    tasks,
    teachers,
    students,
    out: str | Path,
    *,
    limit: int | None = None,
    seed: int = RUN_SEED,
    synthetic_n: int = SYNTHETIC_N,
    data_dir: str | None = None,
    include_paths=(),
    scoring: str = "robust",
    backend: str = "auto",
    log=print,
) -> list[dict]:
    """Evaluate every model on every task; write and return the rows. The test split is the one
    every run uses (``SPLIT_SEED``); ``seed`` only seeds the engines."""
    from cotgap.backends import evaluation, generation
    from cotgap.jsonio import atomic_write_text
    from cotgap.models.resolve import resolve

    tasks, teachers, students = list(dict.fromkeys(tasks)), list(dict.fromkeys(teachers)), list(dict.fromkeys(students))
    if not tasks or not teachers or not students:
        raise UserError("--measure needs at least one --task, one --teacher and one --student")
    both = sorted(set(teachers) & set(students))
    if both:
        raise UserError(f"model(s) {', '.join(both)} given both as teacher and as student")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be a positive integer, got {limit}")
    if scoring not in ("robust", "strict"):
        raise UserError(f"scoring must be 'robust' or 'strict', got {scoring!r}")
    generation.pick_backend(backend)  # fails early on an unavailable backend
    models = [(m, "teacher") for m in teachers] + [(m, "student") for m in students]
    refs = {m: resolve(m) for m, _ in models}

    def settings(task):
        return evaluation.TaskSettings(
            name=task,
            seed=SPLIT_SEED,
            limit=limit,
            data_dir=data_dir,
            synthetic_n=synthetic_n,
            include_paths=list(include_paths),
            scoring=scoring,
        )

    for t in tasks:  # unknown tasks / missing data fail before any model is loaded
        evaluation.load_task(settings(t), split="test")

    rows = []
    try:
        for model, role in models:
            ref = refs[model]
            lm = generation.open_lm(ref.path(log=log), backend=backend, seed=seed)
            for t in tasks:
                task = evaluation.load_task(settings(t), split="test")
                summary, _ = evaluation.run(lm, task, scoring=scoring)
                acc = round(100.0 * summary["accuracy"], 4)
                log(f"  {role} {model} on {t}: {acc:.1f}% (n={summary['n']})")
                rows.append({"task": t, "model": model, "role": role, "accuracy": acc})
    finally:
        generation.close()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(Path(out), buf.getvalue())
    return rows
