"""`cotgap report`: external CSV results and stored run directories -> report.json / report.md / plots.

Every table is small and hand-made; the expected answers are worked out by hand next to them.
No model is loaded (run directories are written by hand, as a finished `cotgap run` leaves them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.jsonio import read_json, write_json, write_jsonl
from cotgap.report.collect import size_label
from cotgap.rundir import RunDir

PNG = b"\x89PNG\r\n\x1a\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG


# ---------------------------------------------------------------------------------------------
# external CSV results
# ---------------------------------------------------------------------------------------------
#
# Task "gsm": teachers big (80 %, kept 800) and small (50 %, kept 400): kept ratio 800/400 = 2.0
# >= 1.3, so once distillation is effective the stronger teacher "big" is recommended.
# Student sizes are given out of string order (14B < 7B as strings) to check the numeric sort:
#     size   baseline  big  small   small - big
#     135M      10      20    25        +5
#     1.5B      30      40    41        +1
#     7B        50      60    55        -5
#     14B       60      70    62        -8
# every diff vs baseline is >= +2 > 1 (noise margin): 8/8 helped -> effective.
# capacity gap: adv(135M) = +5 > 1 and adv(135M) - adv(14B) = 13 > 1 -> observed; it reverses.
#
# Task "date": baseline 10 (135M) and 60 (14B); big 10 / 59 (diff 0, -1: within the margin),
# small 9 / 50 (diff -1: within; -10: hurt) -> 0 of 4 helped -> not effective: do not distil.
#
# Task "logic": big (70 %, kept 500) and small (65 %, kept 450): ratio 1.11 < 1.3, so the teacher
# whose students score best on average: big (30 + 50) / 2 = 40, small (35 + 52) / 2 = 43.5 -> small.
# Updates differ (big 100, small 90) -> a warning for each student.
# adv(135M) = +5, adv(7B) = +2: 5 > 1 and 5 - 2 = 3 > 1 -> capacity gap observed (shrinks).
#
# Ablation rows (setting cross-teacher-filter) for gsm big at 135M (18) and 14B (72): compared
# with plain 20 and 70 -> deltas -2 and +2; analysed separately (labelled), never in the above.

DISTILLED = """
setting,task,teacher,student,student_size,accuracy,updates
plain,gsm,big,s-14b,14B,70,
plain,gsm,big,s-7b,7B,60,
plain,gsm,big,s-135m,135M,20,
plain,gsm,big,s-1.5b,1.5B,40,
plain,gsm,small,s-135m,135M,25,
plain,gsm,small,s-1.5b,1.5B,41,
plain,gsm,small,s-7b,7B,55,
plain,gsm,small,s-14b,14B,62,
plain,date,big,s-135m,135M,10,
plain,date,big,s-14b,14B,59,
plain,date,small,s-135m,135M,9,
plain,date,small,s-14b,14B,50,
plain,logic,big,s-135m,135M,30,100
plain,logic,big,s-7b,7B,50,100
plain,logic,small,s-135m,135M,35,90
plain,logic,small,s-7b,7B,52,90
cross-teacher-filter,gsm,big,s-135m,135M,18,
cross-teacher-filter,gsm,big,s-14b,14B,72,
"""

BASELINE = """
task,student,student_size,accuracy
gsm,s-135m,135M,10
gsm,s-1.5b,1.5B,30
gsm,s-7b,7B,50
gsm,s-14b,14B,60
date,s-135m,135M,10
date,s-14b,14B,60
logic,s-135m,135M,20
logic,s-7b,7B,40
"""

TEACHERS = """
task,teacher,accuracy,kept
gsm,big,80,800
gsm,small,50,400
date,big,80,
date,small,50,
logic,big,70,500
logic,small,65,450
"""


@pytest.fixture()
def csvs(tmp_path):
    return (write(tmp_path / "distilled.csv", DISTILLED), write(tmp_path / "baseline.csv", BASELINE),
            write(tmp_path / "teachers.csv", TEACHERS))


def test_csv_report_answers(tmp_path, csvs):
    d, b, t = csvs
    out = tmp_path / "out"
    res = invoke("report", "--csv", d, "--baseline-csv", b, "--teacher-csv", t, "--out", out)
    assert res.exit_code == 0, res.output
    rep = read_json(out / "report.json")
    assert rep["schema"] == "cotgap.report/1"
    tasks = {x["task"]: x for x in rep["tasks"]}
    assert list(tasks) == ["gsm", "date", "logic"]

    gsm = tasks["gsm"]
    assert gsm["effective"] and (gsm["n_helped"], gsm["n_cells"]) == (8, 8)
    assert [c["student_size"] for c in gsm["cells"] if c["teacher"] == "big"] == ["135M", "1.5B", "7B", "14B"]
    assert gsm["kept_ratio"] == pytest.approx(2.0)
    assert gsm["recommended_teacher"] == "big" and "stronger teacher" in gsm["recommendation"]
    (gap,) = gsm["capacity_gaps"]
    assert (gap["stronger"], gap["weaker"]) == ("big", "small")
    assert gap["sizes"] == ["135M", "1.5B", "7B", "14B"]
    assert gap["advantages"] == pytest.approx([5, 1, -5, -8])
    assert gap["verdict"] == "capacity gap observed" and "reverses" in gap["detail"]
    assert gsm["ablation"] is None

    date = tasks["date"]
    assert not date["effective"] and date["n_helped"] == 0 and date["n_hurt"] == 1
    assert date["recommendation"].startswith("do not distil")

    logic = tasks["logic"]
    assert logic["kept_ratio"] == pytest.approx(500 / 450)
    assert logic["recommended_teacher"] == "small"
    assert "43.5" in logic["reason"] and "40.0" in logic["reason"]
    assert logic["capacity_gaps"][0]["verdict"] == "capacity gap observed"
    assert any("optimizer updates" in w for w in logic["warnings"])

    ab = rep["ablation"]
    assert ab["name"] == "cross-teacher-filter"
    assert [x["ablation"] for x in ab["tasks"]] == ["cross-teacher-filter"]
    cmp_rows = [(r["student_size"], r["setting"], r["unfiltered"], r["filtered"], r["delta"]) for r in ab["comparison"]]
    assert cmp_rows == [("135M", "plain", 20, 18, -2), ("14B", "plain", 70, 72, 2)]

    for f in ("accuracy_vs_size.png", "kept.png", "filter_ablation.png"):
        assert is_png(out / f), f
    md = (out / "report.md").read_text()
    assert "## Ablation: cross-teacher-filter" in md and "prefer the stronger teacher: big" in md
    assert "capacity gap observed" in md and "![accuracy vs student size](accuracy_vs_size.png)" in md
    # terminal: rich tables with the ablation labelled
    assert "Distillation analysis" in res.output and "ABLATION: cross-teacher-filter" in res.output
    # the analysed rows are written back as CSV that --csv accepts
    again = invoke("report", "--csv", out / "tables" / "distilled.csv", "--baseline-csv",
                   out / "tables" / "baseline.csv", "--out", tmp_path / "again", "--json")
    assert again.exit_code == 0, again.output
    assert [x["task"] for x in json.loads(again.output)["tasks"]] == ["gsm", "date", "logic"]


def test_csv_report_json_and_thresholds(tmp_path, csvs):
    d, b, t = csvs
    # with a kept-ratio threshold of 2.5, gsm's 2.0 no longer decides: best mean wins
    # (big (20+40+60+70)/4 = 47.5, small (25+41+55+62)/4 = 45.75 -> big, by mean score)
    res = invoke("report", "--csv", d, "--baseline-csv", b, "--teacher-csv", t, "--out", tmp_path / "o",
                 "--kept-ratio", "2.5", "--json")
    assert res.exit_code == 0, res.output
    gsm = json.loads(res.output)["tasks"][0]
    assert gsm["recommendation"] == "prefer teacher big" and "47.5" in gsm["reason"]
    assert json.loads(res.output)["parameters"] == {"noise_margin": 1.0, "kept_ratio_threshold": 2.5}


@pytest.mark.parametrize("args, message", [
    ([], "give run or sweep directories"),
    (["--csv", "{d}"], "--baseline-csv"),
    (["--csv", "{missing}", "--baseline-csv", "{b}"], "cannot read file"),
    (["--csv", "{b}", "--baseline-csv", "{b}"], "missing required column"),
    (["{missing}"], "does not exist"),
    (["{d}"], "is not a directory"),
    (["{empty}"], "no cotgap runs found"),
    (["--csv", "{d}", "--baseline-csv", "{b}", "--noise-margin", "-1"], "noise-margin"),
])
def test_report_bad_input_is_one_line_exit_2(tmp_path, csvs, args, message):
    d, b, _ = csvs
    (tmp_path / "empty").mkdir()
    subs = {"d": d, "b": b, "missing": tmp_path / "nope.csv", "empty": tmp_path / "empty"}
    res = CliRunner().invoke(cli, ["report", *[a.format(**subs) for a in args]])
    assert res.exit_code == 2, res.output
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.output


# ---------------------------------------------------------------------------------------------
# stored run directories (written by hand)
# ---------------------------------------------------------------------------------------------


def fake_run(root: Path, name: str, *, student: str, n_params: int, teacher: str, base: int, dist: int,
             gen: tuple[int, int], kept: int, updates: int, ablation: str | None = None, task: str = "T",
             n: int = 10) -> Path:
    """A finished plain run: ``base`` / ``dist`` correct of ``n`` test examples (docs 0.. correct;
    distilled is a superset of baseline), teacher generated ``gen[0]`` rationales, ``gen[1]`` correct."""
    d = root / name
    config = {"task": task, "student": student, "teachers": [teacher], "seed": 1, "scoring": "robust",
              "ablation": ablation, "bootstrap_iters": 1000, "strategy": "plain"}
    rd = RunDir(d)
    rd.claim(config)
    write_json(d / "config.json", config)
    write_json(d / "manifest.json", {"strategy": {"name": "plain", "plugin": "plain", "params": {}},
                                     "parameters": {student: n_params},
                                     "data": {"train": {"n": gen[0], "sha256": "tr"}, "test": {"n": n, "sha256": "te"}}})
    gens = [{"doc_id": i, "response": f"rationale {i}", "correct": i < gen[1]} for i in range(gen[0])]

    def samples(split, k):
        write_jsonl(d / split / "samples.jsonl", [{"doc_id": i, "response": "r", "correct": i < k} for i in range(n)])

    def generations():
        write_json(d / "generations" / "index.json", {teacher: "00.jsonl"})
        write_jsonl(d / "generations" / "00.jsonl", gens)

    rd.stage("baseline", "b", lambda: samples("baseline", base), outputs=("baseline",))
    g = rd.stage("generate", "g", generations, outputs=("generations",))
    f = rd.stage("filter", "f", lambda: write_jsonl(d / "filtered" / "00.jsonl", gens[:kept]), outputs=("filtered",),
                 consumes={"generate": g["key"]})
    t = rd.stage("train", "t", lambda: {"result": {"updates": updates, "examples": kept}}, consumes={"filter": f["key"]})
    rd.stage("distilled", "d", lambda: samples("distilled", dist), outputs=("distilled",), consumes={"train": t["key"]})
    rd.unlock()
    return d


@pytest.fixture()
def runs(tmp_path):
    """Task T, teachers big (8/10 correct = 80 %, kept 8) and small (5/10 = 50 %, kept 5): ratio 1.6.

    Students a (134,515,008 parameters -> "135M") and b (1.5e9 -> "1.5B"), n = 10 test examples:
        baseline   a 0/10 = 0 %     b 1/10 = 10 %
        big        a 5/10 = 50 %    b 9/10 = 90 %
        small      a 7/10 = 70 %    b 7/10 = 70 %
    every distilled run adds k >= 5 correct answers and loses none: per-example differences are k
    ones and 10 - k zeros, and a bootstrap resample's mean is <= 0.1 with probability
    P(Bin(10, k/10) <= 1) <= 0.011 < 0.025, so the 95 % interval's low end is > 0: 4/4 helped.
    Kept ratio 8/5 = 1.6 >= 1.3 -> prefer the stronger teacher, big.
    Capacity gap (stronger = big by teacher accuracy): adv(135M) = 70 - 50 = +20,
    adv(1.5B) = 70 - 90 = -20: observed, the advantage reverses.
    Updates: big 4, small 2 -> warning (compared configurations differ in optimizer updates).
    Ablation run (big -> a, cross-teacher-filter): kept 5, 6/10 = 60 %, updates 2 -> compared with
    plain 50 %: delta +10, kept 8 -> 5, updates 4 vs 2 -> warning.
    """
    root = tmp_path / "runs"
    A, B = 134_515_008, 1_500_000_000
    fake_run(root, "a-big", student="zoo-a", n_params=A, teacher="big", base=0, dist=5, gen=(10, 8), kept=8, updates=4)
    fake_run(root, "a-small", student="zoo-a", n_params=A, teacher="small", base=0, dist=7, gen=(10, 5), kept=5,
             updates=2)
    fake_run(root, "b-big", student="zoo-b", n_params=B, teacher="big", base=1, dist=9, gen=(10, 8), kept=8, updates=4)
    fake_run(root, "b-small", student="zoo-b", n_params=B, teacher="small", base=1, dist=7, gen=(10, 5), kept=5,
             updates=2)
    fake_run(root, "a-big-xfilter", student="zoo-a", n_params=A, teacher="big", base=0, dist=6, gen=(10, 8), kept=5,
             updates=2, ablation="cross-teacher-filter")
    (root / "unfinished").mkdir()
    write_json(root / "unfinished" / "config.json", {})
    write_json(root / "unfinished" / "manifest.json", {})
    return root


def test_report_from_run_dirs(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke("report", runs)
    assert res.exit_code == 0, res.output
    out = tmp_path / "cotgap-report"  # default output: ./cotgap-report, never inside the inputs
    rep = read_json(out / "report.json")
    (t,) = rep["tasks"]
    assert t["effective"] and t["n_helped"] == 4
    cells = {(c["teacher"], c["student_size"]): c for c in t["cells"]}
    assert set(cells) == {("big", "135M"), ("small", "135M"), ("big", "1.5B"), ("small", "1.5B")}
    assert (cells["big", "135M"]["distilled"], cells["big", "135M"]["baseline"]) == (50, 0)
    assert cells["big", "1.5B"]["diff"] == pytest.approx(80) and cells["big", "1.5B"]["ci_low"] > 0
    assert {x["teacher"]: (x["accuracy"], x["kept"]) for x in t["teachers"]} == {"big": (80, 8), "small": (50, 5)}
    assert t["kept_ratio"] == pytest.approx(1.6) and t["recommended_teacher"] == "big"
    (gap,) = t["capacity_gaps"]
    assert gap["advantages"] == pytest.approx([20, -20]) and gap["verdict"] == "capacity gap observed"
    assert any("optimizer updates" in w for w in t["warnings"])
    assert any("unfinished" in w and "incomplete" in w for w in rep["warnings"])
    assert len(rep["inputs"]["runs"]) == 5

    ab = rep["ablation"]
    (row,) = ab["comparison"]
    assert (row["teacher"], row["student"], row["unfiltered"], row["filtered"], row["delta"]) == \
        ("big", "zoo-a", 50, 60, 10)
    assert (row["kept_unfiltered"], row["kept_filtered"], row["updates_unfiltered"], row["updates_filtered"]) == \
        (8, 5, 4, 2)
    assert any("differ in optimizer updates" in w for w in ab["warnings"])
    assert ab["tasks"][0]["cells"][0]["setting"] == "plain+cross-teacher-filter"
    for f in ("accuracy_vs_size.png", "kept.png", "filter_ablation.png"):
        assert is_png(out / f), f
    # each run's own report was rebuilt from its samples, into the report's folder, not the run's
    assert read_json(out / "runs" / "a-big" / "report.json")["schema"] == "cotgap.run/1"
    assert is_png(out / "runs" / "a-big" / "report.png")
    assert not (runs / "a-big" / "report.json").exists() and not (runs / "report.json").exists()


def test_report_of_one_run_dir_writes_elsewhere(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke("report", runs / "a-big")
    assert res.exit_code == 0, res.output
    assert read_json(tmp_path / "cotgap-report" / "report.json")["schema"] == "cotgap.report/1"
    assert read_json(tmp_path / "cotgap-report" / "runs" / "a-big" / "report.json")["schema"] == "cotgap.run/1"
    bad = CliRunner().invoke(cli, ["report", str(runs / "a-big"), "--out", str(runs / "a-big")])
    assert bad.exit_code == 2 and "run directory" in bad.stderr


def test_size_labels_sort_numerically():
    from cotgap.report.tables import parse_size

    assert size_label(115_008) == "0.115M"
    assert size_label(134_515_008) == "135M"
    assert size_label(494_032_768) == "494M"
    assert size_label(999_700_000) == "1B"
    assert size_label(1_777_088_000) == "1.78B"
    labels = ["7B", "0.5B", "14B", "1.5B", "135M"]
    assert sorted(labels, key=parse_size) == ["135M", "0.5B", "1.5B", "7B", "14B"]


def test_teacher_csv_overrides_run_teachers(runs, tmp_path):
    # few-shot test accuracies measured elsewhere: small 85 > big 60 now makes small the stronger
    # teacher; kept counts unknown -> no kept ratio -> best mean distilled score:
    # big (50 + 90) / 2 = 70, small (70 + 70) / 2 = 70 -> tie, ordered by name: big.
    t = write(tmp_path / "t.csv", "task,teacher,accuracy,kept\nT,big,60,\nT,small,85,\n")
    res = invoke("report", runs, "--teacher-csv", t, "--out", tmp_path / "o", "--json")
    assert res.exit_code == 0, res.output
    (task,) = json.loads(res.stdout)["tasks"]
    assert {x["teacher"]: (x["accuracy"], x["kept"]) for x in task["teachers"]} == {"big": (60, None),
                                                                                     "small": (85, None)}
    assert task["strongest_teacher"] == "small" and task["kept_ratio"] is None
    assert task["recommended_teacher"] == "big" and "Kept-example counts are unknown" in task["reason"]
    # stronger = small now: adv = big - small = 50 - 70 = -20 at 135M -> no capacity gap
    assert task["capacity_gaps"][0]["verdict"] == "no capacity gap"
