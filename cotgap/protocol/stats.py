"""Distilled vs baseline on the same test items: McNemar's exact test decides the verdict, a paired
bootstrap interval shows the size of the difference, and Holm's method corrects a family of tests.

Why an exact test: the percentile bootstrap interval of a mean of a few ±1 differences is too
narrow for small counts (4 wins and 0 losses out of 20 items gives [+5, +40], which calls a
result "helped" that a fair coin produces one time in eight). The paired items that changed
(baseline wrong & distilled right = a *win*, the reverse = a *loss*) are, under "no effect",
Binomial(wins + losses, 1/2); McNemar's exact test is the two-sided binomial test on them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from cotgap.protocol.constants import ALPHA

TEST_NAME = "mcnemar-exact"
HELPED = "helped"
NO_CHANGE = "no significant change"
HURT = "hurt"
NO_DATA = "no data"


def mcnemar_p(wins: int, losses: int) -> float:
    """Two-sided exact McNemar p-value: ``min(1, 2·P(X ≤ min(wins, losses)))`` with
    ``X ~ Binomial(wins + losses, 1/2)``; 1 when no item changed.

    Computed by ``scipy.stats.binomtest`` (scipy is installed with mergekit and scikit-learn),
    whose two-sided p-value at p = 1/2 is exactly this doubled tail (the distribution is
    symmetric, so the outcomes at most as likely as the observed one are the two tails).
    """
    if wins < 0 or losses < 0:
        raise ValueError(f"wins and losses must be non-negative, got {wins} and {losses}")
    n = wins + losses
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return min(1.0, float(binomtest(min(wins, losses), n, 0.5, alternative="two-sided").pvalue))


def discordant(baseline: Sequence[bool], distilled: Sequence[bool]) -> tuple[int, int]:
    """(wins, losses): items the distilled student gets right and the baseline wrong, and the reverse."""
    wins = sum(1 for b, d in zip(baseline, distilled) if d and not b)
    losses = sum(1 for b, d in zip(baseline, distilled) if b and not d)
    return wins, losses


def verdict(p_value: float | None, wins: int | None, losses: int | None, alpha: float = ALPHA, diff: float | None = None) -> str:
    """Helped if ``p < alpha`` and wins > losses, hurt if ``p < alpha`` and losses > wins, else no
    significant change. Without win/loss counts the sign of ``diff`` gives the direction."""
    if p_value is None:
        return NO_DATA
    if p_value >= alpha:
        return NO_CHANGE
    if wins is not None and losses is not None:
        direction = wins - losses
    else:
        direction = diff or 0.0
    return HELPED if direction > 0 else HURT if direction < 0 else NO_CHANGE


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    Sorted ascending, ``p_(i)`` becomes ``max_{j ≤ i} min(1, (m − j + 1)·p_(j))`` (m = number of
    tests); a test is rejected at level alpha iff its adjusted p-value is below alpha. This
    controls the family-wise error rate for any dependence between the tests. (statsmodels'
    ``multipletests(method="holm")`` computes the same; it is not a dependency, so the few lines
    are here.)
    """
    m = len(p_values)
    for p in p_values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must lie in [0, 1], got {p!r}")
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def paired_bootstrap(
    baseline: Sequence[bool], distilled: Sequence[bool], iters: int = 10000, seed: int = 0, alpha: float = ALPHA
) -> dict:
    """Difference distilled − baseline in accuracy points with a (1−alpha) percentile interval.

    Both lists are per test example, in the same order (paired). The interval is for display: the
    verdict is the exact test's (:func:`compare`).
    """
    if len(baseline) != len(distilled):
        raise ValueError("paired bootstrap needs the same test examples before and after")
    n = len(baseline)
    if n == 0:
        return {"n": 0, "diff": 0.0, "low": 0.0, "high": 0.0}
    d = [int(b2) - int(b1) for b1, b2 in zip(baseline, distilled)]
    rng = random.Random(seed)
    stats = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(iters))
    low = stats[int(iters * alpha / 2)]
    high = stats[min(iters - 1, int(iters * (1 - alpha / 2)))]
    return {
        "n": n,
        "baseline": 100 * sum(baseline) / n,
        "distilled": 100 * sum(distilled) / n,
        "diff": 100 * sum(d) / n,
        "low": 100 * low,
        "high": 100 * high,
        "confidence": 1 - alpha,
        "iters": iters,
    }


def compare(
    baseline: Sequence[bool], distilled: Sequence[bool], *, iters: int = 10000, seed: int = 0, alpha: float = ALPHA
) -> dict:
    """The paired comparison of one run: the bootstrap interval (display) plus McNemar's exact test
    (``test``, ``p_value``, ``wins``, ``losses``, ``alpha``) and the verdict it decides."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    out = paired_bootstrap(baseline, distilled, iters=iters, seed=seed, alpha=alpha)
    if out["n"] == 0:
        return {**out, "test": TEST_NAME, "p_value": None, "wins": 0, "losses": 0, "alpha": alpha, "verdict": NO_DATA}
    wins, losses = discordant(baseline, distilled)
    p = mcnemar_p(wins, losses)
    return {
        **out,
        "test": TEST_NAME,
        "p_value": p,
        "wins": wins,
        "losses": losses,
        "alpha": alpha,
        "verdict": verdict(p, wins, losses, alpha),
    }
