"""Tests for cotgap.report.analysis (with its tables, selection, JSON and terminal modules) and cotgap.report.plots.

Every table below is small and hand-made; the expected answers are worked
out by hand in the comments next to them.
"""

from __future__ import annotations

import io
import json
import math
import struct

import pytest

from cotgap.report.analysis import (
    DO_NOT_DISTIL,
    GAP_OBSERVED,
    HELPED,
    HURT,
    INSUFFICIENT,
    NO_CHANGE,
    NO_GAP,
    analyse,
)
from cotgap.report.analysis_json import to_json
from cotgap.report.noise import Noise
from cotgap.report.plots import plot_accuracy_vs_size, plot_filter_ablation, plot_kept
from cotgap.report.results import BY_ACCURACY, BY_TIE, BY_TIE_BREAK
from cotgap.report.selection import select_tasks
from cotgap.report.tables import TEACHER_COLUMNS, parse_size, read_csv
from cotgap.report.teacher_data import per_teacher, teacher_of
from cotgap.report.terminal import render_selection, render_tables

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def D(setting, task, teacher, size, acc, **extra):
    """A distilled row; the student is named after its size."""
    row = {
        "setting": setting,
        "task": task,
        "teacher": teacher,
        "student": f"S-{size}",
        "student_size": size,
        "accuracy": str(acc),
    }
    row.update({k: str(v) for k, v in extra.items()})
    return row


def B(task, size, acc):
    return {"task": task, "student": f"S-{size}", "student_size": size, "accuracy": str(acc)}


def T(task, teacher, acc, kept="", **extra):
    row = {"task": task, "teacher": teacher, "accuracy": str(acc), "kept": str(kept)}
    row.update({k: str(v) for k, v in extra.items()})
    return row


def by_task(analyses):
    return {a.task: a for a in analyses}


# ---------------------------------------------------------------------------
# parse_size
# ---------------------------------------------------------------------------


def test_parse_size_values():
    assert parse_size("135M") == pytest.approx(0.135)
    assert parse_size("0.5B") == 0.5
    assert parse_size("1.5B") == 1.5
    assert parse_size("7B") == 7.0
    assert parse_size("14b") == 14.0
    assert parse_size(" 360m ") == pytest.approx(0.36)


def test_sizes_sort_numerically():
    sizes = ["7B", "135M", "1.5B", "0.5B", "14b", "360M"]
    # As strings this would be 0.5B, 1.5B, 135M, 14b, 360M, 7B -- wrong.
    # Numerically: 0.135 < 0.36 < 0.5 < 1.5 < 7 < 14.
    assert sorted(sizes, key=parse_size) == ["135M", "360M", "0.5B", "1.5B", "7B", "14b"]


