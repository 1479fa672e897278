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
# No test-set sizes in these tables: every noise margin is the fixed 1-point fallback (announced).
#
# Task "gsm": teachers big (32B, 80 %, kept 800) and small (3B, 50 %, kept 400): big has more
# capacity (parameters); kept ratio 800/400 = 2.0. Mean distilled accuracy big 47.5, small 45.75:
# 1.75 points apart, more than the margin, so distilled accuracy decides: big.
# Student sizes are given out of string order (14B < 7B as strings) to check the numeric sort:
#     size   baseline  big  small   small - big
#     135M      10      20    25        +5
#     1.5B      30      40    41        +1
#     7B        50      60    55        -5
#     14B       60      70    62        -8
# every diff vs baseline is >= +2 > 1 (noise margin): 8/8 helped -> effective.
# capacity gap, smaller half (135M, 1.5B) against larger half (7B, 14B): mean advantage +3 > 1,
# then -6.5: a drop of 9.5 > 1 -> observed; -6.5 < -1, so it reverses.
#
# Task "date": baseline 10 (135M) and 60 (14B); big 10 / 59 (diff 0, -1: within the margin),
# small 9 / 50 (diff -1: within; -10: hurt) -> 0 of 4 helped -> not effective: do not distil.
#
# Task "logic": big (70 %, kept 500) and small (65 %, kept 450): the students' means big
# (30 + 50) / 2 = 40, small (35 + 52) / 2 = 43.5 are 3.5 apart -> distilled accuracy decides: small.
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
task,teacher,accuracy,kept,teacher_size
gsm,big,80,800,32B
gsm,small,50,400,3B
date,big,80,,32B
date,small,50,,3B
logic,big,70,500,32B
logic,small,65,450,3B
"""


@pytest.fixture()
def csvs(tmp_path):
    return (
        write(tmp_path / "distilled.csv", DISTILLED),
        write(tmp_path / "baseline.csv", BASELINE),
        write(tmp_path / "teachers.csv", TEACHERS),
    )


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
    assert gsm["kept_ratio"] == pytest.approx(2.0) and gsm["capacity_basis"] == "parameters"
    assert gsm["recommended_teacher"] == "big" and gsm["decided_by"] == "distilled accuracy"
    assert any("fixed 1-point fallback" in w for w in gsm["warnings"])
    (gap,) = gsm["capacity_gaps"]
    assert (gap["stronger"], gap["weaker"], gap["basis"]) == ("big", "small", "parameters")
    assert gap["sizes"] == ["135M", "1.5B", "7B", "14B"]
    assert gap["advantages"] == pytest.approx([5, 1, -5, -8])
    assert (gap["mean_advantage_small"], gap["mean_advantage_large"]) == pytest.approx((3, -6.5))
    assert gap["verdict"] == "capacity gap observed" and "reverses" in gap["detail"]
    assert gsm["ablation"] is None

    date = tasks["date"]
    assert not date["effective"] and date["n_helped"] == 0 and date["n_hurt"] == 1
    assert date["recommendation"].startswith("do not distil")

    logic = tasks["logic"]
    assert logic["kept_ratio"] == pytest.approx(500 / 450)
    assert logic["recommended_teacher"] == "small" and logic["decided_by"] == "distilled accuracy"
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
    assert "## Ablation: cross-teacher-filter" in md and "prefer teacher big" in md
    assert "*(decided by: distilled accuracy)*" in md and "McNemar's exact test" in md
    assert "capacity gap observed" in md and "![accuracy vs student size](accuracy_vs_size.png)" in md
    # terminal: rich tables with the ablation labelled
    assert "Distillation analysis" in res.output and "ABLATION: cross-teacher-filter" in res.output
    # the analysed rows are written back as CSV that --csv accepts
    again = invoke(
        "report",
        "--csv",
        out / "tables" / "distilled.csv",
        "--baseline-csv",
        out / "tables" / "baseline.csv",
        "--out",
        tmp_path / "again",
        "--json",
    )
    assert again.exit_code == 0, again.output
    assert [x["task"] for x in json.loads(again.output)["tasks"]] == ["gsm", "date", "logic"]


def test_csv_report_json_and_thresholds(tmp_path, csvs):
    d, b, t = csvs
    # the kept ratio never overrides a measured difference: gsm is decided by the students' means
    # (big (20+40+60+70)/4 = 47.5, small (25+41+55+62)/4 = 45.75 -> big) whatever the threshold
    res = invoke(
        "report", "--csv", d, "--baseline-csv", b, "--teacher-csv", t, "--out", tmp_path / "o", "--kept-ratio", "2.5", "--json"
    )
    assert res.exit_code == 0, res.output
    gsm = json.loads(res.output)["tasks"][0]
    assert gsm["recommendation"] == "prefer teacher big" and "47.5" in gsm["reason"]
    assert json.loads(res.output)["parameters"] == {
        "test": "mcnemar-exact",
        "multiplicity": "holm",
        "alpha": 0.05,
        "noise_margin": None,
        "noise_z": 1.96,
        "kept_ratio_threshold": 2.5,
        "capacity_ratio": 1.25,
    }
    # an explicit noise margin of 2 points ties gsm's 1.75: the kept ratio 2.0 >= 1.3 breaks the tie
    from cotgap.report import build, collect

    rep, _, _ = build.build(collect.collect((), str(d), str(b), str(t)), noise_margin=2.0, alpha=0.1)
    gsm = rep["tasks"][0]
    assert (gsm["recommended_teacher"], gsm["decided_by"]) == ("big", "kept-ratio tie-break")
    assert (rep["parameters"]["noise_margin"], rep["parameters"]["alpha"]) == (2.0, 0.1)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give run or sweep directories"),
        (["--csv", "{d}"], "--baseline-csv"),
        (["--csv", "{missing}", "--baseline-csv", "{b}"], "cannot read file"),
        (["--csv", "{b}", "--baseline-csv", "{b}"], "missing required column"),
        (["{missing}"], "does not exist"),
        (["{d}"], "is not a directory"),
        (["{empty}"], "no cotgap runs found"),
        (["--csv", "{d}", "--baseline-csv", "{b}", "--noise-margin", "-1"], "noise-margin"),
        (["--csv", "{d}", "--baseline-csv", "{b}", "--alpha", "1"], "--alpha must lie strictly between 0 and 1"),
        (["--csv", "{d}", "--baseline-csv", "{b}", "--noise-z", "0"], "--noise-z"),
    ],
)
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


def fake_run(
    root: Path,
    name: str,
    *,
    student: str,
    n_params: int,
    teacher: str,
    base: int,
    dist: int,
    gen: tuple[int, int],
    kept: int,
    updates: int,
    ablation: str | None = None,
    task: str = "T",
    n: int = 60,
    teacher_params: int | None = None,
    seed: int = 1,
    samples: int = 1,
    extra: dict | None = None,
    config: dict | None = None,
) -> Path:
    """A finished plain run: ``base`` / ``dist`` correct of ``n`` test examples (docs 0.. correct;
    distilled is a superset of baseline); the teacher wrote ``samples`` rationales for each of
    ``gen[0]`` questions, right on the first ``gen[1]``, and the first ``kept`` questions' rationales
    were kept. ``extra``: more sources, name -> (questions, kept), e.g. a teacher assistant's."""
    d = root / name
    config = {
        "task": task,
        "student": student,
        "teachers": [teacher],
        "seed": seed,
        "scoring": "robust",
        "ablation": ablation,
        "bootstrap_iters": 1000,
        "strategy": "plain",
        **(config or {}),
    }
    rd = RunDir(d)
    rd.claim(config)
    write_json(d / "config.json", config)
    params = {student: n_params, **({teacher: teacher_params} if teacher_params else {})}
    write_json(
        d / "manifest.json",
        {
            "strategy": {"name": "plain", "plugin": "plain", "params": {}},
            "parameters": params,
            "data": {"train": {"n": gen[0], "sha256": "tr"}, "test": {"n": n, "sha256": "te"}},
        },
    )
    gens = [
        {"doc_id": i, "sample": k, "response": f"rationale {i}", "correct": i < gen[1], "model": teacher}
        for i in range(gen[0])
        for k in range(samples)
    ]
    sources = {teacher: (gens, [g for g in gens if g["doc_id"] < kept])}
    for src, (q, k) in (extra or {}).items():
        recs = [{"doc_id": i, "response": "ta rationale", "correct": True, "model": f"/cache/{src}"} for i in range(q)]
        sources[src] = (recs, recs[:k])

    def samples_of(split, k):
        write_jsonl(d / split / "samples.jsonl", [{"doc_id": i, "response": "r", "correct": i < k} for i in range(n)])

    def generations():
        write_json(d / "generations" / "index.json", {src: f"{i:02d}.jsonl" for i, src in enumerate(sources)})
        for i, (recs, _) in enumerate(sources.values()):
            write_jsonl(d / "generations" / f"{i:02d}.jsonl", recs)

    def filtered():
        for i, (_, k) in enumerate(sources.values()):
            write_jsonl(d / "filtered" / f"{i:02d}.jsonl", k)

    rd.stage("baseline", "b", lambda: samples_of("baseline", base), outputs=("baseline",))
    g = rd.stage("generate", "g", generations, outputs=("generations",))
    f = rd.stage("filter", "f", filtered, outputs=("filtered",), consumes={"generate": g["key"]})
    t = rd.stage("train", "t", lambda: {"result": {"updates": updates, "examples": kept}}, consumes={"filter": f["key"]})
    rd.stage("distilled", "d", lambda: samples_of("distilled", dist), outputs=("distilled",), consumes={"train": t["key"]})
    rd.unlock()
    return d


