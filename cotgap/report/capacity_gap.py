"""The capacity-gap diagnostic for one pair of teachers in one setting.

The claim under test: *less capable teachers yield better students at the smallest student sizes,
with the advantage diminishing or reversing as the student grows.* With the teachers ordered by
capacity (:mod:`cotgap.report.capacity`) and the student sizes both teachers were distilled into,
``s_1 < … < s_n``, let ``adv(s) = acc(weaker's student at s) − acc(stronger's student at s)`` (seeds
averaged). The sizes are split into the smaller half ``s_1 … s_k`` and the larger half
``s_{n−k+1} … s_n`` with ``k = ⌊n/2⌋`` (the middle size of an odd ``n`` is in neither), and
``A_small`` / ``A_large`` are the mean advantages over each half. Verdict:

* *insufficient data* when the capacity order cannot be established or ``n < 2``;
* *capacity gap observed* iff ``A_small > m_small`` (the weaker teacher leads clearly among the
  small students) **and** ``A_small − A_large > m_drop`` (the lead shrinks clearly); ``detail`` says
  *reverses* when ``A_large < −m_large``, else *shrinks*;
* *no capacity gap* otherwise.

The margins follow from the test-set sizes (:class:`cotgap.report.noise.Noise`): each ``adv(s)``
has the standard error of a difference of two accuracies, a half's mean the error of a mean of
independent differences, and the drop the error of a difference of the two means; the margin is
``z`` such errors, or the explicit ``--noise-margin`` for all three.

Two readings, side by side: the rule above is the *statistical* reading (``verdict``); the
*descriptive* reading (``descriptive_verdict``) is how the seed paper reads its tables — the same
halves and means with no noise margin: *capacity gap observed* iff ``A_small > 0`` and
``A_small > A_large``. Where they differ, the descriptive gap lies within the test sets' noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cotgap.report.capacity import describe
from cotgap.report.noise import Noise, difference_se, mean_se, sum_se
from cotgap.report.results import GAP_OBSERVED, INSUFFICIENT, NO_GAP, CapacityGap, CapacityOrder

Scores = Mapping[str, Mapping[float, tuple[float, int | None]]]  # teacher -> size -> (accuracy, test n)


def _insufficient(
    setting: str,
    pair: list[str],
    order: CapacityOrder,
    accuracy: Mapping[str, float | None],
    detail: str,
    sizes: Sequence[str] = (),
    adv: Sequence[float] = (),
) -> CapacityGap:
    """An *insufficient data* diagnostic with this explanation."""
    return CapacityGap(
        setting,
        pair,
        order,
        accuracy.get(order.stronger or ""),
        accuracy.get(order.weaker or ""),
        list(sizes),
        list(adv),
        [],
        [],
        None,
        None,
        None,
        None,
        "",
        INSUFFICIENT,
        detail,
        descriptive_verdict=INSUFFICIENT,
        descriptive_detail=detail,
    )


def descriptive(a_small: float, a_large: float) -> tuple[str, str]:
    """The paper's descriptive reading of the two halves' mean advantages (no noise margin)."""
    if a_small > 0 and a_small > a_large:
        how = "reverses" if a_large < 0 else "shrinks"
        return (
            GAP_OBSERVED,
            f"the weaker teacher leads at the smaller sizes ({a_small:+.1f}) and the lead {how} "
            f"({a_large:+.1f} at the larger); no noise margin",
        )
    if a_small > 0:
        return NO_GAP, f"the weaker teacher's lead does not shrink ({a_small:+.1f} -> {a_large:+.1f}); no noise margin"
    return NO_GAP, f"the weaker teacher does not lead at the smaller sizes ({a_small:+.1f}); no noise margin"


def diagnose(
    setting: str,
    a: str,
    b: str,
    scores: Scores,
    labels: Mapping[float, str],
    order: CapacityOrder,
    accuracy: Mapping[str, float | None],
    noise: Noise,
) -> CapacityGap:
    """The diagnostic for teachers ``a`` and ``b`` (rule in the module docstring)."""
    pair = sorted((a, b))
    if not order.resolved:
        return _insufficient(setting, pair, order, accuracy, f"capacity cannot be established: {order.reason}")
    strong, weak = order.stronger, order.weaker
    common = sorted(set(scores[strong]) & set(scores[weak]))
    sizes = [labels[s] for s in common]
    adv = [scores[weak][s][0] - scores[strong][s][0] for s in common]
    if len(common) < 2:
        return _insufficient(
            setting,
            pair,
            order,
            accuracy,
            f"{strong} and {weak} share {len(common)} student size(s); at least 2 are needed",
            sizes,
            adv,
        )
    k = len(common) // 2
    small, large = common[:k], common[-k:]
    ses = {s: difference_se(scores[weak][s][0], scores[weak][s][1], scores[strong][s][0], scores[strong][s][1]) for s in common}
    a_small = sum(adv[:k]) / k
    a_large = sum(adv[-k:]) / k
    se_small, se_large = mean_se([ses[s] for s in small]), mean_se([ses[s] for s in large])
    m_small, m_large = noise.from_se(se_small, "smaller half"), noise.from_se(se_large, "larger half")
    m_drop = noise.from_se(sum_se(se_small, se_large), "drop")
    s_txt, l_txt = ", ".join(labels[s] for s in small), ", ".join(labels[s] for s in large)
    lead = (
        f"weaker teacher {weak} (stronger {strong}: {describe(order)}) leads by "
        f"{a_small:+.1f} on average at {s_txt} and {a_large:+.1f} at {l_txt}"
    )
    if a_small > m_small.points and a_small - a_large > m_drop.points:
        how = "reverses" if a_large < -m_large.points else "shrinks"
        verdict, detail = GAP_OBSERVED, f"{lead} (advantage {how}; margins {m_small.points:.1f} / {m_drop.points:.1f})"
    elif a_small > m_small.points:
        why = "persists" if a_large > m_large.points else f"does not shrink by more than {m_drop.points:.1f}"
        verdict, detail = NO_GAP, f"{lead}: the advantage {why}"
    else:
        verdict, detail = (
            NO_GAP,
            (
                f"weaker teacher {weak} does not beat {strong} by more than {m_small.points:.1f} "
                f"at the smaller sizes {s_txt} ({a_small:+.1f} on average)"
            ),
        )
    d_verdict, d_detail = descriptive(a_small, a_large)
    return CapacityGap(
        setting,
        pair,
        order,
        accuracy.get(strong),
        accuracy.get(weak),
        sizes,
        adv,
        [labels[s] for s in small],
        [labels[s] for s in large],
        a_small,
        a_large,
        m_small.points,
        m_drop.points,
        m_small.how,
        verdict,
        detail,
        margin_fallback=m_small.fallback,
        descriptive_verdict=d_verdict,
        descriptive_detail=d_detail,
    )