@pytest.mark.parametrize("bad", ["7", "7X", "B", "-1B", "0B", "", "1.5 GB", "one B", "1e3M"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError) as exc:
        parse_size(bad)
    msg = str(exc.value)
    assert "\n" not in msg and "size" in msg


# ---------------------------------------------------------------------------
# task selection
# ---------------------------------------------------------------------------


def test_select_tasks():
    rows = [
        # gsm8k: teachers (80+90)/2 = 85, students (20+40)/2 = 30 -> gap 55 -> selected
        {"task": "gsm8k", "model": "T-7B", "role": "teacher", "accuracy": "80"},
        {"task": "gsm8k", "model": "T-14B", "role": "teacher", "accuracy": "90"},
        {"task": "gsm8k", "model": "S-0.5B", "role": "student", "accuracy": "20"},
        {"task": "gsm8k", "model": "S-1.5B", "role": "Student", "accuracy": "40"},
        # exact: teachers (70+50)/2 = 60, students (40+20)/2 = 30 -> gap exactly 30 -> NOT selected
        {"task": "exact", "model": "T-7B", "role": "teacher", "accuracy": "70"},
        {"task": "exact", "model": "T-14B", "role": "teacher", "accuracy": "50"},
        {"task": "exact", "model": "S-0.5B", "role": "student", "accuracy": "40"},
        {"task": "exact", "model": "S-1.5B", "role": "student", "accuracy": "20"},
        # float: teachers (60.1+59.9)/2 = 60 (up to rounding), student 30 -> gap 30 -> NOT selected
        {"task": "float", "model": "T-7B", "role": "teacher", "accuracy": "60.1"},
        {"task": "float", "model": "T-14B", "role": "teacher", "accuracy": "59.9"},
        {"task": "float", "model": "S-0.5B", "role": "student", "accuracy": "30"},
        # above: teacher 60.5, student 30 -> gap 30.5 -> selected
        {"task": "above", "model": "T-7B", "role": "teacher", "accuracy": "60.5"},
        {"task": "above", "model": "S-0.5B", "role": "student", "accuracy": "30"},
    ]
    sel = {s.task: s for s in select_tasks(rows)}
    assert [s.task for s in select_tasks(rows)] == ["gsm8k", "exact", "float", "above"]
    assert sel["gsm8k"].teacher_mean == 85 and sel["gsm8k"].student_mean == 30
    assert sel["gsm8k"].gap == 55 and sel["gsm8k"].selected
    assert sel["exact"].gap == 30 and not sel["exact"].selected
    assert sel["float"].gap == pytest.approx(30) and not sel["float"].selected
    assert sel["above"].gap == 30.5 and sel["above"].selected
    # a lower threshold selects "exact" (30 > 29)
    assert {s.task for s in select_tasks(rows, threshold=29) if s.selected} == {"gsm8k", "exact", "float", "above"}


def test_select_tasks_errors():
    with pytest.raises(ValueError, match="role"):
        select_tasks([{"task": "t", "model": "m", "role": "mentor", "accuracy": "50"}])
    with pytest.raises(ValueError, match="no student"):
        select_tasks([{"task": "t", "model": "m", "role": "teacher", "accuracy": "50"}])
    with pytest.raises(ValueError, match="no teacher"):
        select_tasks([{"task": "t", "model": "m", "role": "student", "accuracy": "50"}])
    with pytest.raises(ValueError, match="bad value"):
        select_tasks([{"task": "t", "model": "m", "role": "student", "accuracy": "n/a"}])
    with pytest.raises(ValueError, match="0-100"):
        select_tasks([{"task": "t", "model": "m", "role": "student", "accuracy": "130"}])


# ---------------------------------------------------------------------------
# effectiveness, kept ratio, recommendation
# ---------------------------------------------------------------------------

BASELINE = [
    # pre-distillation few-shot accuracy of each student
    B("eff", "0.5B", 20),
    B("eff", "1.5B", 30),
    B("eff", "3B", 40),
    B("ineff", "0.5B", 20),
    B("ineff", "1.5B", 30),
    B("ineff", "3B", 40),
]

DISTILLED = [
    # eff (no test-set size, no test: the fixed 1-point fallback margin):
    #   14B: 0.5B 25 (+5 helped), 1.5B 36 (+6 helped), 3B 40.5 (+0.5 no change)
    #   7B:  0.5B 28 (+8 helped), 1.5B 37 (+7 helped), 3B 39   (-1.0 = -margin -> no change)
    #   helped 4 of 6 > half -> effective
    #   means: 14B (25+36+40.5)/3 = 33.83, 7B (28+37+39)/3 = 34.67 -> 7B best on average
    D("plain", "eff", "14B", "0.5B", 25),
    D("plain", "eff", "14B", "1.5B", 36),
    D("plain", "eff", "14B", "3B", 40.5),
    D("plain", "eff", "7B", "0.5B", 28),
    D("plain", "eff", "7B", "1.5B", 37),
    D("plain", "eff", "7B", "3B", 39),
    # ineff:
    #   14B: 0.5B 22 (+2 helped), 1.5B 30 (0 no change), 3B 35 (-5 hurt)
    #   7B:  0.5B 23 (+3 helped), 1.5B 31 (+1.0 = margin -> no change), 3B 45 (+5 helped)
    #   helped 3 of 6 = exactly half -> NOT effective
    D("plain", "ineff", "14B", "0.5B", 22),
    D("plain", "ineff", "14B", "1.5B", 30),
    D("plain", "ineff", "14B", "3B", 35),
    D("plain", "ineff", "7B", "0.5B", 23),
    D("plain", "ineff", "7B", "1.5B", 31),
    D("plain", "ineff", "7B", "3B", 45),
]


def test_effectiveness_and_verdicts():
    res = by_task(analyse(DISTILLED, BASELINE))
    eff, ineff = res["eff"], res["ineff"]
    verdicts = {(c.teacher, c.student_size): (c.diff, c.verdict) for c in eff.cells}
    assert verdicts[("14B", "0.5B")] == (5, HELPED)
    assert verdicts[("14B", "3B")] == (0.5, NO_CHANGE)
    assert verdicts[("7B", "3B")] == (-1.0, NO_CHANGE)  # exactly the margin
    assert (eff.n_helped, eff.n_no_change, eff.n_hurt, eff.n_cells) == (4, 2, 0, 6)
    assert eff.effective
    # cells are ordered by numeric student size
    assert [c.student_size for c in eff.cells][::2] == ["0.5B", "1.5B", "3B"]

    assert (ineff.n_helped, ineff.n_no_change, ineff.n_hurt) == (3, 2, 1)
    assert not ineff.effective  # 3 of 6 is not MORE than half
    assert ineff.recommendation == DO_NOT_DISTIL
    assert ineff.recommended_teacher is None
    assert "3 of 6" in ineff.reason


def test_noise_margin_parameter():
    # With margin 0.4 the eff cell 14B->3B (+0.5) becomes "helped" and 7B->3B (-1.0) "hurt".
    eff = by_task(analyse(DISTILLED, BASELINE, noise_margin=0.4))["eff"]
    assert (eff.n_helped, eff.n_no_change, eff.n_hurt) == (5, 0, 1)


def test_intervals_override_noise_margin():
    base = [B("t", "0.5B", 20), B("t", "1.5B", 30), B("t", "3B", 40)]
    dist = [
        # diff +5 but the interval includes 0 -> no significant change
        D("plain", "t", "A", "0.5B", 25, ci_low=-0.5, ci_high=10.5),
        # diff +0.5 (< margin) but interval above 0 -> helped
        D("plain", "t", "A", "1.5B", 30.5, ci_low=0.2, ci_high=0.8),
        # diff -0.5 but interval below 0 -> hurt
        D("plain", "t", "A", "3B", 39.5, ci_low=-0.9, ci_high=-0.1),
    ]
    a = analyse(dist, base)[0]
    assert [c.verdict for c in a.cells] == [NO_CHANGE, HELPED, HURT]
    assert not a.effective  # 1 of 3
    with pytest.raises(ValueError, match="ci_low"):
        analyse([D("plain", "t", "A", "3B", 39.5, ci_low=-0.9)], base)


# Teacher sizes for the "eff" / "ineff" tables: 14B has more capacity than 7B (by parameters).
SIZES = {"14B": "14B", "7B": "7B"}


def TS(task, teacher, acc, kept=""):
    """A teacher row whose size is its name."""
    return T(task, teacher, acc, kept, teacher_size=SIZES[teacher])


def test_kept_ratio_breaks_a_tie_at_the_boundary():
    # eff means: 7B 34.67, 14B 33.83: 0.83 apart, within the fixed 1-point fallback margin (the
    # rows have no test-set size) -> tied; kept 1300 / 1000 = 1.3 exactly >= 1.3 -> 14B
    eff = by_task(analyse(DISTILLED, BASELINE, [TS("eff", "14B", 80, 1300), TS("eff", "7B", 60, 1000)]))["eff"]
    assert (eff.strongest_teacher, eff.weakest_teacher, eff.capacity_basis) == ("14B", "7B", "parameters")
    assert eff.kept_ratio == pytest.approx(1.3)
    assert eff.recommended_teacher == "14B" and eff.decided_by == BY_TIE_BREAK
    assert "tied within noise" in eff.reason and "1.30x" in eff.reason
    assert any("fixed 1-point fallback" in w for w in eff.warnings)  # the fallback margin is announced


def test_kept_ratio_below_threshold_leaves_the_tie():
    # kept 1299 / 1000 = 1.299 < 1.3: nothing breaks the tie -> the best mean (7B) is named, as a tie
    eff = by_task(analyse(DISTILLED, BASELINE, [TS("eff", "14B", 80, 1299), TS("eff", "7B", 60, 1000)]))["eff"]
    assert eff.kept_ratio == pytest.approx(1.299)
    assert eff.recommended_teacher == "7B" and eff.recommendation == "prefer teacher 7B"
    assert eff.decided_by == BY_TIE and "do not separate" in eff.reason
    assert [m.teacher for m in eff.mean_scores] == ["7B", "14B"]
    assert eff.mean_scores[0].mean == pytest.approx(104 / 3)


def test_kept_unknown_leaves_the_tie():
    eff = by_task(analyse(DISTILLED, BASELINE, [TS("eff", "14B", 80), TS("eff", "7B", 60)]))["eff"]
    assert eff.kept_ratio is None and eff.recommended_teacher == "7B"
    assert eff.decided_by == BY_TIE and "unknown" in eff.reason


# Two teachers at two student sizes; every cell helped by its exact test (20 wins, 0 losses).
# A keeps 1300 questions, B 1000 (ratio 1.3), but B's students score 10 points more on average
# (A 40, 50 -> 45; B 50, 60 -> 55). Margin of a 45 vs 55 difference: 1.96 x 15.3 = 30.0 at n = 20
# (tied), 1.96 x 1.57 = 3.1 at n = 2000 (not tied).
@pytest.mark.parametrize(
    "n, margin, teacher, rule",
    [
        (2000, None, "B", BY_ACCURACY),  # a measured difference: the kept ratio does not override it
        (20, None, "A", BY_TIE_BREAK),  # within noise at n = 20: the kept ratio breaks the tie
        (2000, 15, "A", BY_TIE_BREAK),  # an explicit --noise-margin overrides the computed one
        (20, 5, "B", BY_ACCURACY),
    ],
)
def test_kept_ratio_only_breaks_ties(n, margin, teacher, rule):
    base = [B("t", "0.5B", 20), B("t", "1.5B", 30)]
    dist = [
        D("plain", "t", t, s, acc, n=n, wins=20, losses=0)
        for t, s, acc in (("A", "0.5B", 40), ("A", "1.5B", 50), ("B", "0.5B", 50), ("B", "1.5B", 60))
    ]
    (a,) = analyse(dist, base, [T("t", "A", 80, 1300), T("t", "B", 60, 1000)], noise_margin=margin)
    assert a.effective and (a.recommended_teacher, a.decided_by) == (teacher, rule)
    assert to_json([a])["tasks"][0]["decided_by"] == rule


def test_noise_margin_follows_the_test_set_size():
    # 55 % vs 50 %: 5 points are noise at n = 20 (margin 29.5) and not at n = 2000 (margin 3.1)
    small, large = Noise().of_difference(55, 20, 50, 20), Noise().of_difference(55, 2000, 50, 2000)
    assert small.points == pytest.approx(29.5, abs=0.1) and large.points == pytest.approx(3.1, abs=0.05)
    assert Noise(z=1.0).of_difference(55, 2000, 50, 2000).points == pytest.approx(large.points / 1.96)
    assert Noise(margin=2.0).of_difference(55, 20, 50, 20).points == 2.0  # explicit override
    assert Noise().of_difference(100, 20, 100, 20).points > 0  # Agresti-Caffo: no zero error at 100 %
    # cells without a test or an interval: the same 5-point gain is "helped" only at n = 2000
    for n, expected in ((20, NO_CHANGE), (2000, HELPED)):
        (a,) = analyse([D("plain", "t", "A", "0.5B", 55, n=n)], [B("t", "0.5B", 50)])
        assert a.cells[0].verdict == expected and "noise margin" in a.cells[0].verdict_by


def test_infinite_kept_ratio_and_json():
    teachers = [TS("eff", "14B", 80, 50), TS("eff", "7B", 60, 0)]
    analyses = analyse(DISTILLED, BASELINE, teachers)
    eff = by_task(analyses)["eff"]
    assert math.isinf(eff.kept_ratio) and eff.recommended_teacher == "14B" and eff.decided_by == BY_TIE_BREAK
    data = to_json(analyses)
    text = json.dumps(data, allow_nan=False)  # strictly valid JSON
    t = {x["task"]: x for x in json.loads(text)["tasks"]}["eff"]
    assert t["kept_ratio"] is None and t["kept_ratio_infinite"] is True
    assert t["n_helped"] == 4 and t["effective"] is True
    assert {c["verdict"] for c in t["cells"]} == {HELPED, NO_CHANGE}
    assert t["capacity_gaps"][0]["verdict"] == GAP_OBSERVED
    assert t["capacity_gaps"][0]["basis"] == "parameters" and t["capacity_basis"] == "parameters"


# ---------------------------------------------------------------------------
# exact tests, Holm, replicates
# ---------------------------------------------------------------------------


def test_exact_test_decides_and_holm_corrects():
    base = [B("t", "0.5B", 20), B("t", "1.5B", 30), B("t", "3B", 40)]
    # wins/losses 4-0 (p 0.125), 9-0 and 0-9 (p 2/512 each); Holm over 3: 3 x 2/512, then 2 x 2/512 raised
    # to the running maximum 6/512, then 0.125
    dist = [
        D("plain", "t", "A", "0.5B", 40, wins=4, losses=0),
        D("plain", "t", "A", "1.5B", 75, wins=9, losses=0),
        D("plain", "t", "A", "3B", 0, wins=0, losses=9),
    ]
    (a,) = analyse(dist, base)
    assert [c.verdict for c in a.cells] == [NO_CHANGE, HELPED, HURT]  # 4-0 is no significant change
    assert [c.p_value for c in a.cells] == pytest.approx([0.125, 2 / 512, 2 / 512])
    assert [c.p_adjusted for c in a.cells] == pytest.approx([0.125, 6 / 512, 6 / 512])
    # raw p 0.01, 0.03, 0.04 are all < 0.05; Holm: 0.03, 0.06, 0.06 -> only the first is helped
    dist = [D("plain", "t", "A", s, 60, p_value=p) for s, p in (("0.5B", 0.01), ("1.5B", 0.03), ("3B", 0.04))]
    (a,) = analyse(dist, base)
    assert [c.p_adjusted for c in a.cells] == pytest.approx([0.03, 0.06, 0.06])
    assert [c.verdict for c in a.cells] == [HELPED, NO_CHANGE, NO_CHANGE]
    assert "Holm over 3 tests" in a.cells[0].verdict_by
    assert [c.verdict for c in analyse(dist, base, alpha=0.1)[0].cells] == [HELPED] * 3
    with pytest.raises(ValueError, match="p_value"):
        analyse([D("plain", "t", "A", "3B", 60, p_value=1.5)], base)
    with pytest.raises(ValueError, match="wins"):
        analyse([D("plain", "t", "A", "3B", 60, wins=3)], base)


def test_replicates_are_kept_and_summarised():
    # seeds 1, 2, 3 of (plain, A, S-0.5B): 30, 32, 34 -> mean 32, sd 2; diffs 10, 12, 14 -> 12 +- 2
    base = [B("t", "0.5B", 20), B("t", "1.5B", 30)]
    dist = [D("plain", "t", "A", "0.5B", acc, seed=s, wins=w, losses=0) for s, acc, w in ((1, 30, 4), (2, 32, 9), (3, 34, 9))]
    dist += [D("plain", "t", "A", "1.5B", 50, seed=1, wins=9, losses=0), D("plain", "t", "B", "0.5B", 21)]
    (a,) = analyse(dist, base)
    assert a.n_cells == 5  # each seed is its own cell with its own test
    (g,) = a.replicates
    assert (g.teacher, g.student, g.seeds) == ("A", "S-0.5B", ["1", "2", "3"])
    assert (g.distilled_mean, g.distilled_sd, g.diff_mean, g.diff_sd) == pytest.approx((32, 2, 12, 2))
    assert g.verdicts == [NO_CHANGE, HELPED, HELPED]  # per seed (4-0 is not enough; Holm over 4 tests)
    assert {m.teacher: m.mean for m in a.mean_scores}["A"] == pytest.approx((32 + 50) / 2)  # seeds averaged first
    assert to_json([a])["tasks"][0]["replicates"][0]["diff_sd"] == pytest.approx(2)
    with pytest.raises(ValueError, match="seed 1"):
        analyse(dist + [D("plain", "t", "A", "0.5B", 31, seed=1)], base)


def test_updates_note_when_counts_are_equal():
    base = [B("t", "0.5B", 20), B("t", "1.5B", 30)]
    dist = [D("plain", "t", t, s, 40, updates=u) for t in ("A", "B") for s, u in (("0.5B", 100), ("1.5B", 100))]
    (a,) = analyse(dist, base)
    assert a.updates_note == "compared configurations trained at 100 updates each"
    dist = [D("plain", "t", t, s, 40, updates=u) for t in ("A", "B") for s, u in (("0.5B", 100), ("1.5B", 200))]
    (a,) = analyse(dist, base)
    assert a.updates_note.startswith("compared configurations of each student trained at equal updates")
    dist[0]["updates"] = "90"
    (a,) = analyse(dist, base)
    assert a.updates_note is None and any("optimizer updates" in w for w in a.warnings)


# ---------------------------------------------------------------------------
# capacity: which teacher is the stronger one
# ---------------------------------------------------------------------------


def gap_case(weak_scores, strong_scores, sizes=("0.5B", "7B"), **kw):
    """Teachers: 'big' (7B, stronger by parameters, accuracy 50) and 'small' (1.5B, accuracy 90)."""
    base = [B("t", s, 10) for s in sizes]
    dist = [D("plain", "t", "small", s, v) for s, v in zip(sizes, weak_scores)]
    dist += [D("plain", "t", "big", s, v) for s, v in zip(sizes, strong_scores)]
    teachers = [T("t", "big", 50, teacher_size="7B"), T("t", "small", 90, teacher_size="1.5B")]
    (a,) = analyse(dist, base, teachers, **kw)
    (g,) = a.capacity_gaps
    assert g.order.stronger == "big" and g.order.weaker == "small" and g.order.basis == "parameters"
    return g


# (big's columns, small's columns) -> (stronger, basis); accuracies favour the other teacher
# wherever capacity decides, so accuracy is never what orders them.
@pytest.mark.parametrize(
    "big, small, stronger, basis",
    [
        ({"accuracy": 40, "teacher_size": "7B"}, {"accuracy": 90, "teacher_size": "1.5B"}, "big", "parameters"),
        (
            {"accuracy": 40, "teacher_size": "1.5B", "cot_tokens": 1200},
            {"accuracy": 90, "teacher_size": "1.78B", "cot_tokens": 300},
            "big",
            "mean CoT tokens",
        ),
        (
            {"accuracy": 40, "teacher_size": "1.5B", "cot_words": 900},
            {"accuracy": 90, "teacher_size": "1.5B", "cot_words": 200},
            "big",
            "mean CoT words",
        ),
        ({"accuracy": 40, "cot_tokens": 800}, {"accuracy": 90, "cot_tokens": 200}, "big", "mean CoT tokens"),
        (
            {"accuracy": 90, "teacher_size": "7B", "capacity": 1},
            {"accuracy": 40, "teacher_size": "1.5B", "capacity": 2},
            "small",
            "declared capacity",
        ),
        ({"accuracy": 90, "teacher_size": "7B", "role": "weak"}, {"accuracy": 40, "role": "Strong"}, "small", "declared role"),
        ({"accuracy": 40, "role": "long"}, {"accuracy": 90, "role": "short"}, "big", "declared role"),
        ({"accuracy": 40, "role": "large"}, {"accuracy": 90, "role": "small"}, "big", "declared role"),
        # unresolved: insufficient data, never a fallback to accuracy
        ({"accuracy": 90}, {"accuracy": 40}, None, "no CoT"),
        ({"accuracy": 90, "teacher_size": "7B"}, {"accuracy": 40}, None, "parameter count of small is unknown"),
        ({"accuracy": 90, "teacher_size": "1.5B"}, {"accuracy": 40, "teacher_size": "1.78B"}, None, "CoT length"),
        ({"teacher_size": "7B", "cot_tokens": 300}, {"teacher_size": "7B", "cot_tokens": 330}, None, "within 1.25x"),
        ({"role": "strong"}, {"role": "large"}, None, "same role"),
    ],
)
def test_capacity_orders_teachers(big, small, stronger, basis):
    base = [B("t", s, 10) for s in ("0.5B", "7B")]
    dist = [
        D("plain", "t", t, s, v)
        for t, s, v in (("big", "0.5B", 25), ("big", "7B", 40), ("small", "0.5B", 30), ("small", "7B", 38))
    ]
    teachers = [{"task": "t", "teacher": "big", **big}, {"task": "t", "teacher": "small", **small}]
    (a,) = analyse(dist, base, teachers)
    (g,) = a.capacity_gaps
    if stronger is None:
        assert g.order.stronger is None and g.verdict == INSUFFICIENT
        assert "capacity cannot be established" in g.detail
        if basis != "no CoT":
            assert basis in g.detail
        assert a.strongest_teacher is None and a.kept_ratio is None
    else:
        assert (g.order.stronger, g.order.basis) == (stronger, basis)
        assert (a.strongest_teacher, a.capacity_basis) == (stronger, basis)
        assert [t.teacher for t in a.teachers][0] == stronger


def test_teacher_csv_capacity_and_role_columns(tmp_path):
    p = tmp_path / "teachers.csv"
    p.write_text(
        "task,teacher,accuracy,kept,role,capacity,teacher_size,cot_tokens\n"
        "t,big,40,,weak,,7B,\nt,small,90,12,strong,,1.5B,310.5\n"
    )
    rows = read_csv(p, TEACHER_COLUMNS)
    base = [B("t", s, 10) for s in ("0.5B", "7B")]
    dist = [D("plain", "t", t, s, 30) for t in ("big", "small") for s in ("0.5B", "7B")]
    (a,) = analyse(dist, base, rows)
    assert (a.strongest_teacher, a.capacity_basis) == ("small", "declared role")
    info = {t.teacher: t for t in a.teachers}
    assert (info["small"].kept, info["small"].params_b, info["small"].cot_tokens) == (12, 1.5, 310.5)
    p.write_text("task,teacher,role\nt,big,mentor\n")
    with pytest.raises(ValueError, match="role 'mentor' is not one of"):
        analyse(dist, base, read_csv(p, TEACHER_COLUMNS))


# ---------------------------------------------------------------------------
# capacity gap
# ---------------------------------------------------------------------------


def test_capacity_gap_present_shrinking():
    # adv = weak - strong: 0.5B 30-25 = +5 (> 1), 7B 40-38.5 = +1.5; shrink 3.5 > 1 -> observed
    g = gap_case([30, 40], [25, 38.5])
    assert g.advantages == [5, 1.5] and (g.small_sizes, g.large_sizes) == (["0.5B"], ["7B"])
    assert g.verdict == GAP_OBSERVED and "shrinks" in g.detail
    assert g.stronger_accuracy == 50 and g.weaker_accuracy == 90  # reported, not used to order


def test_capacity_gap_present_reversing():
    # adv: 0.5B +3, 1.5B +1, 3B -1.5 (the "eff" table); halves: [0.5B] +3 against [3B] -1.5 -> reverses
    eff = by_task(analyse(DISTILLED, BASELINE, [TS("eff", "14B", 80), TS("eff", "7B", 60)]))["eff"]
    (g,) = eff.capacity_gaps
    assert (g.order.stronger, g.order.weaker) == ("14B", "7B")
    assert g.sizes == ["0.5B", "1.5B", "3B"] and g.advantages == pytest.approx([3, 1, -1.5])
    assert (g.small_sizes, g.large_sizes) == (["0.5B"], ["3B"])  # the middle size of three is in neither half
    assert g.verdict == GAP_OBSERVED and "reverses" in g.detail


def test_capacity_gap_absent_stronger_wins_small():
    # adv: 0.5B 25-30 = -5 -> the weaker teacher does not win at the smallest size -> none
    g = gap_case([25, 40], [30, 45])
    assert g.verdict == NO_GAP


def test_capacity_gap_absent_advantage_persists():
    # adv: +5 then +4.5: shrink 0.5 <= 1 -> the weaker teacher is simply better -> none
    g = gap_case([30, 44.5], [25, 40])
    assert g.verdict == NO_GAP and "persists" in g.detail


def test_capacity_gap_inverse_pattern_is_not_a_gap():
    # reversed the other way: stronger wins small (adv -3), weaker wins large (adv +4) -> none
    g = gap_case([22, 44], [25, 40])
    assert g.advantages == [-3, 4]
    assert g.verdict == NO_GAP


def test_capacity_gap_margin_boundary():
    # adv at the smallest size exactly +1.0 (= margin, not more) -> none
    g = gap_case([26, 30], [25, 40])
    assert g.verdict == NO_GAP


def test_capacity_gap_insufficient_data():
    g = gap_case([30], [25], sizes=("0.5B",))
    assert g.verdict == INSUFFICIENT


# 4 student sizes, explicit margin 1 point: the halves rule reads the mean advantage of the two
# smaller sizes against the two larger ones, where the end points alone would mislead.
@pytest.mark.parametrize(
    "adv, verdict, word",
    [
        ([5, 0, 5, 0], NO_GAP, "persists"),  # ends: +5 -> 0 would be a gap; halves: +2.5 and +2.5
        ([0.5, 7, -1, -2], GAP_OBSERVED, "reverses"),  # ends: +0.5 is no lead; halves: +3.75 -> -1.5
        ([6, 4, 3, 2], GAP_OBSERVED, "shrinks"),  # +5 -> +2.5
        ([-2, 3, 5, 6], NO_GAP, "does not beat"),  # the small half's mean (+0.5) is within the margin
    ],
)
def test_capacity_gap_halves_with_four_sizes(adv, verdict, word):
    sizes = ("0.5B", "1.5B", "3B", "7B")
    g = gap_case([40 + x for x in adv], [40] * 4, sizes=sizes, noise_margin=1.0)
    assert g.advantages == pytest.approx(adv)
    assert (g.small_sizes, g.large_sizes) == (["0.5B", "1.5B"], ["3B", "7B"])
    assert g.mean_advantage_small == pytest.approx(sum(adv[:2]) / 2)
    assert g.mean_advantage_large == pytest.approx(sum(adv[2:]) / 2)
    assert g.verdict == verdict and word in g.detail


def test_capacity_gap_margin_from_the_test_set_size():
    # adv +10 at 0.5B, -10 at 7B: at n = 2000 a clear reversal; at n = 20 all of it is noise
    for n, expected in ((2000, GAP_OBSERVED), (20, NO_GAP)):
        sizes = ("0.5B", "7B")
        base = [B("t", s, 10) for s in sizes]
        dist = [D("plain", "t", "small", s, v, n=n) for s, v in zip(sizes, (50, 40))]
        dist += [D("plain", "t", "big", s, v, n=n) for s, v in zip(sizes, (40, 50))]
        teachers = [T("t", "big", 50, teacher_size="7B"), T("t", "small", 90, teacher_size="1.5B")]
        (g,) = analyse(dist, base, teachers)[0].capacity_gaps
        assert g.verdict == expected and "SE" in g.margin_how


def test_capacity_gap_without_teacher_rows_is_insufficient():
    unnamed = [{**r, "teacher": {"14B": "teacher-a", "7B": "teacher-b"}[r["teacher"]]} for r in DISTILLED]
    eff = by_task(analyse(unnamed, BASELINE))["eff"]
    (g,) = eff.capacity_gaps
    assert g.verdict == INSUFFICIENT and "no teacher data" in g.detail and g.order.basis is None
    assert g.descriptive_verdict == INSUFFICIENT
    # teachers whose names state their sizes need no teacher rows: parameters from the names
    (named,) = by_task(analyse(DISTILLED, BASELINE))["eff"].capacity_gaps
    assert (named.order.stronger, named.order.weaker, named.order.basis) == ("14B", "7B", "parameters")


# ---------------------------------------------------------------------------
# teacher data of a run: kept questions, teacher assistants
# ---------------------------------------------------------------------------


def _source(name, generated, correct, kept, words=10.0, models=None):
    return {
        "source": name,
        "models": models or [name.split("#")[0]],
        "generated": generated,
        "correct": correct,
        "kept": kept,
        "rationale_length_all": {"n": generated, "mean_words": words},
    }


def test_kept_counts_distinct_questions_and_ta_data_is_not_credited():
    # teacher t sampled 4 rationales for each of 5 questions and kept 7 of them, covering questions
    # 0, 1, 2 -> kept 3 (questions), 7 rationales; MiCoTA's TA kept 5 questions: credited to no one
    sources = [
        _source("t", 20, 7, 7, words=100.0),
        _source("TA:dare_ties(s,t)", 5, 5, 5, words=40.0, models=["/cache/micota/ta-1234"]),
    ]
    kept = {"t": {0, 1, 2}, "TA:dare_ties(s,t)": {0, 1, 2, 3, 4}}
    (entry,), uncredited = per_teacher(sources, kept, ["t"], {"t": 1_500_000_000}, {})
    assert (entry["teacher"], entry["kept"], entry["kept_rationales"]) == ("t", 3, 7)
    assert (entry["generated"], entry["correct"], entry["cot_mean_words"]) == (20, 7, 100.0)
    assert entry["parameters"] == 1_500_000_000 and entry["sources"] == ["t"]
    assert uncredited == ["TA:dare_ties(s,t)"]
    # the same teacher's two sources (mind's "#2") are one teacher: questions are unioned
    sources = [_source("t", 4, 2, 2), _source("t#2", 4, 2, 2)]
    (entry,), _ = per_teacher(sources, {"t": {0, 1}, "t#2": {1, 2}}, ["t"], {}, {"t": {"parameters_b": 7}})
    assert (entry["kept"], entry["kept_rationales"], entry["parameters"]) == (3, 4, 7_000_000_000)


@pytest.mark.parametrize(
    "name, models, teachers, expected",
    [
        ("a", ["a"], ["a", "b"], "a"),
        ("a [strong]", ["a"], ["a", "b"], "a"),  # whatever the strategy calls the source,
        ("second look", ["a"], ["a", "b"], "a"),  # the records say who wrote it
        ("TA:dare_ties(a,b)", ["/cache/ta"], ["a"], None),  # another model: credited to no teacher, even the only one
        ("both", ["a", "b"], ["a", "b"], None),  # mixed authors: no single teacher
        ("old run", [], ["a"], "a"),  # records without `model`: a single teacher's
        ("old run", [], ["a", "b"], None),
    ],
)
def test_teacher_of_reads_who_wrote_the_records(name, models, teachers, expected):
    """No source-naming convention: the records' ``model`` field decides (issue 24.4)."""
    assert teacher_of({"source": name, "models": models}, teachers) == expected


# ---------------------------------------------------------------------------
# warnings
# ---------------------------------------------------------------------------


def test_updates_warning():
    base = [B("t", "0.5B", 20), B("t", "1.5B", 30)]
    dist = [
        # 0.5B: plain 1000/1000 but filtered only 600 updates -> warn, naming filtered/A=600
        D("plain", "t", "A", "0.5B", 30, updates=1000),
        D("plain", "t", "B", "0.5B", 31, updates=1000),
        D("filtered-ablation", "t", "A", "0.5B", 29, updates=600),
        # 1.5B: all 1000 -> no warning for this student
        D("plain", "t", "A", "1.5B", 40, updates=1000),
        D("plain", "t", "B", "1.5B", 41, updates=1000),
    ]
    (a,) = analyse(dist, base)
    upd = [w for w in a.warnings if "updates" in w]
    assert len(upd) == 1
    assert "S-0.5B" in upd[0] and "filtered-ablation/A=600" in upd[0] and "plain/A=1000" in upd[0]
    # same updates everywhere -> no warning
    same = [dict(r, updates="1000") for r in dist]
    (a2,) = analyse(same, base)
    assert not [w for w in a2.warnings if "updates" in w]
    # multiple settings -> recommendation names the setting: best mean is plain/B (36)
    assert a2.recommendation == "prefer teacher B (plain)" and a2.recommended_setting == "plain"


def test_missing_baseline_and_duplicates():
    with pytest.raises(ValueError, match="no baseline"):
        analyse([D("plain", "t", "A", "0.5B", 30)], [B("t", "1.5B", 20)])
    with pytest.raises(ValueError, match="duplicate"):
        analyse([D("plain", "t", "A", "0.5B", 30)] * 2, [B("t", "0.5B", 20)])


# ---------------------------------------------------------------------------
# CSV reading
# ---------------------------------------------------------------------------

COLS = ("task", "teacher", "accuracy")


def test_read_csv_ok(tmp_path):
    p = tmp_path / "teachers.csv"
    p.write_text("task, teacher ,accuracy,kept\ngsm8k, 7B ,61.5,\n\ngsm8k,14B,80,1300\n")
    rows = read_csv(p, COLS)
    assert rows == [
        {"task": "gsm8k", "teacher": "7B", "accuracy": "61.5", "kept": ""},
        {"task": "gsm8k", "teacher": "14B", "accuracy": "80", "kept": "1300"},
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("task,teacher\ngsm8k,7B\n", "missing required column(s) 'accuracy'"),
        ("task,teacher,accuracy\ngsm8k,7B,abc\n", "line 2: column 'accuracy' has bad value 'abc'"),
        ("task,teacher,accuracy,kept\ngsm8k,7B,50,\ngsm8k,14B,60,lots\n", "line 3: column 'kept'"),
        ("task,teacher,accuracy\ngsm8k,,50\n", "line 2: empty value in column 'teacher'"),
        ("task,teacher,accuracy,student_size\ngsm8k,7B,50,7X\n", "invalid model size '7X'"),
        ("task,teacher,accuracy\ngsm8k,7B,50,extra\n", "line 2: 4 fields"),
        ("", "file is empty"),
    ],
)
def test_read_csv_errors(tmp_path, text, expected):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ValueError) as exc:
        read_csv(p, COLS)
    msg = str(exc.value)
    assert "bad.csv" in msg and expected in msg and "\n" not in msg


