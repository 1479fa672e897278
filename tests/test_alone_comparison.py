"""A sweep's each-teacher-alone cells in the cross-run report (issue 23, item 3): the runs a sweep
made on each teacher of a combined cell (mix) alone are shown beside that cell — accuracies,
combined − alone with its noise margin, a reading — and kept out of the main analysis."""

import json

from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.jsonio import read_json, write_json
from cotgap.report.alone import ALONE_BETTER, COMBINED_BETTER, WITHIN_NOISE, compare
from cotgap.report.noise import Noise
from cotgap.report.sweep_file import SCHEMA
from tests.test_report_cli import BIG, SMALL, A, fake_run


def _sweep(tmp_path):
    """A combined (mix) cell on big+small and plain cells on big alone and on small alone, n = 60:
    mix 45/60 = 75 %, big alone 30/60 = 50 %, small alone 42/60 = 70 %; all at 4 updates but small's 3."""
    root = tmp_path / "sw"
    common = {"student": "zoo-a", "n_params": A, "base": 0, "gen": (20, 16), "kept": 16}
    mixed = fake_run(root, "mix-cell", teacher="big", teacher_params=BIG, dist=45, updates=4, **common)
    manifest = read_json(mixed / "manifest.json")
    write_json(mixed / "manifest.json", {**manifest, "strategy": {"name": "mix", "plugin": "mix", "params": {}}})
    fake_run(root, "alone-big", teacher="big", teacher_params=BIG, dist=30, updates=4, **common)
    fake_run(root, "alone-small", teacher="small", teacher_params=SMALL, dist=42, updates=3, **common)
    cells = [
        {"name": "mix-cell", "dir": str(root / "mix-cell"), "status": "done", "alone_of": None},
        {"name": "alone-big", "dir": str(root / "alone-big"), "status": "done", "alone_of": "mix-cell"},
        {"name": "alone-small", "dir": str(root / "alone-small"), "status": "done", "alone_of": "mix-cell"},
    ]
    write_json(
        root / "sweep.json",
        {
            "schema": SCHEMA,
            "name": "sw",
            "dir": str(root),
            "cells": cells,
            "generations": {"computed": 0, "reused": 0},
            "counts": {"done": 3},
        },
    )
    return root


def test_report_shows_each_teacher_alone_beside_the_combined_cell(tmp_path):
    root = _sweep(tmp_path)
    res = CliRunner().invoke(cli, ["report", str(root), "--out", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    (group,) = report["alone_comparisons"]
    assert (group["setting"], group["accuracy"], group["updates"]) == ("mix", 75.0, 4)
    big, small = group["alone"]
    assert (big["teacher"], big["accuracy"], big["delta"], big["reading"]) == ("big", 50.0, 25.0, COMBINED_BETTER)
    assert (small["teacher"], small["delta"], small["reading"]) == ("small", 5.0, WITHIN_NOISE)
    assert big["margin"] > 5 and "n = 60" in big["margin_how"]
    # the alone runs are not cells of the main analysis (the mix cell is)
    assert [(c["setting"], c["teacher"]) for c in report["tasks"][0]["cells"]] == [("mix", "big")]
    assert any("small alone trained 3 updates, the combined cell 4" in w for w in report["warnings"])
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Combined teachers vs each teacher alone" in md and "+25.0" in md


def test_readings_follow_the_margin():
    row = {"task": "t", "setting": "mix", "teacher": "a+b", "student": "s", "student_size": "1B", "n": 100, "updates": 5}
    pairs = [
        {"combined": {**row, "accuracy": 40}, "alone": {**row, "teacher": t, "accuracy": acc}, "combined_dir": "d"}
        for t, acc in (("a", 70), ("b", 40))
    ]
    (g,), warnings = compare(pairs, Noise())
    assert [e["reading"] for e in g["alone"]] == [ALONE_BETTER, WITHIN_NOISE] and warnings == []
    (g,), _ = compare(pairs, Noise(margin=50.0))  # an explicit margin replaces the computed one
    assert [e["reading"] for e in g["alone"]] == [WITHIN_NOISE, WITHIN_NOISE]