A, B = 134_515_008, 1_500_000_000  # students: "135M" and "1.5B"
BIG, SMALL = 7_000_000_000, 3_000_000_000  # teachers: big has more capacity (parameters)
TA = "TA:dare_ties(small,big)"


def four_runs(root: Path, **kw) -> None:
    """The four plain runs of the ``runs`` fixture (``kw`` goes to every one)."""
    fake_run(
        root,
        "a-big",
        student="zoo-a",
        n_params=A,
        teacher="big",
        teacher_params=BIG,
        base=0,
        dist=30,
        gen=(20, 16),
        kept=16,
        updates=4,
        samples=2,
        **kw,
    )
    fake_run(
        root,
        "a-small",
        student="zoo-a",
        n_params=A,
        teacher="small",
        teacher_params=SMALL,
        base=0,
        dist=42,
        gen=(20, 10),
        kept=10,
        updates=2,
        extra={TA: (20, 20)},
        **kw,
    )
    fake_run(
        root,
        "b-big",
        student="zoo-b",
        n_params=B,
        teacher="big",
        teacher_params=BIG,
        base=6,
        dist=54,
        gen=(20, 16),
        kept=16,
        updates=4,
        samples=2,
        **kw,
    )
    fake_run(
        root,
        "b-small",
        student="zoo-b",
        n_params=B,
        teacher="small",
        teacher_params=SMALL,
        base=6,
        dist=42,
        gen=(20, 10),
        kept=10,
        updates=2,
        extra={TA: (20, 20)},
        **kw,
    )


