"""Reading the result tables: CSV files, model sizes, numbers and checked row fields.

The analysis (:mod:`cotgap.report.analysis`), task selection
(:mod:`cotgap.report.selection`) and plots (:mod:`cotgap.report.plots`) all
take lists of row dicts, as produced by :func:`read_csv` (string values,
although numbers are accepted too).  The ``row_*`` accessors read one field of
such a row and check it.  Invalid input raises :class:`ValueError` with a
one-line message; the CLI turns that into exit status 2.

All accuracies are percentages (0-100).  Student sizes are strings such as
``"135M"`` or ``"1.5B"``; they are ordered by :func:`parse_size`.

Input tables
------------
task selection   ``task,model,role,accuracy``        (role: teacher | student)
distilled        ``setting,task,teacher,student,student_size,accuracy``
                 optional: ``ci_low,ci_high`` (95 % interval of distilled -
                 baseline, in points), ``updates`` (optimizer updates),
                 ``n`` (test examples), ``p_value`` (exact paired test of
                 distilled vs baseline) and/or ``wins,losses`` (test items
                 only the distilled / only the baseline student got right),
                 ``seed`` (training seed: rows differing only in it are
                 replicates)
baseline         ``task,student,student_size,accuracy``
teachers         ``task,teacher`` optional: ``accuracy`` (reported, not used
                 to order teachers), ``kept`` (distinct train questions with a
                 kept, i.e. correct, rationale), ``kept_rationales``,
                 ``teacher_size`` (e.g. ``7B``), ``cot_tokens`` / ``cot_words``
                 (mean rationale length), ``capacity`` (declared rank, higher =
                 more capacity), ``role`` (declared: strong / large / long vs
                 weak / small / short); any may be empty

A teacher's declared ``capacity``, ``role`` and ``teacher_size`` may also be given as columns of the
distilled table (as published tables often carry them); a teacher without a size anywhere is sized
from its name when the name says it the conventional way (``Qwen2.5-72B-Instruct`` -> 72B,
``qwen2.5-coder-1.5b-instruct`` -> 1.5B; :func:`size_from_name`). Columns a table does not know
are named in a warning (:func:`unknown_columns`), never silently dropped.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "parse_size",
    "read_csv",
    "is_empty",
    "row_text",
    "row_num",
    "row_accuracy",
    "row_count",
    "row_size",
    "TASK_SELECTION_COLUMNS",
    "DISTILLED_COLUMNS",
    "BASELINE_COLUMNS",
    "TEACHER_COLUMNS",
    "DISTILLED_OPTIONAL",
    "TEACHER_OPTIONAL",
    "TEACHER_DECLARED",
    "KNOWN_COLUMNS",
    "size_from_name",
    "unknown_columns",
    "EPS",
]

# Required columns of each input table (for read_csv).
TASK_SELECTION_COLUMNS = ("task", "model", "role", "accuracy")
DISTILLED_COLUMNS = ("setting", "task", "teacher", "student", "student_size", "accuracy")
BASELINE_COLUMNS = ("task", "student", "student_size", "accuracy")
TEACHER_COLUMNS = ("task", "teacher")
# Optional columns (written back by the report's tables/*.csv, read by the analysis).
DISTILLED_OPTIONAL = ("ci_low", "ci_high", "updates", "n", "seed", "p_value", "wins", "losses")
TEACHER_OPTIONAL = ("accuracy", "kept", "kept_rationales", "teacher_size", "cot_tokens", "cot_words", "capacity", "role")
# What a distilled row may declare about its teacher (read as the teacher table's columns).
TEACHER_DECLARED = ("capacity", "role", "teacher_size")
# Every column each table is read for (anything else is named in a warning); keyed by table.
KNOWN_COLUMNS = {
    "distilled": (*DISTILLED_COLUMNS, *DISTILLED_OPTIONAL, "kept", *TEACHER_DECLARED),
    "baseline": BASELINE_COLUMNS,
    "teachers": (*TEACHER_COLUMNS, *TEACHER_OPTIONAL),
}

# Comparisons of floats computed from percentages: values within EPS of a
# threshold count as *equal* to it (so 30.000000000004 is "exactly 30").
EPS = 1e-9

_NUMERIC_COLUMNS = (
    "accuracy",
    "kept",
    "ci_low",
    "ci_high",
    "updates",
    "n",
    "p_value",
    "wins",
    "losses",
    "kept_rationales",
    "cot_tokens",
    "cot_words",
    "capacity",
)
_SIZE_COLUMNS = ("student_size", "teacher_size")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([mMbB])\s*$")
# a size inside a model name: a number and M/B standing between separators ("-72B-", "_1.5b", "135m")
_NAME_SIZE_RE = re.compile(r"(?:^|[-_/:\s])(\d+(?:\.\d+)?)([mMbB])(?=$|[-_/:\s])")


# --------------------------------------------------------------------------
# Sizes and numbers
# --------------------------------------------------------------------------


def parse_size(s: str) -> float:
    """Parse a model size such as ``"135M"`` or ``"1.5B"`` into billions.

    ``"135M"`` -> 0.135, ``"0.5B"`` -> 0.5, ``"7B"`` -> 7.0, ``"14b"`` -> 14.0.
    Raises ValueError for anything else (including zero sizes).
    """
    if not isinstance(s, str):
        raise ValueError(f"invalid model size {s!r}: expected a string such as '135M' or '1.5B'")
    m = _SIZE_RE.match(s)
    if not m:
        raise ValueError(f"invalid model size {s!r}: expected a number followed by M or B, e.g. '135M' or '1.5B'")
    value = float(m.group(1))
    if value <= 0:
        raise ValueError(f"invalid model size {s!r}: size must be positive")
    return value / 1000.0 if m.group(2) in "mM" else value


def size_from_name(name: str) -> float | None:
    """The size (billions) a model name states the conventional way, or None.

    ``"Qwen2.5-72B-Instruct"`` -> 72.0, ``"Qwen2.5-0.5B"`` -> 0.5, ``"qwen2.5-coder-1.5b-instruct"``
    -> 1.5, ``"smollm2-135m-instruct"`` -> 0.135. None when the name states no size, states two
    different ones, or names a teacher set (``a+b``); a mixture such as ``8x7B`` is no single size.
    """
    if not isinstance(name, str) or "+" in name:
        return None
    found = {float(v) / (1000.0 if unit in "mM" else 1.0) for v, unit in _NAME_SIZE_RE.findall(name)}
    found.discard(0.0)
    return found.pop() if len(found) == 1 else None


def unknown_columns(rows: Iterable[Mapping], table: str) -> list[str]:
    """The columns of ``rows`` (as :func:`read_csv` returns them) that ``table`` (a key of
    ``KNOWN_COLUMNS``) does not read, in header order."""
    known = set(KNOWN_COLUMNS[table])
    header: dict[str, None] = {}
    for row in rows:
        header.update(dict.fromkeys(row))
    return [c for c in header if c not in known]


def is_empty(value: Any) -> bool:
    """Whether a table value is missing (None or blank), as an empty CSV field reads."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def _to_float(value: Any) -> float:
    """float() that rejects bools, NaN and infinities."""
    if isinstance(value, bool):
        raise ValueError
    x = float(value.strip()) if isinstance(value, str) else float(value)
    if not math.isfinite(x):
        raise ValueError
    return x


