"""`cotgap sweep --executor ray` on the session's local Ray instance (conftest's ``ray_instance``:
this machine's CPUs, no GPU): jobs and dependencies follow the plan, the driver's scheduling keeps
a failed task's dependants going, and bad setups are one-line errors (exit 2). The real 2 × 2
tiny-model sweep under Ray, compared with the local executor's and resumed from it, is in
tests/test_sweep.py (it reuses that file's local sweep)."""

from __future__ import annotations

import operator
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.pipeline import plan as plan_mod
from cotgap.pipeline import ray_executor
from cotgap.pipeline.grid import load_grid
from cotgap.pipeline.sweep import run_order


def tiny_grid(folder: Path, student: str, teacher: str, extra: str = "") -> Path:
    """tests/test_sweep.py's grid: 2 tiny students × the scripted teacher (short; long, 20 % wrong)."""
    p = folder / "grid.yaml"
    p.write_text(f"""
name: tiny
tasks: [synthetic_navigate]
students: ["{student}", "{teacher}"]
teachers: ["scripted:short", "scripted:long:0.2"]
strategies: [plain]
limit: 4
bootstrap_iters: 500
generation: {{backend: hf}}
{extra}""")
    return p


def sweep(grid: Path, out: Path, *args: str):
    return CliRunner().invoke(cli, ["sweep", "--config", str(grid), "--out", str(out), "--no-report", *args])


def test_jobs_and_dependencies_follow_the_plan(tmp_path, tiny_student, tiny_teacher):
    """Jobs first, with the teacher's / student's resources; a cell waits for its jobs and (equal
    updates) its reference cell."""
    grid = load_grid(tiny_grid(tmp_path, tiny_student, tiny_teacher,
                               "strategies: [plain, mix]\nresources: {\"scripted:short\": {num_cpus: 2}}\n"),
                     out=str(tmp_path / "sw"))
    order = run_order(grid.cells)
    tasks = ray_executor.build_tasks(grid, plan_mod.build_plan(grid), order, force=False, threads=None)
    jobs = [t for t in tasks if t.kind == "job"]
    cells = {t.name: t for t in tasks if t.kind == "cell"}
    assert tasks[:len(jobs)] == jobs and all(t.deps == [] for t in jobs)
    assert len(jobs) == 2 + 2  # generations: 2 teachers (mix is greedy too); baselines: 2 students
    short = [t for t in jobs if t.args[0].model == "scripted:short"]
    assert short[0].resources == {"num_cpus": 2} and short[0].args[-1] == 2  # its threads: the CPUs it holds
    assert list(cells) == [c.name for c in order]
    for c in grid.cells:
        deps = cells[c.name].deps
        assert sum(d.startswith("job:") for d in deps) == len(c.teachers) + 1  # generations + baseline
        assert (f"cell:{c.reference}" in deps) if c.reference else not any(d.startswith("cell:") for d in deps)
    assert any(c.reference for c in grid.cells)


def _rec(name: str) -> dict:
    return {"name": name, "status": "done"}


def test_a_failed_task_is_recorded_and_its_dependants_run(ray_instance, tmp_path):
    def task(key, fn, args, deps):
        return ray_executor.Task(key, fn, args, {"num_cpus": 1}, deps, lambda: {"name": key, "status": "failed"},
                                 tmp_path / key.replace(":", "-"))

    tasks = [task("cell:c", dict, (_rec("c"),), ["cell:b"]),
             task("cell:b", dict, (_rec("b"),), ["job:a"]),
             task("job:a", operator.truediv, (1, 0), [])]
    seen = []
    ray_executor.schedule(ray_instance, tasks, lambda t, rec: seen.append((t.key, rec)))
    assert [k for k, _ in seen] == ["job:a", "cell:b", "cell:c"]
    failed = seen[0][1]
    assert failed["status"] == "failed" and failed["reason"].startswith("ray: ZeroDivisionError: division by zero")
    assert "ZeroDivisionError" in (tmp_path / "job-a" / "error.log").read_text()
    assert [rec["status"] for _, rec in seen[1:]] == ["done", "done"]


@pytest.mark.parametrize("args, setup, message", [
    (["--address", "auto"], None, "--address goes with --executor ray"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], None, "cannot reach the Ray cluster at 127.0.0.1:1"),
    (["--executor", "ray"], "no-ray", "pip install 'cotgap[ray]'"),
    (["--executor", "ray"], "gpus", "no node of the Ray cluster has that much"),
])
def test_bad_setups_are_one_line_errors(ray_instance, tmp_path, monkeypatch, tiny_student, tiny_teacher,
                                        args, setup, message):
    grid = tiny_grid(tmp_path, tiny_student, tiny_teacher, "resources: {default: {num_gpus: 1}}\n" if setup == "gpus" else "")
    if setup == "no-ray":
        monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    res = sweep(grid, tmp_path / "sw", *args)
    assert res.exit_code == 2, res.output[-2000:]
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sw" / "sweep.json").exists()
