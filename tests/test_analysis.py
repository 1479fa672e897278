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
from cotgap.report.plots import plot_accuracy_vs_size, plot_filter_ablation, plot_kept
from cotgap.report.selection import select_tasks
from cotgap.report.tables import parse_size, read_csv
from cotgap.report.terminal import render_selection, render_tables

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def D(setting, task, teacher, size, acc, **extra):
    """A distilled row; the student is named after its size."""
    row = {"setting": setting, "task": task, "teacher": teacher,
           "student": f"S-{size}", "student_size": size, "accuracy": str(acc)}
    row.update({k: str(v) for k, v in extra.items()})
    return row


def B(task, size, acc):
    return {"task": task, "student": f"S-{size}", "student_size": size, "accuracy": str(acc)}


def T(task, teacher, acc, kept=""):
    return {"task": task, "teacher": teacher, "accuracy": str(acc), "kept": str(kept)}


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
    B("eff", "0.5B", 20), B("eff", "1.5B", 30), B("eff", "3B", 40),
    B("ineff", "0.5B", 20), B("ineff", "1.5B", 30), B("ineff", "3B", 40),
]

DISTILLED = [
    # eff (noise margin 1.0):
    #   14B: 0.5B 25 (+5 helped), 1.5B 36 (+6 helped), 3B 40.5 (+0.5 no change)
    #   7B:  0.5B 28 (+8 helped), 1.5B 37 (+7 helped), 3B 39   (-1.0 = -margin -> no change)
    #   helped 4 of 6 > half -> effective
    #   means: 14B (25+36+40.5)/3 = 33.83, 7B (28+37+39)/3 = 34.67 -> 7B best on average
    D("plain", "eff", "14B", "0.5B", 25), D("plain", "eff", "14B", "1.5B", 36),
    D("plain", "eff", "14B", "3B", 40.5),
    D("plain", "eff", "7B", "0.5B", 28), D("plain", "eff", "7B", "1.5B", 37),
    D("plain", "eff", "7B", "3B", 39),
    # ineff:
    #   14B: 0.5B 22 (+2 helped), 1.5B 30 (0 no change), 3B 35 (-5 hurt)
    #   7B:  0.5B 23 (+3 helped), 1.5B 31 (+1.0 = margin -> no change), 3B 45 (+5 helped)
    #   helped 3 of 6 = exactly half -> NOT effective
    D("plain", "ineff", "14B", "0.5B", 22), D("plain", "ineff", "14B", "1.5B", 30),
    D("plain", "ineff", "14B", "3B", 35),
    D("plain", "ineff", "7B", "0.5B", 23), D("plain", "ineff", "7B", "1.5B", 31),
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


def test_kept_ratio_boundary_prefers_stronger_teacher():
    # kept 1300 / 1000 = 1.3 exactly -> >= 1.3 -> prefer the stronger teacher 14B (acc 80 > 60)
    teachers = [T("eff", "14B", 80, 1300), T("eff", "7B", 60, 1000)]
    eff = by_task(analyse(DISTILLED, BASELINE, teachers))["eff"]
    assert eff.strongest_teacher == "14B" and eff.weakest_teacher == "7B"
    assert eff.kept_ratio == pytest.approx(1.3)
    assert eff.recommended_teacher == "14B"
    assert "stronger teacher" in eff.recommendation
    assert "1.30x" in eff.reason


def test_kept_ratio_below_threshold_prefers_best_average():
    # kept 1299 / 1000 = 1.299 < 1.3 -> prefer best mean: 7B (34.67) over 14B (33.83)
    teachers = [T("eff", "14B", 80, 1299), T("eff", "7B", 60, 1000)]
    eff = by_task(analyse(DISTILLED, BASELINE, teachers))["eff"]
    assert eff.kept_ratio == pytest.approx(1.299)
    assert eff.recommended_teacher == "7B"
    assert eff.recommendation == "prefer teacher 7B"
    assert "34.7" in eff.reason and "1.30x" in eff.reason  # cites the mean; ratio rounds to 1.30
    assert [m.teacher for m in eff.mean_scores] == ["7B", "14B"]
    assert eff.mean_scores[0].mean == pytest.approx(104 / 3)


def test_kept_unknown_prefers_best_average():
    # kept empty -> ratio unknown -> best average (7B)
    teachers = [T("eff", "14B", 80), T("eff", "7B", 60)]
    eff = by_task(analyse(DISTILLED, BASELINE, teachers))["eff"]
    assert eff.kept_ratio is None
    assert eff.recommended_teacher == "7B"
    assert "unknown" in eff.reason


def test_infinite_kept_ratio_and_json():
    teachers = [T("eff", "14B", 80, 50), T("eff", "7B", 60, 0)]
    analyses = analyse(DISTILLED, BASELINE, teachers)
    eff = by_task(analyses)["eff"]
    assert math.isinf(eff.kept_ratio) and eff.recommended_teacher == "14B"
    data = to_json(analyses)
    text = json.dumps(data, allow_nan=False)  # strictly valid JSON
    t = {x["task"]: x for x in json.loads(text)["tasks"]}["eff"]
    assert t["kept_ratio"] is None and t["kept_ratio_infinite"] is True
    assert t["n_helped"] == 4 and t["effective"] is True
    assert {c["verdict"] for c in t["cells"]} == {HELPED, NO_CHANGE}
    assert t["capacity_gaps"][0]["verdict"] == GAP_OBSERVED


# ---------------------------------------------------------------------------
# capacity gap
# ---------------------------------------------------------------------------


def gap_case(weak_scores, strong_scores, sizes=("0.5B", "7B")):
    """Teachers: 'big' (acc 90, stronger) and 'small' (acc 50, weaker)."""
    base = [B("t", s, 10) for s in sizes]
    dist = [D("plain", "t", "small", s, v) for s, v in zip(sizes, weak_scores)]
    dist += [D("plain", "t", "big", s, v) for s, v in zip(sizes, strong_scores)]
    teachers = [T("t", "big", 90), T("t", "small", 50)]
    (a,) = analyse(dist, base, teachers)
    (g,) = a.capacity_gaps
    assert g.stronger == "big" and g.weaker == "small" and g.basis == "teacher accuracy"
    return g


def test_capacity_gap_present_shrinking():
    # adv = weak - strong: 0.5B 30-25 = +5 (> 1), 7B 40-38.5 = +1.5; shrink 3.5 > 1 -> observed
    g = gap_case([30, 40], [25, 38.5])
    assert g.advantages == [5, 1.5]
    assert g.verdict == GAP_OBSERVED and "shrinks" in g.detail


def test_capacity_gap_present_reversing():
    # adv: 0.5B +3, 1.5B +1, 3B -1.5 (taken from the "eff" table) -> observed, reverses
    eff = by_task(analyse(DISTILLED, BASELINE, [T("eff", "14B", 80), T("eff", "7B", 60)]))["eff"]
    (g,) = eff.capacity_gaps
    assert (g.stronger, g.weaker) == ("14B", "7B")
    assert g.sizes == ["0.5B", "1.5B", "3B"]
    assert g.advantages == pytest.approx([3, 1, -1.5])
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


def test_capacity_gap_ranking_by_mean_without_teacher_rows():
    # no teacher rows: stronger = higher mean distilled score = 7B (34.67 > 33.83),
    # adv = 14B - 7B: -3, -1, +1.5 -> the "weaker" 14B does not win small -> none
    eff = by_task(analyse(DISTILLED, BASELINE))["eff"]
    (g,) = eff.capacity_gaps
    assert g.basis == "mean distilled score"
    assert (g.stronger, g.weaker) == ("7B", "14B")
    assert g.verdict == NO_GAP


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
    render_tables(analyse(DISTILLED, BASELINE, [T("eff", "14B", 80, 1300), T("eff", "7B", 60, 1000)]), console)
    render_selection(select_tasks([
        {"task": "gsm8k", "model": "T", "role": "teacher", "accuracy": "80"},
        {"task": "gsm8k", "model": "S", "role": "student", "accuracy": "20"},
    ]), console)
    out = buf.getvalue()
    assert "eff" in out and "ineff" in out and "1.30x" in out
    assert DO_NOT_DISTIL in out and GAP_OBSERVED in out and "gsm8k" in out


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
    teachers = [T("eff", "14B", 80, 1300), T("eff", "7B", 60, 1000),
                T("ineff", "14B", 70, 900), T("ineff", "7B", 55, "")]
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
