"""cotgap.protocol.stats: McNemar's exact test decides the verdict, Holm corrects a family.

Pure functions on hand-made inputs; the expected p-values are worked out next to them.
"""

from __future__ import annotations

import math

import pytest

from cotgap.protocol.stats import HELPED, HURT, NO_CHANGE, compare, holm, mcnemar_p, verdict


def _exact(wins: int, losses: int) -> float:
    """The definition: min(1, 2 P(X <= min(w, l))), X ~ Binomial(w + l, 1/2), by an exact sum."""
    n = wins + losses
    return 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n)


@pytest.mark.parametrize(
    "wins, losses, p, expected",
    [
        (4, 0, 0.125, NO_CHANGE),  # 2 / 2^4: what the bootstrap interval [+5, +40] called "helped"
        (9, 0, 2 / 512, HELPED),  # 0.0039 < 0.05, wins > losses
        (0, 9, 2 / 512, HURT),
        (5, 0, 0.0625, NO_CHANGE),  # the smallest all-wins count that is not enough
        (6, 0, 0.03125, HELPED),
        (3, 3, 1.0, NO_CHANGE),  # 2 P(X <= 3) > 1, capped
        (0, 0, 1.0, NO_CHANGE),  # no discordant item
        (10, 2, 2 * 79 / 4096, HELPED),  # 2 (1 + 12 + 66) / 2^12 = 0.0386
    ],
)
def test_mcnemar_exact_decides(wins, losses, p, expected):
    assert mcnemar_p(wins, losses) == pytest.approx(p, rel=1e-12)
    assert verdict(mcnemar_p(wins, losses), wins, losses) == expected


def test_mcnemar_matches_the_exact_binomial_sum():
    for wins in range(15):
        for losses in range(15):
            assert mcnemar_p(wins, losses) == pytest.approx(_exact(wins, losses), rel=1e-12, abs=1e-15)


def test_verdict_alpha_and_direction():
    assert verdict(0.04, 6, 1, alpha=0.05) == HELPED
    assert verdict(0.04, 6, 1, alpha=0.01) == NO_CHANGE
    assert verdict(0.05, 9, 0, alpha=0.05) == NO_CHANGE  # p must be strictly below alpha
    assert verdict(0.001, None, None, diff=-3.0) == HURT  # direction from the difference without counts
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_p(-1, 2)


def test_holm_known_example():
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.2]) == [0.2] and holm([]) == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.5])


def test_compare_report_fields():
    # 20 items: baseline right on 0-9; distilled right on 0-9 and 10-13 -> 4 wins, 0 losses
    base = [i < 10 for i in range(20)]
    dist = [i < 14 for i in range(20)]
    r = compare(base, dist, iters=500, seed=0)
    assert (r["test"], r["wins"], r["losses"]) == ("mcnemar-exact", 4, 0)
    assert r["p_value"] == pytest.approx(0.125) and r["verdict"] == NO_CHANGE
    assert r["diff"] == pytest.approx(20.0) and r["low"] > 0  # the interval alone would have said "helped"
    assert r["alpha"] == 0.05 and r["confidence"] == pytest.approx(0.95)
    assert compare([], [], iters=100)["verdict"] == "no data"
    with pytest.raises(ValueError, match="alpha"):
        compare(base, dist, alpha=1.0)
