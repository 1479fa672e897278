"""Protocol rules checked by the core before and between strategy hooks."""

from __future__ import annotations

from cotgap.errors import ProtocolError


def human_size(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def check_student_smaller(student, teachers, *, exempt=("scripted",)) -> dict[str, int]:
    """Refuse a student that is not strictly smaller than every (model) teacher.

    Parameter counts read no weights (``count_params``: a local checkpoint's safetensors headers,
    else the model built from its config on the meta device).
    Returns the counts by model spec, for the manifest.
    """
    sizes = {student.spec: student.n_params}
    for t in teachers:
        if getattr(t, "kind", None) in exempt:
            continue
        sizes[t.spec] = t.n_params
        if sizes[student.spec] >= sizes[t.spec]:
            raise ProtocolError(
                f"student {student.spec} ({human_size(sizes[student.spec])}) is not smaller than teacher "
                f"{t.spec} ({human_size(sizes[t.spec])}); the protocol requires student < every teacher"
            )
    return sizes


def check_filter_subset(source: str, given: list[dict], kept: list[dict]) -> None:
    """The ``filter`` hook may only select from the one source it was given: each returned record
    must equal (every field) a distinct record it was given — no duplicates, no edits."""
    from collections import Counter

    available = Counter(_canonical(r) for r in given)
    for r in kept:
        c = _canonical(r) if isinstance(r, dict) else None
        if c is None or available[c] < 1:
            seen = c is not None and c in {_canonical(g) for g in given}
            what = "more times than it was given" if seen else "that it was not given, or altered"
            doc = r.get("doc_id") if isinstance(r, dict) else r
            raise ProtocolError(
                f"filter for source {source!r} returned a record {what} (doc {doc}); "
                "filters must select a subset of one teacher's generations, unchanged"
            )
        available[c] -= 1


def _canonical(record: dict) -> str:
    import json

    return json.dumps(record, sort_keys=True, default=str)