def test_read_csv_missing_file(tmp_path):
    with pytest.raises(ValueError, match="nope.csv: cannot read file"):
        read_csv(tmp_path / "nope.csv", COLS)


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------


def test_render_tables_and_selection():
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None)
    render_tables(analyse(DISTILLED, BASELINE, [TS("eff", "14B", 80, 1300), TS("eff", "7B", 60, 1000)]), console)
    render_selection(
        select_tasks(
            [
                {"task": "gsm8k", "model": "T", "role": "teacher", "accuracy": "80"},
                {"task": "gsm8k", "model": "S", "role": "student", "accuracy": "20"},
            ]
        ),
        console,
    )
    out = buf.getvalue()
    assert "eff" in out and "ineff" in out and "1.30x" in out
    assert DO_NOT_DISTIL in out and GAP_OBSERVED in out and "gsm8k" in out
    flat = " ".join(out.split())
    assert "(decided by: kept-ratio tie-break)" in flat and "(decided by: not effective)" in flat


# ---------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(path, min_bytes=5_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 200 <= width <= 4000 and 200 <= height <= 4000
    assert min_bytes < len(data) < 5_000_000


def test_plots(tmp_path):
    # (an "eff" panel with 2 plain + 1 filtered teacher/setting lines per task)
    dist = DISTILLED + [
        D("cross-teacher-filter", "eff", "14B", "0.5B", 26),
        D("cross-teacher-filter", "eff", "14B", "1.5B", 35),
        D("cross-teacher-filter", "eff", "7B", "0.5B", 27),
    ]
    teachers = [T("eff", "14B", 80, 1300), T("eff", "7B", 60, 1000), T("ineff", "14B", 70, 900), T("ineff", "7B", 55, "")]
    p1 = plot_accuracy_vs_size(dist, BASELINE, tmp_path / "acc.png")
    p2 = plot_kept(teachers, tmp_path / "sub" / "kept.png")
    p3 = plot_filter_ablation(dist, tmp_path / "ablation.png")
    p4 = plot_kept([T("eff", "14B", 80)], tmp_path / "kept_none.png")  # no counts: placeholder
    assert p2 == tmp_path / "sub" / "kept.png"
    for p in (p1, p2, p3):
        check_png(p)
    check_png(p4, min_bytes=1_000)  # nearly blank figure
    with pytest.raises(ValueError, match="no distilled rows with setting"):
        plot_filter_ablation(DISTILLED, tmp_path / "x.png")