@pytest.fixture()
def runs(tmp_path):
    """Task T, n = 60 test examples. Teachers big (7B; 2 rationales for each of 20 questions, right on
    16: 32/40 = 80 %, kept 16 questions = 32 rationales) and small (3B; 10/20 = 50 %, kept 10). The
    small runs also hold a teacher assistant's source (20 questions, all kept): credited to no
    teacher, so small still has 50 % and 10 kept. Kept ratio big / small = 16 / 10 = 1.6.

    Students a (134,515,008 parameters -> "135M") and b (1.5e9 -> "1.5B"):
        baseline   a 0/60 = 0 %      b 6/60 = 10 %
        big        a 30/60 = 50 %    b 54/60 = 90 %
        small      a 42/60 = 70 %    b 42/60 = 70 %
    every distilled run only adds correct answers: 30, 42, 48 and 36 wins, no loss -> exact p-values
    below 1e-8, helped after Holm: 4/4 -> effective.
    Means big (50 + 90) / 2 = 70 = small (70 + 70) / 2: tied -> the kept ratio 1.6 >= 1.3 breaks it: big.
    Capacity gap (stronger = big by parameters): adv(135M) = 70 - 50 = +20, adv(1.5B) = 70 - 90 = -20;
    margins at n = 60: 1.96 x 8.6 = 16.9 for the lead and 1.96 x 11.2 = 21.9 for the drop of 40: observed,
    reverses. Updates: big 4, small 2 -> warning.
    Ablation run (big -> a, cross-teacher-filter): kept 5, 36/60 = 60 %, updates 2 -> compared with
    plain 50 %: delta +10, kept 16 -> 5, updates 4 vs 2 -> warning.
    """
    root = tmp_path / "runs"
    four_runs(root)
    fake_run(
        root,
        "a-big-xfilter",
        student="zoo-a",
        n_params=A,
        teacher="big",
        teacher_params=BIG,
        base=0,
        dist=36,
        gen=(20, 16),
        kept=5,
        updates=2,
        ablation="cross-teacher-filter",
    )
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
    big_a = cells["big", "135M"]
    assert (big_a["distilled"], big_a["baseline"], big_a["n"], big_a["wins"], big_a["losses"]) == (50, 0, 60, 30, 0)
    # Holm: the largest of the four p-values (30 wins) keeps its value, the smallest (48 wins) is multiplied by 4
    assert big_a["p_value"] < 1e-8 and big_a["p_adjusted"] == pytest.approx(big_a["p_value"])
    big_b = cells["big", "1.5B"]
    assert (big_b["wins"], big_b["p_adjusted"]) == (48, pytest.approx(4 * big_b["p_value"]))
    assert cells["big", "1.5B"]["diff"] == pytest.approx(80) and cells["big", "1.5B"]["ci_low"] > 0
    teachers = {x["teacher"]: x for x in t["teachers"]}
    assert {k: (x["accuracy"], x["kept"], x["kept_rationales"], x["params_b"]) for k, x in teachers.items()} == {
        "big": (80, 16, 32, 7.0),
        "small": (50, 10, 10, 3.0),
    }  # kept per question; the TA's 20 not credited
    assert (t["strongest_teacher"], t["capacity_basis"]) == ("big", "parameters")
    assert t["kept_ratio"] == pytest.approx(1.6)
    assert (t["recommended_teacher"], t["decided_by"]) == ("big", "kept-ratio tie-break")
    (gap,) = t["capacity_gaps"]
    assert gap["advantages"] == pytest.approx([20, -20]) and gap["verdict"] == "capacity gap observed"
    assert "reverses" in gap["detail"] and "SE" in gap["margin_how"]
    assert any("optimizer updates" in w for w in t["warnings"]) and t["updates_note"] is None
    assert any("unfinished" in w and "incomplete" in w for w in rep["warnings"])
    assert len(rep["inputs"]["runs"]) == 5

    ab = rep["ablation"]
    (row,) = ab["comparison"]
    assert (row["teacher"], row["student"], row["unfiltered"], row["filtered"], row["delta"]) == ("big", "zoo-a", 50, 60, 10)
    assert (row["kept_unfiltered"], row["kept_filtered"], row["updates_unfiltered"], row["updates_filtered"]) == (16, 5, 4, 2)
    assert any("differ in optimizer updates" in w for w in ab["warnings"]) and ab["updates_note"] is None
    assert ab["tasks"][0]["cells"][0]["setting"] == "plain+cross-teacher-filter"
    for f in ("accuracy_vs_size.png", "kept.png", "filter_ablation.png"):
        assert is_png(out / f), f
    # each run's own report was rebuilt from its samples, into the report's folder, not the run's
    own = read_json(out / "runs" / "a-big" / "report.json")
    assert own["schema"] == "cotgap.run/1"
    assert {k: own["difference"][k] for k in ("test", "wins", "losses", "alpha")} == {
        "test": "mcnemar-exact",
        "wins": 30,
        "losses": 0,
        "alpha": 0.05,
    }
    assert own["difference"]["p_value"] < 1e-8 and own["verdict"] == "helped"
    assert own["teacher_data"][0]["kept"] == 16 and own["sources"][0]["kept_questions"] == 16
    assert read_json(out / "runs" / "a-small" / "report.json")["uncredited_sources"] == [TA]
    assert is_png(out / "runs" / "a-big" / "report.png")
    assert not (runs / "a-big" / "report.json").exists() and not (runs / "report.json").exists()
    # the deciding rule, raw and adjusted p: on the terminal and in the markdown
    squeezed = "".join(res.output.split())  # rich wraps lines wherever the terminal width falls
    assert "(decidedby:kept-ratiotie-break)" in squeezed
    md = (out / "report.md").read_text()
    assert "*(decided by: kept-ratio tie-break)*" in md and "| p (Holm) |" in md and "run verdict" in md


