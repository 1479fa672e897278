"""Protocol rules checked by the core before and between strategy hooks."""

from __future__ import annotations

from cotgap.errors import ProtocolError


def human_size(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def check_student_smaller(student, teachers, *, exempt=("scripted",)) -> dict[str, int]:
    """Refuse a student that is not strictly smaller than every (model) teacher.

    Parameter counts come from configs only (``count_params`` builds models on the meta device).
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
    """The ``filter`` hook may only select from the one source it was given."""
    allowed = {(r["doc_id"], r.get("sample", 0), r["response"]) for r in given}
    for r in kept:
        if (r.get("doc_id"), r.get("sample", 0), r.get("response")) not in allowed:
            raise ProtocolError(
                f"filter for source {source!r} returned a record it was not given (doc {r.get('doc_id')}); "
                "filters must select a subset of one teacher's generations"
            )
