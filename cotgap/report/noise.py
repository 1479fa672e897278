"""Noise margins of the cross-run report, from the test-set size.

A difference of two accuracies measured on ``n`` test items is noise unless it exceeds ``z``
standard errors of such a difference. Each accuracy's standard error uses the Agresti–Caffo
adjustment ``p̃ = (x + 1) / (n + 2)``, ``SE = sqrt(p̃(1 − p̃) / (n + 2))``, so an accuracy of 0 % or
100 % still has a positive error (a plain ``sqrt(p(1−p)/n)`` would call any change from 0 % real).
The two accuracies are treated as independent: students evaluated on the same items are usually
positively correlated, which makes this margin conservative (too wide, not too narrow).

``z`` defaults to ``NOISE_Z`` (1.96, a two-sided 95 % band). An explicit margin in points (the
report's ``--noise-margin``) overrides the computed one everywhere; where the test-set size is
unknown (external CSV rows without ``n``) and none is given, the margin falls back to
``FALLBACK_NOISE_MARGIN`` points and says so.

Example: 50 % vs 55 % at n = 20 is within 1.96 × 15.0 = 29.5 points (noise); at n = 2000 the
margin is 1.96 × 1.58 = 3.1 points, so the same 5 points are not noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cotgap.protocol.constants import FALLBACK_NOISE_MARGIN, NOISE_Z


def accuracy_se(p: float, n: int) -> float:
    """Agresti–Caffo standard error (points) of an accuracy of ``p`` % on ``n`` items."""
    if n < 1:
        raise ValueError(f"test-set size must be at least 1, got {n}")
    x = min(max(p, 0.0), 100.0) / 100.0 * n
    pt = (x + 1.0) / (n + 2.0)
    return 100.0 * math.sqrt(pt * (1.0 - pt) / (n + 2.0))


def difference_se(p1: float, n1: int | None, p2: float, n2: int | None) -> float | None:
    """Standard error (points) of ``p1 − p2``, or None when a test-set size is unknown."""
    if not n1 or not n2:
        return None
    return math.sqrt(accuracy_se(p1, n1) ** 2 + accuracy_se(p2, n2) ** 2)


def mean_se(ses: Sequence[float | None]) -> float | None:
    """Standard error of the mean of independent differences with these errors (None if any is unknown)."""
    if not ses or any(s is None for s in ses):
        return None
    return math.sqrt(sum(s * s for s in ses)) / len(ses)  # type: ignore[operator]


def sum_se(*ses: float | None) -> float | None:
    """Standard error of a sum or difference of independent estimates (None if any is unknown)."""
    if any(s is None for s in ses):
        return None
    return math.sqrt(sum(s * s for s in ses))  # type: ignore[operator]


@dataclass(frozen=True)
class Margin:
    """A noise margin in points and how it was obtained."""

    points: float
    how: str
    fallback: bool = False


@dataclass(frozen=True)
class Noise:
    """The margin rule: ``z`` standard errors, or the explicit override ``margin`` (points)."""

    z: float = NOISE_Z
    margin: float | None = None

    def __post_init__(self):
        if not (math.isfinite(self.z) and self.z > 0):
            raise ValueError(f"noise z must be a positive number, got {self.z!r}")
        if self.margin is not None and not (math.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"noise margin must be a non-negative number, got {self.margin!r}")

    def from_se(self, se: float | None, what: str = "") -> Margin:
        """The margin for an estimate with standard error ``se`` (None: unknown test-set size)."""
        if self.margin is not None:
            return Margin(self.margin, f"--noise-margin {self.margin:g}")
        if se is None:
            return Margin(
                FALLBACK_NOISE_MARGIN, f"fixed {FALLBACK_NOISE_MARGIN:g}-point margin (test-set size unknown)", fallback=True
            )
        return Margin(self.z * se, f"{self.z:g} × SE {se:.2f}{f' ({what})' if what else ''}")

    def of_difference(self, p1: float, n1: int | None, p2: float, n2: int | None) -> Margin:
        """The margin of a difference of two accuracies measured on ``n1`` and ``n2`` items."""
        n_txt = f"n = {n1}" if n1 == n2 else f"n = {n1} and {n2}"
        return self.from_se(difference_se(p1, n1, p2, n2), n_txt)
