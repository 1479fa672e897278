"""Distilled vs baseline: paired bootstrap over test examples and a verdict."""

from __future__ import annotations

import random


def paired_bootstrap(baseline: list[bool], distilled: list[bool], iters: int = 10000, seed: int = 0,
                     alpha: float = 0.05) -> dict:
    """Difference distilled − baseline in accuracy points with a (1−alpha) percentile interval.

    Both lists are per test example, in the same order (paired).
    """
    if len(baseline) != len(distilled):
        raise ValueError("paired bootstrap needs the same test examples before and after")
    n = len(baseline)
    if n == 0:
        return {"n": 0, "diff": 0.0, "low": 0.0, "high": 0.0, "verdict": "no data"}
    d = [int(b2) - int(b1) for b1, b2 in zip(baseline, distilled)]
    rng = random.Random(seed)
    stats = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(iters))
    low = stats[int(iters * alpha / 2)]
    high = stats[min(iters - 1, int(iters * (1 - alpha / 2)))]
    diff = sum(d) / n
    return {
        "n": n,
        "baseline": 100 * sum(baseline) / n,
        "distilled": 100 * sum(distilled) / n,
        "diff": 100 * diff,
        "low": 100 * low,
        "high": 100 * high,
        "confidence": 1 - alpha,
        "iters": iters,
        "verdict": verdict(low, high),
    }


def verdict(low: float, high: float) -> str:
    if low > 0:
        return "helped"
    if high < 0:
        return "hurt"
    return "no significant change"