# --------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------


def read_csv(
    path: str | Path,
    required_columns: Iterable[str],
    numeric_columns: Iterable[str] | None = None,
) -> list[dict]:
    """Read a CSV file into a list of dicts (values stripped strings).

    Checks that every column in ``required_columns`` is in the header and has a
    non-empty value in every row, and that every non-empty value in
    ``numeric_columns`` is a finite number.  By default ``numeric_columns`` is
    whichever of the numeric columns listed in the module docstring the file
    has; ``student_size`` / ``teacher_size`` columns must hold valid sizes.
    Any problem raises ValueError with one line naming the file (and line).
    """
    path = Path(path)
    required = list(required_columns)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise ValueError(f"{path}: file is empty (expected a header row)") from None
            header = [h.strip() for h in header]
            _check_header(path, header, required)
            if numeric_columns is None:
                numeric = [c for c in _NUMERIC_COLUMNS if c in header]
            else:
                numeric = [c for c in numeric_columns if c in header]
            rows: list[dict] = []
            for raw in reader:
                if not raw or all(v.strip() == "" for v in raw):
                    continue  # blank line
                rows.append(_checked_row(f"{path}, line {reader.line_num}", raw, header, required, numeric))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV ({exc})") from None
    return rows


def _check_header(path: Path, header: list[str], required: list[str]) -> None:
    """Reject a header with duplicate columns or without every required column."""
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        raise ValueError(f"{path}: duplicate column(s) in header: {', '.join(dupes)}")
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(
            f"{path}: missing required column(s) {', '.join(repr(c) for c in missing)}"
            f" (header has: {', '.join(h for h in header if h) or 'nothing'})"
        )


