"""Published result tables read as published (issue 23, item 6): teachers named only by their
models' names are sized from them, ``role`` / ``capacity`` are read from the distilled table too,
unknown columns are named in a warning, and the capacity gap is read both ways — the paper's
descriptive reading (no noise margin) beside the statistical one (margins from the test-set size).

The fixture (tests/fixtures/published_tables) has the shape of the seed paper's Tables 7/8 — BBH
tasks, a small-large setting (Qwen2.5-14B-Instruct vs Qwen2.5-72B-Instruct) and a short-long one
(Qwen2.5-32B-Instruct vs QwQ-32B-Preview, the same size: roles declared in the distilled table),
Qwen2.5 students 0.5B-7B, n = 250 — with illustrative accuracies, not the paper's.
"""

import json
from pathlib import Path

from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.report import tables
from cotgap.report.analysis import analyse

FIXTURE = Path(__file__).parent / "fixtures" / "published_tables"


def _report(tmp_path, *extra):
    res = CliRunner().invoke(
        cli,
        [
            "report",
            "--csv",
            str(FIXTURE / "distilled.csv"),
            "--baseline-csv",
            str(FIXTURE / "baseline.csv"),
            "--out",
            str(tmp_path / "r"),
            *extra,
        ],
    )
    assert res.exit_code == 0, res.output
    return res


def test_sizes_from_conventional_names():
    assert [
        tables.size_from_name(n)
        for n in (
            "Qwen2.5-72B-Instruct",
            "Qwen2.5-0.5B",
            "qwen2.5-coder-1.5b-instruct",
            "smollm2-135m-instruct",
            "Qwen/QwQ-32B-Preview",
        )
    ] == [72.0, 0.5, 1.5, 0.135, 32.0]
    # no size, two sizes, a mixture, a teacher set: not read
    assert [tables.size_from_name(n) for n in ("gpt-4o", "a-7B-b-13B", "Mixtral-8x7B", "a-7B+b-14B", "Qwen2.5")] == [None] * 5


def test_published_tables_give_a_reading_for_every_task_and_setting(tmp_path):
    report = json.loads(_report(tmp_path, "--json").stdout)
    gaps = {(t["task"], g["setting"]): g for t in report["tasks"] for g in t["capacity_gaps"]}
    assert len(gaps) == 4 and all(g["verdict"] != "insufficient data" for g in gaps.values())
    small_large = gaps[("date_understanding", "small-large")]
    assert (small_large["stronger"], small_large["weaker"], small_large["basis"]) == (
        "Qwen2.5-72B-Instruct",
        "Qwen2.5-14B-Instruct",
        "parameters",
    )  # read from the names
    short_long = gaps[("date_understanding", "short-long")]
    assert (short_long["stronger"], short_long["basis"]) == ("QwQ-32B-Preview", "declared role")  # distilled CSV
    # both readings side by side; a 1.5-point lead at n = 250 is a gap only descriptively
    readings = short_long["readings"]
    assert readings["descriptive"]["verdict"] == "capacity gap observed"
    assert readings["statistical"]["verdict"] == short_long["verdict"] == "no capacity gap"
    assert all({"descriptive", "statistical"} <= set(g["readings"]) for g in gaps.values())
    teachers = {t["teacher"]: t for t in report["tasks"][0]["teachers"]}
    assert teachers["Qwen2.5-72B-Instruct"]["params_b"] == 72.0 and teachers["Qwen2.5-72B-Instruct"]["size_from_name"]
    # the column no table reads is named, once
    assert [w for w in report["warnings"] if "source_table" in w] == [w for w in report["warnings"] if "not read" in w]
    assert len([w for w in report["warnings"] if "source_table" in w]) == 1


def test_terminal_and_markdown_show_both_readings(tmp_path):
    out = _report(tmp_path).output
    assert "descripti" in out and "statistic" in out  # the two verdict columns (narrow terminals wrap their titles)
    md = (tmp_path / "r" / "report.md").read_text()
    assert "descriptive (no margin)" in md and "statistical (margins)" in md


def test_declared_values_from_both_tables_must_agree():
    base = [{"task": "t", "student": "s", "student_size": "1B", "accuracy": 10}]
    row = {"setting": "plain", "task": "t", "teacher": "x", "student": "s", "student_size": "1B", "accuracy": 20}
    both = [{**row, "capacity": "2"}, {**row, "teacher": "y", "capacity": "1"}]
    (a,) = analyse(both, base)
    assert (a.strongest_teacher, a.capacity_basis) == ("x", "declared capacity")
    for rows, teachers in (
        ([{**row, "role": "large"}, {**row, "seed": "2", "role": "small"}], []),
        ([{**row, "capacity": "2"}], [{"task": "t", "teacher": "x", "capacity": "3"}]),
    ):
        try:
            analyse(rows, base, teachers)
        except ValueError as exc:
            assert "\n" not in str(exc) and "teacher 'x'" in str(exc)
        else:
            raise AssertionError("conflicting declarations were accepted")
