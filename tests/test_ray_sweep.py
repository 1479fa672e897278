"""`cotgap sweep --executor ray`, the parts that need no Ray instance: jobs and dependencies follow
the plan, sampled generations get a job per seed, and bad setups are one-line errors (exit 2).

The tests that need one (the real 2 × 2 tiny-model sweep under Ray, compared with the local
executor's and resumed from it; a failed task's dependants; a resource no node has) are in
tests/test_sweep.py: they reuse its local sweep and share conftest's one Ray instance, which this
file then never starts (with xdist, each worker process would start its own)."""

from __future__ import annotations

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
    grid = load_grid(
        tiny_grid(
            tmp_path, tiny_student, tiny_teacher, 'strategies: [plain, mix]\nresources: {"scripted:short": {num_cpus: 2}}\n'
        ),
        out=str(tmp_path / "sw"),
    )
    order = run_order(grid.cells)
    tasks = ray_executor.build_tasks(grid, plan_mod.build_plan(grid), order, force=False, threads=None)
    jobs = [t for t in tasks if t.kind == "job"]
    cells = {t.name: t for t in tasks if t.kind == "cell"}
    assert tasks[: len(jobs)] == jobs and all(t.deps == [] for t in jobs)
    assert len(jobs) == 2 + 2  # generations: 2 teachers (mix is greedy too); baselines: 2 students
    short = [t for t in jobs if t.args[0].model == "scripted:short"]
    assert short[0].resources == {"num_cpus": 2} and short[0].args[3] == 2  # its threads: the CPUs it holds
    # one session per model: each model's jobs on one actor, the last of them closing its engine
    assert len({t.session for t in jobs}) == 4 and [t.args[-1] for t in jobs] == [True] * 4
    assert list(cells) == [c.name for c in order]
    for c in grid.cells:
        deps = cells[c.name].deps
        assert sum(d.startswith("job:") for d in deps) == len(c.teachers) + 1  # generations + baseline
        assert (f"cell:{c.reference}" in deps) if c.reference else not any(d.startswith("cell:") for d in deps)
    assert any(c.reference for c in grid.cells)


@pytest.mark.parametrize(
    "args, setup, message",
    [
        (["--address", "auto"], None, "--address goes with --executor ray"),
        (["--executor", "ray", "--address", "127.0.0.1:1"], None, "cannot reach the Ray cluster at 127.0.0.1:1"),
        (["--executor", "ray"], "no-ray", "pip install 'cotgap[ray]'"),
    ],
)
def test_bad_setups_are_one_line_errors(tmp_path, monkeypatch, tiny_student, tiny_teacher, args, setup, message):
    """Refused before Ray is started (a resource no node has: tests/test_sweep.py, which has a Ray instance)."""
    grid = tiny_grid(tmp_path, tiny_student, tiny_teacher)
    if setup == "no-ray":
        monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    res = sweep(grid, tmp_path / "sw", *args)
    assert res.exit_code == 2, res.output[-2000:]
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sw" / "sweep.json").exists()


def test_sampled_generation_jobs_are_one_per_seed(tmp_path, tiny_student, tiny_teacher):
    """Sampled rationales are cached per run seed, so each seed replicate gets its own job (a job
    shared across seeds would fill one seed's entry only); greedy ones are shared by the seeds."""

    def jobs(params: str) -> int:
        g = load_grid(tiny_grid(tmp_path, tiny_student, tiny_teacher, f"seeds: [1, 2]\nstrategy_params: {params}\n"))
        return len(plan_mod.build_plan(g)["generation_jobs"])

    assert jobs("{plain: {samples: 2, temperature: 0.7}}") == 2 * 2  # teachers × seeds
    assert jobs("{plain: {samples: 1}}") == 2  # teachers