def _checked_row(where: str, raw: list[str], header: list[str], required: list[str], numeric: list[str]) -> dict:
    """One CSV line as a dict, after checking its field count, required, numeric and size values."""
    if len(raw) > len(header):
        raise ValueError(f"{where}: {len(raw)} fields but the header has {len(header)}")
    values = [v.strip() for v in raw] + [""] * (len(header) - len(raw))
    row = {h: v for h, v in zip(header, values) if h}
    for c in required:
        if row[c] == "":
            raise ValueError(f"{where}: empty value in column {c!r}")
    for c in numeric:
        v = row[c]
        if v == "":
            continue
        try:
            _to_float(v)
        except ValueError:
            raise ValueError(f"{where}: column {c!r} has bad value {v!r} (expected a number)") from None
    for c in _SIZE_COLUMNS:
        if row.get(c, "") != "":
            try:
                parse_size(row[c])
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
    return row


# --------------------------------------------------------------------------
# Row fields
# --------------------------------------------------------------------------


def row_text(row: Mapping, key: str, where: str) -> str:
    """The stripped text of a required field; ``where`` names the row in the error."""
    value = row.get(key)
    if is_empty(value):
        raise ValueError(f"{where}: missing value for {key!r}")
    return str(value).strip()


def row_num(row: Mapping, key: str, where: str, *, optional: bool = False) -> float | None:
    """A finite number from a field (None for an empty ``optional`` one)."""
    value = row.get(key)
    if is_empty(value):
        if optional:
            return None
        raise ValueError(f"{where}: missing value for {key!r}")
    try:
        return _to_float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key!r} has bad value {value!r} (expected a number)") from None


def row_accuracy(row: Mapping, where: str, *, optional: bool = False) -> float | None:
    """The ``accuracy`` field (required unless ``optional``), checked to be a percentage (0-100)."""
    acc = row_num(row, "accuracy", where, optional=optional)
    if acc is None:
        return None
    if not 0.0 <= acc <= 100.0:
        raise ValueError(f"{where}: accuracy {acc:g} is outside 0-100 (expected percent)")
    return acc


def row_count(row: Mapping, key: str, where: str) -> int | None:
    """An optional non-negative whole number (``kept``, ``updates``); None when empty."""
    x = row_num(row, key, where, optional=True)
    if x is None:
        return None
    if x < 0 or not float(x).is_integer():
        raise ValueError(f"{where}: {key!r} must be a non-negative whole number, got {row.get(key)!r}")
    return int(x)


def row_size(row: Mapping, where: str) -> tuple[str, float]:
    """The ``student_size`` field as written and in billions of parameters."""
    label = row_text(row, "student_size", where)
    try:
        return label, parse_size(label)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
