"""`cotgap select`: task selection from a hand-made ICL table, and `--measure` on tiny models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cotgap.cli import cli

# Hand-worked answers (threshold 30, strictly greater):
#   A: teachers 80, 70 -> 75; students 40, 50 -> 45; gap 30.0 -> exactly the threshold: NOT selected
#   B: teacher 90; students 20, 30 -> 25; gap 65 -> selected
#   C: teacher 50; student 10; gap 40 -> selected at 30, not at --threshold 40 (strict)
TABLE = """task,model,role,accuracy
A,t1,teacher,80
A,t2,teacher,70
A,s1,student,40
A,s2,student,50
B,t1,teacher,90
B,s1,student,20
B,s2,student,30
C,t1,Teacher,50
C,s1,student,10
"""


def invoke(*args):
    return CliRunner().invoke(cli, ["select", *[str(a) for a in args]])


@pytest.fixture()
def table(tmp_path) -> Path:
    p = tmp_path / "icl.csv"
    p.write_text(TABLE)
    return p


def test_select_json(table):
    res = invoke("--icl-table", table, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rows = {t["task"]: t for t in out["tasks"]}
    assert list(rows) == ["A", "B", "C"] and out["threshold"] == 30
    assert (rows["A"]["teacher_mean"], rows["A"]["student_mean"], rows["A"]["gap"]) == (75, 45, 30)
    assert [rows[t]["selected"] for t in "ABC"] == [False, True, True]
    assert (rows["A"]["n_teachers"], rows["A"]["n_students"]) == (2, 2)
    assert rows["B"]["gap"] == pytest.approx(65)


def test_select_threshold_is_strict(table):
    res = invoke("--icl-table", table, "--threshold", "40", "--json")
    assert [t["selected"] for t in json.loads(res.stdout)["tasks"]] == [False, True, False]


def test_select_table_output(table):
    res = invoke("--icl-table", table)
    assert res.exit_code == 0, res.output
    for word in ("Task selection", "teacher mean", "student mean", "gap", "selected", "75.0", "45.0", "30.0"):
        assert word in res.stdout, word
    assert "selected: B, C" in res.stdout


@pytest.mark.parametrize(
    "content, args, message",
    [
        (None, [], "give --icl-table"),
        ("task,model,accuracy\nA,t,50\n", [], "missing required column(s) 'role'"),
        ("task,model,role,accuracy\nA,t,judge,50\n", [], "role must be 'teacher' or 'student'"),
        ("task,model,role,accuracy\nA,t,teacher,50\n", [], "has no student rows"),
        ("task,model,role,accuracy\nA,t,teacher,abc\n", [], "expected a number"),
        (TABLE, ["--measure"], "exclude each other"),
        (TABLE, ["--task", "A"], "are for --measure"),
    ],
)
def test_select_bad_input(tmp_path, content, args, message):
    extra = []
    if content is not None:
        p = tmp_path / "t.csv"
        p.write_text(content)
        extra = ["--icl-table", p]
    res = invoke(*extra, *args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_select_missing_file(tmp_path):
    res = invoke("--icl-table", tmp_path / "nope.csv")
    assert res.exit_code == 2 and "cannot read file" in res.stderr


def test_measure_needs_models(tmp_path):
    res = invoke("--measure", "--task", "synthetic_navigate", "--teacher", "scripted", "--out", tmp_path / "x.csv")
    assert res.exit_code == 2 and "--student" in res.stderr


def test_measure_on_tiny_models(tmp_path, tiny_student):
    """Few-shot CoT with lm-eval on the test split: the scripted reference teacher answers every
    question (100 %), the random-init tiny student essentially none, so the gap exceeds 30."""
    out = tmp_path / "icl.csv"
    res = invoke(
        "--measure",
        "--task",
        "synthetic_navigate",
        "--teacher",
        "scripted",
        "--student",
        tiny_student,
        "--limit",
        "4",
        "--backend",
        "hf",
        "--out",
        out,
        "--json",
    )
    assert res.exit_code == 0, res.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["task", "model", "role", "accuracy"]
    assert [(r["task"], r["model"], r["role"]) for r in rows] == [
        ("synthetic_navigate", "scripted", "teacher"),
        ("synthetic_navigate", str(tiny_student), "student"),
    ]
    teacher, student = (float(r["accuracy"]) for r in rows)
    assert teacher == 100.0 and 0.0 <= student <= 100.0
    (sel,) = json.loads(res.stdout)["tasks"]  # the selection consumed the measured table
    assert sel["task"] == "synthetic_navigate"
    assert sel["gap"] == pytest.approx(teacher - student)
    assert sel["selected"] == (teacher - student > 30)