def test_replicates_over_seeds(tmp_path):
    """Runs of big -> a with seeds 1 and 2 (30 and 36 of 60 right: 50 % and 60 %) are replicates:
    two cells, one group of mean 55 +- 7.07 (sample sd of 50, 60). A second run with seed 2 repeats
    that seed (the newer is used); a run that also changes ``scoring`` is another config (the
    newer config's runs are used). Every run is configured with alpha 0.01: the report uses it.
    (The report is built and rendered in-process, without writing plots.)"""
    from rich.console import Console

    from cotgap.report import build, collect, render

    root = tmp_path / "runs"
    four_runs(root, config={"alpha": 0.01})
    fake_run(
        root,
        "a-big-s2-old",
        student="zoo-a",
        n_params=A,
        teacher="big",
        teacher_params=BIG,
        base=0,
        dist=33,
        gen=(20, 16),
        kept=16,
        updates=4,
        seed=2,
        config={"alpha": 0.01},
    )
    fake_run(
        root,
        "a-big-s2",
        student="zoo-a",
        n_params=A,
        teacher="big",
        teacher_params=BIG,
        base=0,
        dist=36,
        gen=(20, 16),
        kept=16,
        updates=4,
        seed=2,
        config={"alpha": 0.01},
    )
    rep, prim, abl = build.build(collect.collect([root]))
    assert rep["parameters"]["alpha"] == 0.01
    (t,) = rep["tasks"]
    assert t["n_cells"] == 5
    (g,) = t["replicates"]
    assert (g["teacher"], g["student"], g["seeds"]) == ("big", "zoo-a", ["1", "2"])
    assert (g["distilled_mean"], g["distilled_sd"]) == pytest.approx((55, 7.0711), abs=1e-3)
    assert g["verdicts"] == ["helped", "helped"]
    assert any("a-big-s2-old" in w and "seed 2" in w for w in rep["warnings"])
    assert [r["seed"] for r in rep["inputs"]["runs"]].count("2") == 1
    md = render.to_markdown(rep)
    assert "over seeds: diff mean ± sd" in md and "+55.0 ± 7.1 (2 seeds)" in md
    console = Console(record=True, width=250)
    render.render(rep, prim, abl, console)
    assert "replicates over training seeds" in console.export_text()
    other = fake_run(
        root,
        "a-big-strict",
        student="zoo-a",
        n_params=A,
        teacher="big",
        teacher_params=BIG,
        base=0,
        dist=30,
        gen=(20, 16),
        kept=16,
        updates=4,
        config={"alpha": 0.01, "scoring": "strict"},
    )
    (other / "stages" / "distilled.json").touch()
    rep, _, _ = build.build(collect.collect([root]))
    assert any("differ in more than their seed" in w for w in rep["warnings"])
    assert not rep["tasks"][0]["replicates"]  # the newest config (strict) has one seed


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
    # accuracies measured elsewhere and a declared role: small "strong", big "weak" (parameters would
    # say the opposite); the empty kept column leaves the runs' kept counts (16 and 10) in place.
    t = write(tmp_path / "t.csv", "task,teacher,accuracy,kept,role\nT,big,60,,weak\nT,small,85,,strong\n")
    res = invoke("report", runs, "--teacher-csv", t, "--out", tmp_path / "o", "--json")
    assert res.exit_code == 0, res.output
    (task,) = json.loads(res.stdout)["tasks"]
    assert {x["teacher"]: (x["accuracy"], x["kept"], x["role"]) for x in task["teachers"]} == {
        "big": (60, 16, "weak"),
        "small": (85, 10, "strong"),
    }
    assert (task["strongest_teacher"], task["capacity_basis"]) == ("small", "declared role")
    assert task["kept_ratio"] == pytest.approx(10 / 16)
    # means tied (70 = 70); big keeps 1.6x as many questions -> big, by the tie-break (not by role)
    assert (task["recommended_teacher"], task["decided_by"]) == ("big", "kept-ratio tie-break")
    # stronger = small now: adv = big - small = 50 - 70 = -20 at 135M -> no capacity gap
    assert task["capacity_gaps"][0]["verdict"] == "no capacity gap"
