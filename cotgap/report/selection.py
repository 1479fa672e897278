"""Task selection: distil a task only when the teachers clearly beat the students.

The rule (``cotgap select``): a task is worth distilling when the teachers'
mean few-shot accuracy exceeds the students' by more than a threshold, 30
points by default.  The input is the task-selection table
``task,model,role,accuracy`` (see :mod:`cotgap.report.tables`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cotgap.report.tables import EPS, row_accuracy, row_text

__all__ = ["TaskSelection", "select_tasks"]


@dataclass(frozen=True)
class TaskSelection:
    """Result of the task-selection rule for one task.

    ``gap = teacher_mean - student_mean`` (points); ``selected`` iff
    ``gap > threshold`` strictly.
    """

    task: str
    teacher_mean: float
    student_mean: float
    gap: float
    selected: bool
    n_teachers: int = 0
    n_students: int = 0


def select_tasks(rows: Sequence[Mapping], threshold: float = 30.0) -> list[TaskSelection]:
    """Decide which tasks are worth distilling.

    ``rows`` have ``task, model, role, accuracy`` (role ``teacher`` or
    ``student``, case-insensitive; accuracy in percent).  A task is selected
    iff mean teacher accuracy minus mean student accuracy is *strictly* greater
    than ``threshold`` (a gap of exactly the threshold is not selected).
    Tasks are returned in order of first appearance.  Raises ValueError on a
    bad role, a duplicated (task, model), or a task lacking teachers or
    students.
    """
    teachers, students = _accuracies_by_role(rows)
    out = []
    for task in teachers:
        if not teachers[task]:
            raise ValueError(f"task {task!r} has no teacher rows (role 'teacher')")
        if not students[task]:
            raise ValueError(f"task {task!r} has no student rows (role 'student')")
        tm = sum(teachers[task]) / len(teachers[task])
        sm = sum(students[task]) / len(students[task])
        gap = tm - sm
        out.append(
            TaskSelection(
                task=task,
                teacher_mean=tm,
                student_mean=sm,
                gap=gap,
                selected=gap > threshold + EPS,
                n_teachers=len(teachers[task]),
                n_students=len(students[task]),
            )
        )
    return out


def _accuracies_by_role(rows: Sequence[Mapping]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Check the rows and group their accuracies per task: (teachers, students), tasks in input order."""
    teachers: dict[str, list[float]] = {}
    students: dict[str, list[float]] = {}
    seen: set[tuple[str, str]] = set()
    for i, row in enumerate(rows, start=1):
        where = f"task-selection row {i}"
        task = row_text(row, "task", where)
        model = row_text(row, "model", where)
        role = row_text(row, "role", where).lower()
        if role not in ("teacher", "student"):
            raise ValueError(
                f"{where} (task {task!r}, model {model!r}): role must be 'teacher' or 'student', got {row.get('role')!r}"
            )
        acc = row_accuracy(row, where)
        if (task, model) in seen:
            raise ValueError(f"{where}: task {task!r} lists model {model!r} more than once")
        seen.add((task, model))
        if task not in teachers:
            teachers[task] = []
            students[task] = []
        (teachers if role == "teacher" else students)[task].append(acc)
    return teachers, students
