"""The teacher table as the analysis reads it: declared facts from either table, sizes from names.

Published result tables often carry a teacher's declared ``capacity`` rank, its ``role`` or its
``teacher_size`` as columns of the distilled table, and often name teachers by their models'
conventional names only (``Qwen2.5-72B-Instruct``). So:

- :func:`merged`: the teacher rows, completed with what the distilled rows declare about their
  teacher (``tables.TEACHER_DECLARED``); a value declared twice differently (two distilled rows, or
  a distilled row and the teacher table) is refused in one line, never resolved silently;
- :func:`with_named_sizes`: a teacher with no size anywhere is sized from its name
  (:func:`cotgap.report.tables.size_from_name`), marked ``size_from_name``, so parameter counts can
  order teachers that no table sized.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cotgap.report.results import TeacherInfo
from cotgap.report.tables import TEACHER_DECLARED, is_empty, parse_size, row_text, size_from_name


def _normal(key: str, value: str):
    """A declared value in comparable form (a number, billions, or a lower-cased role)."""
    try:
        if key == "capacity":
            return float(value)
        if key == "teacher_size":
            return parse_size(value)
    except ValueError:
        return value
    return value.strip().lower()


def _declared(distilled: Sequence[Mapping]) -> dict[tuple[str, str], dict[str, str]]:
    """(task, teacher) -> the capacity / role / teacher_size its distilled rows declare."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for i, row in enumerate(distilled, start=1):
        values = {k: str(row[k]).strip() for k in TEACHER_DECLARED if not is_empty(row.get(k))}
        if not values:
            continue
        where = f"distilled row {i}"
        key = (row_text(row, "task", where), row_text(row, "teacher", where))
        have = out.setdefault(key, {})
        for k, v in values.items():
            if k in have and _normal(k, have[k]) != _normal(k, v):
                raise ValueError(
                    f"{where}: teacher {key[1]!r} of task {key[0]!r} has {k} {v!r} here but {have[k]!r} in another distilled row"
                )
            have[k] = v
    return out


def merged(teachers: Sequence[Mapping], distilled: Sequence[Mapping]) -> list[dict]:
    """The teacher rows completed with the distilled rows' declarations (new rows for teachers the
    teacher table lacks); a conflicting value raises ValueError."""
    declared = _declared(distilled)
    rows = []
    for i, t in enumerate(teachers, start=1):
        row = dict(t)
        key = (str(row.get("task", "")).strip(), str(row.get("teacher", "")).strip())
        for k, v in declared.pop(key, {}).items():
            if is_empty(row.get(k)):
                row[k] = v
            elif _normal(k, str(row[k])) != _normal(k, v):
                raise ValueError(
                    f"teacher row {i}: teacher {key[1]!r} of task {key[0]!r} has {k} {row[k]!r} in the "
                    f"teacher table but {v!r} in the distilled table"
                )
        rows.append(row)
    rows += [{"task": task, "teacher": teacher, **values} for (task, teacher), values in declared.items()]
    return rows


def with_named_sizes(per: Mapping[str, TeacherInfo], names: Sequence[str]) -> dict[str, TeacherInfo]:
    """``per`` with every unsized teacher (of ``per`` or ``names``, the distilled teachers) sized
    from its name where the name states a size; teachers the name does not size are left as they are."""
    out = dict(per)
    for name in dict.fromkeys([*per, *names]):
        info = out.get(name)
        if info is not None and info.params_b is not None:
            continue
        size = size_from_name(name)
        if size is None:
            continue
        info = info or TeacherInfo(name, None, None)
        out[name] = TeacherInfo(**{**info.__dict__, "params_b": size, "size_from_name": True})
    return out
