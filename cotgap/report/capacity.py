"""Which teacher has more capacity: the ordering behind "stronger" and "weaker" in the report.

The capacity gap is about capacity, not about how many questions a teacher happens to solve, so
few-shot accuracy is reported and never used to order teachers. Two teachers are compared by the
first of these that separates them:

1. a declared ``capacity`` rank (teacher CSV; higher = more capacity), when both have one;
2. a declared ``role`` (teacher CSV: ``strong`` / ``large`` / ``long`` above ``weak`` / ``small`` /
   ``short``), when both have one;
3. parameter counts, when both are known and differ by at least ``ratio`` (CAPACITY_RATIO): a
   small–large comparison;
4. mean CoT length (tokens of the student's tokenizer, else words), when both parameter counts are
   within ``ratio`` of each other (one size class) or both unknown (e.g. scripted teachers), and
   the lengths differ by at least ``ratio``: a short–long comparison.

Otherwise the order is unresolved and :attr:`CapacityOrder.reason` says what is missing; callers
report "insufficient data" rather than guess.
"""

from __future__ import annotations

from collections.abc import Sequence

from cotgap.protocol.constants import CAPACITY_RATIO
from cotgap.report.results import CapacityOrder, TeacherInfo

ROLE_RANK = {"strong": 1, "large": 1, "long": 1, "weak": 0, "small": 0, "short": 0}


def parse_role(value: str, where: str) -> str:
    """A declared role, lower-cased; ValueError naming the accepted words otherwise."""
    role = value.strip().lower()
    if role not in ROLE_RANK:
        raise ValueError(f"{where}: role {value!r} is not one of {', '.join(ROLE_RANK)}")
    return role


def value_text(basis: str | None, value) -> str:
    """A capacity value as shown: ``1.5B``, ``412 tokens``, ``large``, ``rank 2``."""
    if value is None:
        return "?"
    if basis == "parameters":
        return f"{value:.3g}B"
    if basis == "mean CoT tokens":
        return f"{value:g} tokens"
    if basis == "mean CoT words":
        return f"{value:g} words"
    if basis == "declared capacity":
        return f"rank {value:g}"
    return str(value)


def describe(order: CapacityOrder) -> str:
    """``"parameters 1.5B vs 0.5B"``: the basis and the two values, stronger first."""
    return f"{order.basis} {value_text(order.basis, order.stronger_value)} vs {value_text(order.basis, order.weaker_value)}"


def _ordered(a: TeacherInfo, b: TeacherInfo, basis: str, va, vb) -> CapacityOrder:
    """``a`` and ``b`` ordered by the values ``va`` / ``vb`` (higher = more capacity)."""
    if va >= vb:
        return CapacityOrder(a.teacher, b.teacher, basis, va, vb)
    return CapacityOrder(b.teacher, a.teacher, basis, vb, va)


def _apart(x: float, y: float, ratio: float) -> bool:
    """Whether two positive measures differ by at least the factor ``ratio``."""
    lo, hi = sorted((x, y))
    return lo <= 0 < hi or (lo > 0 and hi / lo >= ratio)


def _by_cot(a: TeacherInfo, b: TeacherInfo, ratio: float, size_note: str) -> CapacityOrder:
    """The short–long comparison: mean CoT tokens (else words) of both teachers."""
    for basis, key in (("mean CoT tokens", "cot_tokens"), ("mean CoT words", "cot_words")):
        va, vb = getattr(a, key), getattr(b, key)
        if va is None or vb is None:
            continue
        if _apart(va, vb, ratio):
            return _ordered(a, b, basis, va, vb)
        return CapacityOrder(
            None,
            None,
            None,
            reason=(
                f"{a.teacher} and {b.teacher} {size_note} and their {basis} ({va:g} vs {vb:g}) are within "
                f"{ratio:g}x: neither has more capacity"
            ),
        )
    return CapacityOrder(
        None, None, None, reason=(f"{a.teacher} and {b.teacher} {size_note} and the CoT length of one is unknown")
    )


def compare(
    a: TeacherInfo | None, b: TeacherInfo | None, ratio: float = CAPACITY_RATIO, names: Sequence[str] = ()
) -> CapacityOrder:
    """Which of ``a`` and ``b`` has more capacity (rules in the module docstring)."""
    if a is None or b is None:
        missing = [n for n, t in zip(names, (a, b)) if t is None] or ["a teacher"]
        return CapacityOrder(None, None, None, reason=f"no teacher data for {' and '.join(missing)}")
    if a.capacity is not None and b.capacity is not None:
        if a.capacity != b.capacity:
            return _ordered(a, b, "declared capacity", a.capacity, b.capacity)
        return CapacityOrder(None, None, None, reason=f"{a.teacher} and {b.teacher} declare the same capacity")
    if a.role is not None and b.role is not None:
        if ROLE_RANK[a.role] != ROLE_RANK[b.role]:
            order = _ordered(a, b, "declared role", ROLE_RANK[a.role], ROLE_RANK[b.role])
            order.stronger_value, order.weaker_value = (a.role, b.role) if order.stronger == a.teacher else (b.role, a.role)
            return order
        return CapacityOrder(None, None, None, reason=f"{a.teacher} and {b.teacher} declare the same role")
    pa, pb = a.params_b, b.params_b
    if pa is not None and pb is not None:
        if _apart(pa, pb, ratio):
            return _ordered(a, b, "parameters", pa, pb)
        return _by_cot(a, b, ratio, f"are one size class ({pa:g}B vs {pb:g}B, within {ratio:g}x)")
    if pa is None and pb is None:
        return _by_cot(a, b, ratio, "have unknown parameter counts")
    unknown = a.teacher if pa is None else b.teacher
    return CapacityOrder(None, None, None, reason=f"the parameter count of {unknown} is unknown")


def rank(teachers: Sequence[TeacherInfo], ratio: float = CAPACITY_RATIO) -> tuple[list[TeacherInfo], CapacityOrder | None]:
    """The teachers strongest first and the strongest-vs-weakest order, when every pair is ordered
    consistently; otherwise the teachers in name order and None."""
    ts = sorted(teachers, key=lambda t: t.teacher)
    if len(ts) < 2:
        return ts, None
    beats: dict[str, int] = {t.teacher: 0 for t in ts}
    for i, a in enumerate(ts):
        for b in ts[i + 1 :]:
            o = compare(a, b, ratio)
            if not o.resolved:
                return ts, None
            beats[o.stronger] += 1  # type: ignore[index]
    if sorted(beats.values()) != list(range(len(ts))):  # not a total order
        return ts, None
    ordered = sorted(ts, key=lambda t: -beats[t.teacher])
    return ordered, compare(ordered[0], ordered[-1], ratio)
