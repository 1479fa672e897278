"""`cotgap sweep`: grid expansion and validation, skipped / failed cells, and a real 2 × 2 sweep on
tiny models showing that teacher generations are computed once per teacher and reused — and the
same sweep under the Ray executor giving the same results, and finishing a sweep started locally."""

from __future__ import annotations

import json
import operator
import types
from pathlib import Path

import pytest
from click.testing import CliRunner
from cotgap_plugins import mix as mix_plugin

from cotgap.cli import cli
from cotgap.errors import UserError
from cotgap.jsonio import read_json
from cotgap.pipeline import ray_executor, sweep
from cotgap.pipeline.grid import load_grid

ROOT = Path(__file__).resolve().parents[1]
Q05, Q15 = "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"


def grid_file(tmp_path: Path, text: str, name: str = "grid.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------------------------------------
# grid files
# ---------------------------------------------------------------------------------------------


def test_expansion_teacher_sets_strategies_ablations(tmp_path):
    g = load_grid(
        grid_file(
            tmp_path,
            f"""
tasks: [synthetic_navigate, synthetic_object_counting]
students: [smollm2-135m-instruct, gemma-3-270m]
teachers: [{Q05}, {Q15}, [{Q15}, {Q05}]]
strategies:
  - plain
  - {{name: mix, teachers: [[{Q15}, {Q05}]], params: {{ratio: 0.2}}}}
strategy_params: {{plain: {{samples: 1}}}}
ablations: [none, cross-teacher-filter]
limit: 5
training: {{epochs: 1}}
""",
        ),
        out=str(tmp_path / "sw"),
    )
    # per task: plain 2 students x 3 teacher sets x 2 ablations = 12, mix 2 x 1 x 2 = 4, and per
    # unablated mix cell one plain cell on each of its 2 teachers alone: 2 x 2 = 4
    assert len(g.cells) == 2 * (12 + 4 + 4)
    assert len({c.name for c in g.cells}) == len(g.cells)
    assert g.out == (tmp_path / "sw").resolve() and g.cache == g.out / "_generations"
    plain = [c for c in g.cells if c.strategy == "plain" and c.task == "synthetic_navigate" and not c.alone_of]
    assert sorted({tuple(c.teachers) for c in plain}) == [(Q05,), (Q15,), (Q15, Q05)]
    assert all(c.config.limit == 5 and c.config.training.epochs == 1 for c in g.cells)
    assert all(c.params == {"samples": 1} for c in plain)
    mix = [c for c in g.cells if c.strategy == "mix"]
    assert {tuple(c.teachers) for c in mix} == {(Q15, Q05)} and mix[0].params == {"ratio": 0.2}
    ablated = [c for c in plain if c.ablation]
    assert len(ablated) == 6 and all(c.setting == "plain+cross-teacher-filter" for c in ablated)
    assert all(c.peers == [Q05, Q15] and c.config.ablation == "cross-teacher-filter" for c in ablated)
    assert all(c.peers == [] for c in plain if not c.ablation)
    assert all(Path(c.config.out).parent == g.out for c in g.cells)
    assert not any(sweep.precheck(c) for c in g.cells)  # every student is smaller than every teacher


def test_cli_overrides_and_added_ablation(tmp_path):
    g = load_grid(
        grid_file(tmp_path, f"tasks: [synthetic_navigate]\nstudents: [gemma-3-270m]\nteachers: [{Q05}]\nlimit: 50\n"),
        limit=3,
        backend="hf",
        add_ablation="cross-teacher-filter",
    )
    assert [c.ablation for c in g.cells] == [None, "cross-teacher-filter"]
    assert all(c.config.limit == 3 and c.config.generation.backend == "hf" for c in g.cells)
    assert g.out == (Path("sweeps") / "grid").resolve()


def test_size_rule_skips_cells(tmp_path):
    g = load_grid(grid_file(tmp_path, f"tasks: [synthetic_navigate]\nstudents: [{Q05}]\nteachers: [{Q05}, {Q15}, scripted]\n"))
    reasons = [sweep.precheck(c) for c in g.cells]
    assert "not smaller" in reasons[0] and reasons[1] is None and reasons[2] is None


def test_example_zoo_grid_loads():
    g = load_grid(ROOT / "examples" / "grid-zoo.yaml")
    assert len(g.cells) == 4 and {c.config.limit for c in g.cells} == {20}
    assert {c.student for c in g.cells} == {"smollm2-135m-instruct", "gemma-3-270m"}
    assert {tuple(c.teachers) for c in g.cells} == {(Q05,), (Q15,)}
    assert not any(sweep.precheck(c) for c in g.cells)


@pytest.mark.parametrize(
    "text, message",
    [
        ("tasks: [", "not valid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("students: [gemma-3-270m]\nteachers: [scripted]\n", "missing 'tasks'"),
        ("tasks: [synthetic_navigate]\nstudents: []\n", "students must be a non-empty list"),
        ("tasks: [x]\nstudents: [gemma-3-270m]\nfoo: 1\n", "unknown key(s) foo"),
        ("tasks: [x]\nstudent: gemma-3-270m\n", "student cannot be a common setting"),
        ("tasks: [x]\nstudents: [gemma-3-270m]\nstrategies: [nope]\n", "unknown strategy 'nope'"),
        ("tasks: [x]\nstudents: [gemma-3-270m]\nstrategy_params: {samples: 2}\n", "not a strategy of this grid"),
        ("tasks: [x]\nstudents: [gemma-3-270m]\nstrategy_params: {plain: {bogus: 2}}\n", "unknown parameter(s)"),
        ("tasks: [x]\nstudents: [gemma-3-270m]\nteachers: [scripted, scripted]\n", "listed twice"),
        ("tasks: [x]\nstudents: [no-such-model]\nteachers: [scripted]\n", "unknown model"),
        ("tasks: [x]\nstudents: [gemma-3-270m]\nteachers: [scripted]\nablations: [magic]\n", "unknown ablation"),
        ("tasks: [x]\nstudents: [gemma-3-270m]\nteachers: [scripted]\nlimit: 0\n", "limit must be >= 1"),
        ("tasks: [x]\nstudents: [gemma-3-270m]\nteachers: [scripted]\ntraining: {nope: 1}\n", "unknown key(s) nope"),
    ],
)
def test_bad_grid_is_a_user_error(tmp_path, text, message):
    p = grid_file(tmp_path, text)
    with pytest.raises(UserError, match=None) as exc:
        load_grid(p)
    assert message in str(exc.value)
    res = CliRunner().invoke(cli, ["sweep", "--config", str(p), "--dry-run"])
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_missing_grid_file(tmp_path):
    res = CliRunner().invoke(cli, ["sweep", "--config", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "does not exist" in res.stderr


# ---------------------------------------------------------------------------------------------
# skipped and failed cells (runner replaced: no model work)
# ---------------------------------------------------------------------------------------------


class FakeRunner:
    seen: list = []

    def __init__(self, cfg, console, log=None, *, generation_cache=None, ablation_peers=None, force=False):
        self.cfg = cfg
        FakeRunner.seen.append((list(cfg.teachers), generation_cache))

    def prepare(self):
        if "scripted:long:0.2" in self.cfg.teachers:
            raise UserError("no correct rationales survived the filter")
        if "scripted:long:0.5" in self.cfg.teachers:
            raise RuntimeError("something internal")
        self.run = types.SimpleNamespace(
            computed=["baseline", "generate"], skipped=[], record=lambda name: None, unlock=lambda: None
        )
        self.ctx = types.SimpleNamespace(generate_rationales=lambda model, **sampling: [])
        self.book = types.SimpleNamespace(generation_stats={"computed": 1, "reused": 0})  # the runner's bookkeeping
        return self

    def baseline_stage(self):  # a sweep's baseline job runs this stage alone
        return {}

    def execute(self):
        return {"verdict": "helped"}


def test_skipped_and_failed_cells_do_not_stop_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr("cotgap.pipeline.runner.Runner", FakeRunner)
    FakeRunner.seen = []
    p = grid_file(
        tmp_path,
        f"tasks: [synthetic_navigate]\nstudents: [{Q05}]\n"
        f"teachers: [{Q05}, 'scripted:long:0.2', 'scripted:long:0.5', 'scripted:short']\n",
    )
    res = CliRunner().invoke(cli, ["sweep", "--config", str(p), "--out", str(tmp_path / "sw"), "--no-report"])
    assert res.exit_code == 1, res.output
    s = read_json(tmp_path / "sw" / "sweep.json")
    assert s["schema"] == "cotgap.sweep/1"
    assert [c["status"] for c in s["cells"]] == ["skipped", "failed", "failed", "done"]
    assert "not smaller" in s["cells"][0]["reason"]
    assert "no correct rationales" in s["cells"][1]["reason"]
    assert "internal error: RuntimeError" in s["cells"][2]["reason"]
    assert (Path(s["cells"][2]["dir"]) / "error.log").read_text().count("RuntimeError") >= 1
    assert s["counts"] == {"done": 1, "skipped": 1, "failed": 2}
    # jobs go through the same runner: each teacher's generation job and the student's baseline job (whose
    # representative is the first cell that runs, scripted:long:0.2's) fail or finish as their cells do
    assert [(j.get("teacher") or j["student"], j["status"]) for j in s["jobs"]] == [
        ("scripted:long:0.2", "failed"),
        ("scripted:long:0.5", "failed"),
        ("scripted:short", "done"),
        (Q05, "failed"),
    ]
    assert s["generations"] == {"computed": 2, "reused": 0}  # scripted:short's job and cell (the fake counts 1 each)
    # the runner got the sweep's shared generation cache explicitly
    assert {c for _, c in FakeRunner.seen} == {(tmp_path / "sw" / "_generations").resolve()}
    assert "2 cell(s) failed" in res.stderr


# ---------------------------------------------------------------------------------------------
# a real sweep on tiny models
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_student, tiny_teacher):
    """2 students (the two tiny models) x 2 teachers (the scripted reference teacher, short CoT and
    long CoT with 20 % errors) on one synthetic task: 4 cells, 2 teacher generations."""
    tmp = tmp_path_factory.mktemp("sweep")
    grid = grid_file(
        tmp,
        f"""
name: tiny
tasks: [synthetic_navigate]
students: ["{tiny_student}", "{tiny_teacher}"]
teachers: ["scripted:short", "scripted:long:0.2"]
strategies: [plain]
limit: 4
bootstrap_iters: 500
generation: {{backend: hf}}
""",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("COTGAP_GENERATION_CACHE", raising=False)
        first = CliRunner().invoke(cli, ["sweep", "--config", str(grid), "--out", str(tmp / "sw")])
        summary, report = read_json(tmp / "sw" / "sweep.json"), read_json(tmp / "sw" / "report.json")
        again = CliRunner().invoke(cli, ["sweep", "--config", str(grid), "--out", str(tmp / "sw")])
    return tmp / "sw", first, summary, report, again


def test_sweep_computes_each_teacher_generation_once(swept, tiny_student, tiny_teacher):
    sw, first, summary, _, _ = swept
    assert first.exit_code == 0, first.output[-3000:]
    assert summary["counts"] == {"done": 4, "skipped": 0, "failed": 0}
    # the jobs generate (once per teacher) and evaluate the baselines (once per student); every cell reuses
    jobs = summary["jobs"]
    assert [(j["kind"], j["status"]) for j in jobs] == [("generation", "done")] * 2 + [("baseline", "done")] * 2
    assert [j["generations"]["computed"] for j in jobs] == [1, 1, 0, 0]
    assert [j["baseline"] for j in jobs] == [None, None, "computed", "computed"]
    assert summary["generations"] == {"computed": 2, "reused": 4}
    assert summary["baselines"] == {"computed": 2, "reused": 4}
    assert all(c["generations"] == {"computed": 0, "reused": 1} and c["baseline"] == "reused" for c in summary["cells"])
    assert all(c["computed"] == ["baseline", "generate", "filter", "train", "distilled"] for c in summary["cells"])
    assert len(list((sw / "_generations" / "generations").glob("*.jsonl"))) == 2
    assert "2 computed, 4 reused" in first.output
    # engines: one per student for its baseline (the scripted teacher has none), one per distilled student
    e, student, teacher = summary["engines"], str(tiny_student), str(tiny_teacher)
    assert {m: e["models"][m]["starts"] for m in (student, teacher)} == {student: 1, teacher: 1}
    assert e["starts"] == 2 + 4 and sum(" distilled (" in m for m in e["models"]) == 4
    assert e["start_seconds"] > 0 and e["generate_seconds"] > 0
    assert "engines: 6 started" in first.output


def test_sweep_report(swept):
    sw, _, _, rep, _ = swept  # the report the first sweep wrote
    assert rep["schema"] == "cotgap.report/1" and rep["generation"]["computed"] == 2
    (task,) = rep["tasks"]
    assert task["task"] == "synthetic_navigate" and task["n_cells"] == 4
    teachers = {t["teacher"]: t for t in task["teachers"]}
    assert teachers["scripted:short"]["accuracy"] == 100 and teachers["scripted:short"]["kept"] == 4
    assert teachers["scripted:long:0.2"]["kept"] == round(teachers["scripted:long:0.2"]["accuracy"] * 4 / 100)
    sizes = sorted({c["student_size"] for c in task["cells"]}, key=lambda s: float(s[:-1]))
    assert len(sizes) == 2 and all(s.endswith("M") for s in sizes)
    assert all(c["updates"] for c in task["cells"]) and all(c["ci_low"] is not None for c in task["cells"])
    for f in ("report.md", "accuracy_vs_size.png", "kept.png", "tables/distilled.csv"):
        assert (sw / f).is_file(), f
    assert "## Teacher generations" in (sw / "report.md").read_text()


def test_sweep_rerun_recomputes_nothing(swept):
    sw, _, _, _, again = swept
    assert again.exit_code == 0, again.output[-3000:]
    s = read_json(sw / "sweep.json")
    assert s["generations"] == {"computed": 0, "reused": 6}  # 2 generation jobs' and 4 cells'
    assert s["baselines"] == {"computed": 0, "reused": 6}  # 2 baseline jobs' and 4 cells'
    assert all(c["computed"] == [] and c["status"] == "done" for c in s["cells"])
    assert s["engines"]["starts"] == 0  # nothing computed: no engine started


def test_report_regenerates_from_stored_results(swept, tmp_path):
    sw, *_ = swept
    res = CliRunner().invoke(cli, ["report", str(sw), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output[-3000:]
    new, old = read_json(tmp_path / "r" / "report.json"), read_json(sw / "report.json")
    assert new["tasks"] == old["tasks"] and new["generation"] == old["generation"]
    assert new["generation"]["sweeps"][0]["name"] == "tiny"


def test_plan_matches_what_the_sweep_computed(swept):
    """The dry run's jobs are what the real sweep computed: its generation jobs = the generations
    computed, its baselines = the baselines computed (tests/test_plan.py covers the plan itself)."""
    sw, _, summary, _, _ = swept
    res = CliRunner().invoke(cli, ["sweep", "--config", str(sw.parent / "grid.yaml"), "--out", str(sw), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output[-3000:]
    plan = json.loads(res.stdout)
    assert [c["name"] for c in plan["cells"]] == [c["name"] for c in summary["cells"]]
    assert all(c["status"] == "run" for c in plan["cells"])
    assert len(plan["generation_jobs"]) == summary["generations"]["computed"] == 2
    assert len(plan["baselines"]) == summary["baselines"]["computed"] == 2
    # the predicted engine starts are the starts the sweep counted: 2 student sessions + 4 distilled
    assert plan["engines"]["starts"] == {"sessions": 6, "per_job": 6}
    assert plan["engines"]["starts"]["sessions"] == summary["engines"]["starts"]
    assert [s["engine"] for s in plan["engines"]["sessions"]] == [False, False, True, True]


# ---------------------------------------------------------------------------------------------
# the same sweep under the Ray executor (conftest's local Ray instance; tests/test_ray_sweep.py has the rest)
# ---------------------------------------------------------------------------------------------

STAGES = ["baseline", "generate", "filter", "train", "distilled"]


@pytest.fixture(scope="module")
def ray_swept(swept, ray_instance):
    """The swept grid under ``--executor ray``: afresh (``sw-ray``), and finishing a copy of the
    local sweep with its last cell deleted (``sw-finish``). The Ray tasks use the local sweep's
    threads, so both executors compute the same numbers."""
    import os
    import shutil

    from cotgap.backends import runtime

    sw, _, first, _, _ = swept
    threads = str(int(os.environ.get("COTGAP_THREADS") or runtime.default_threads()))
    finish, deleted = sw.parent / "sw-finish", first["cells"][-1]["name"]
    shutil.copytree(sw, finish)
    shutil.rmtree(finish / deleted)
    args = ["sweep", "--config", str(sw.parent / "grid.yaml"), "--executor", "ray", "--threads", threads, "--no-report"]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("COTGAP_GENERATION_CACHE", raising=False)
        fresh = CliRunner().invoke(cli, [*args, "--out", str(sw.parent / "sw-ray")])
        resumed = CliRunner().invoke(cli, [*args, "--out", str(finish)])
    return sw.parent, fresh, resumed, deleted


def test_ray_executor_gives_the_local_executors_results(swept, ray_swept):
    root, fresh, _, _ = ray_swept
    local = swept[2]
    assert fresh.exit_code == 0, fresh.output[-3000:]
    ray = read_json(root / "sw-ray" / "sweep.json")
    assert (local["executor"], ray["executor"]) == ("local", "ray")
    assert [c["name"] for c in ray["cells"]] == [c["name"] for c in local["cells"]]  # run order, not finishing order
    for key in ("status", "verdict", "updates", "computed"):
        assert [c[key] for c in ray["cells"]] == [c[key] for c in local["cells"]], key
    for c in local["cells"]:  # the same distilled answers, to the byte
        assert (root / "sw" / c["name"] / "distilled" / "samples.jsonl").read_bytes() == (
            root / "sw-ray" / c["name"] / "distilled" / "samples.jsonl"
        ).read_bytes()
    # generations computed once per teacher × task under both, by the jobs, every cell reusing
    assert ray["generations"] == local["generations"] == {"computed": 2, "reused": 4}
    assert ray["baselines"] == local["baselines"] == {"computed": 2, "reused": 4}
    assert all(c["generations"] == {"computed": 0, "reused": 1} and c["baseline"] == "reused" for c in ray["cells"])
    jobs = ray["jobs"]
    for key in ("id", "kind", "status", "generations", "baseline", "session"):
        assert [j[key] for j in jobs] == [j[key] for j in local["jobs"]], key
    assert ray["engines"]["starts"] == local["engines"]["starts"] == 6
    assert len(list((root / "sw-ray" / "_generations" / "generations").glob("*.jsonl"))) == 2
    assert not any(p.name == "report.json" for p in (root / "sw-ray").iterdir())  # --no-report
    assert "jobs before the cells: 2 generation, 2 baseline (4 done, 0 skipped, 0 failed)" in fresh.output
    assert "4 generation / baseline job(s) in 4 engine session(s)" in fresh.output


def test_ray_executor_finishes_a_sweep_started_locally(swept, ray_swept):
    root, _, resumed, deleted = ray_swept
    assert resumed.exit_code == 0, resumed.output[-3000:]
    s = read_json(root / "sw-finish" / "sweep.json")
    assert s["executor"] == "ray" and s["counts"] == {"done": 4, "skipped": 0, "failed": 0}
    assert s["generations"]["computed"] == 0 and s["baselines"]["computed"] == 0  # all from the local run
    cells = {c["name"]: c for c in s["cells"]}
    assert cells[deleted]["computed"] == STAGES  # only the deleted cell ran, from the shared cache
    assert cells[deleted]["generations"] == {"computed": 0, "reused": 1} and cells[deleted]["baseline"] == "reused"
    assert all(c["computed"] == [] for n, c in cells.items() if n != deleted)
    assert [c["verdict"] for c in s["cells"]] == [c["verdict"] for c in swept[2]["cells"]]


@pytest.fixture(scope="module")
def sessions_run(tmp_path_factory, tiny_student, tiny_teacher, ray_instance):
    """The jobs of 2 tasks × 1 student × 1 real (tiny) teacher — 2 generations, 2 baselines — run
    three ways into three sweep folders: in engine sessions by the local executor, in engine
    sessions on Ray actors, and each job on an engine of its own (``close`` after every job)."""
    from rich.console import Console

    from cotgap.pipeline import plan as plan_mod
    from cotgap.pipeline import sweep_jobs
    from cotgap.pipeline.sweep_summary import SweepSummary

    tmp = tmp_path_factory.mktemp("sessions")
    text = f"""name: sessions
tasks: [synthetic_navigate, synthetic_object_counting]
students: ["{tiny_student}"]
teachers: ["{tiny_teacher}"]
limit: 4
generation: {{backend: hf, max_new_tokens: 16}}
"""
    quiet, runs = Console(quiet=True), {}
    for way in ("local", "ray", "per-job"):
        grid = load_grid(grid_file(tmp, text, f"{way}.yaml"), out=str(tmp / way))
        summary, plan = SweepSummary(grid, way, []), plan_mod.build_plan(grid)
        jobs, _ = sweep_jobs.from_plan(grid, plan)
        summary.expect_jobs([j.id for j in jobs])  # records in the plan's order, whatever order they finish in
        if way == "local":
            sweep.run_sessions(grid, summary, jobs, quiet, lambda *_: None)
        elif way == "ray":
            tasks = [t for t in ray_executor.build_tasks(grid, plan, [], force=False, threads=1) if t.kind == "job"]
            ray_executor.schedule(ray_instance, tasks, lambda t, rec, s=summary: s.add_job(rec))
        else:
            for j in jobs:
                summary.add_job(sweep_jobs.run_job(j, grid.out, grid.cache, quiet, lambda *_: None, close=True))
        runs[way] = (grid, plan, summary.save())
    return runs


def test_a_models_jobs_share_one_engine_across_tasks(sessions_run, tiny_student, tiny_teacher):
    """Engine sessions under both executors: the teacher's generations for both tasks run on one
    engine, the student's baselines on another (2 starts, not 4), each later job generating on the
    engine the first started; the cache entries are the bytes a job on its own engine writes."""
    _, plan, _ = sessions_run["local"]
    student, teacher = str(tiny_student), str(tiny_teacher)
    assert [(s["model"], len(s["jobs"]), s["engine"]) for s in plan["engines"]["sessions"]] == [
        (teacher, 2, True),
        (student, 2, True),
    ]
    # 2 sessions (4 jobs) + the 2 cells' distilled evaluations
    assert plan["engines"]["starts"] == {"sessions": 2 + 2, "per_job": 4 + 2} and plan["engines"]["distilled"] == 2
    for way in ("local", "ray"):
        s = sessions_run[way][2]
        assert [j["status"] for j in s["jobs"]] == ["done"] * 4, [j["reason"] for j in s["jobs"]]
        assert s["generations"]["computed"] == 2 and s["baselines"]["computed"] == 2
        assert {m: u["starts"] for m, u in s["engines"]["models"].items()} == {teacher: 1, student: 1}, way
        # the first job of each session started the engine, the second generated on it
        starts = [j["engines"][j.get("teacher") or j["student"]]["starts"] for j in s["jobs"]]
        assert starts == [1, 0, 1, 0], way
        assert all(j["engines"][j.get("teacher") or j["student"]]["generate_s"] > 0 for j in s["jobs"])
    alone = sessions_run["per-job"][2]
    assert alone["engines"]["starts"] == 4 and all(j["status"] == "done" for j in alone["jobs"])
    files = {way: sorted((g.cache / "generations").glob("*.jsonl")) for way, (g, _, _) in sessions_run.items()}
    assert len(files["local"]) == 2
    for way in ("ray", "per-job"):
        assert [f.name for f in files[way]] == [f.name for f in files["local"]]
        assert [f.read_bytes() for f in files[way]] == [f.read_bytes() for f in files["local"]], way
    baselines = {
        way: [
            (g.out / sweep_jobs_dir(j) / "baseline" / "samples.jsonl").read_bytes() for j in s["jobs"] if j["kind"] == "baseline"
        ]
        for way, (g, _, s) in sessions_run.items()
    }
    assert baselines["local"] == baselines["ray"] == baselines["per-job"] and len(baselines["local"]) == 2


def test_paper_grid_engine_starts_predicted():
    """The paper grid's dry run: each teacher and each student started once for all 15 tasks, plus
    one start per distilled student — 248 where an engine per job would make 360."""
    from cotgap.pipeline import plan as plan_mod

    plan = plan_mod.build_plan(load_grid(ROOT / "examples" / "paper-bbh-qwen.yaml"))
    e = plan["engines"]
    assert e["starts"] == {"sessions": 4 + 4 + 240, "per_job": 60 + 60 + 240} and e["distilled"] == 240
    assert all(m == {"sessions": 1, "per_job": 15} for m in e["models"].values()) and len(e["models"]) == 8
    assert sorted(len(s["jobs"]) for s in e["sessions"]) == [15] * 8
    assert {j["session"] for j in plan["generation_jobs"] if j["teacher"] == "Qwen/Qwen2.5-72B-Instruct"} == {
        next(s["id"] for s in e["sessions"] if s["model"] == "Qwen/Qwen2.5-72B-Instruct")
    }
    from cotgap.pipeline.plan_render import engines_line

    assert engines_line(e) == (
        "engine starts: 248 (8 model session(s) + 240 distilled evaluation(s)); 360 if every job started its own engine"
    )


def sweep_jobs_dir(job: dict) -> str:
    from cotgap.pipeline.sweep_jobs import JOBS_DIR

    return f"{JOBS_DIR}/{job['kind']}-{job['id']}"


def test_a_failed_task_is_recorded_and_its_dependants_run(ray_instance, tmp_path):
    """The driver's scheduling on real Ray: a task that raises on its worker is recorded as failed
    (Ray's traceback kept), and the tasks waiting for it, directly or not, still run after it."""

    def task(key, fn, args, deps):
        return ray_executor.Task(
            key, fn, args, {"num_cpus": 1}, deps, lambda: {"name": key, "status": "failed"}, tmp_path / key.replace(":", "-")
        )

    tasks = [
        task("cell:c", dict, ({"name": "c", "status": "done"},), ["cell:b"]),
        task("cell:b", dict, ({"name": "b", "status": "done"},), ["job:a"]),
        task("job:a", operator.truediv, (1, 0), []),
    ]
    seen = []
    ray_executor.schedule(ray_instance, tasks, lambda t, rec: seen.append((t.key, rec)))
    assert [k for k, _ in seen] == ["job:a", "cell:b", "cell:c"]
    failed = seen[0][1]
    assert failed["status"] == "failed" and failed["reason"].startswith("ray: ZeroDivisionError: division by zero")
    assert "ZeroDivisionError" in (tmp_path / "job-a" / "error.log").read_text()
    assert [rec["status"] for _, rec in seen[1:]] == ["done", "done"]


def test_a_resource_no_node_has_is_refused(ray_instance, tmp_path):
    grid = grid_file(
        tmp_path,
        "tasks: [synthetic_navigate]\nstudents: [gemma-3-270m]\nteachers: [scripted]\nresources: {default: {num_gpus: 1}}\n",
    )
    res = CliRunner().invoke(cli, ["sweep", "--config", str(grid), "--out", str(tmp_path / "sw"), "--executor", "ray"])
    assert res.exit_code == 2, res.output[-2000:]
    assert "resources of the default ask for num_gpus 1, but no node of the Ray cluster has that much" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "sw" / "sweep.json").exists()


# ---------------------------------------------------------------------------------------------
# seeds (replicates) and equal optimizer updates
# ---------------------------------------------------------------------------------------------


def test_seeds_replicate_cells_and_references_pick_the_plain_cell(tmp_path):
    g = load_grid(
        grid_file(
            tmp_path,
            f"""
tasks: [synthetic_navigate]
students: [smollm2-135m-instruct]
teachers: [{Q05}, {Q15}]
strategies: [plain, mind, {{name: mix, teachers: [[{Q15}, {Q05}]]}}]
ablations: [none, cross-teacher-filter]
seeds: [1234, 7]
""",
        ),
        out=str(tmp_path / "sw"),
    )
    # (plain + mind) x teachers x ablations + mix + mix's two each-teacher-alone cells, x seeds
    assert len(g.cells) == (2 * 2 + 2 * 2 + 1 * 2 + 2) * 2
    by = {c.name: c for c in g.cells}
    assert all(c.name.endswith(f"--seed{c.seed}") for c in g.cells)
    assert all(c.config.seed == c.seed and c.config.training.seed == c.seed for c in g.cells)
    for c in g.cells:
        if c.alone_of:  # trained at its mix cell's updates, on one of the mix cell's teachers
            mixed = by[c.alone_of]
            assert c.reference == mixed.name and mixed.strategy == "mix" and c.seed == mixed.seed
            assert c.teachers[0] in mixed.teachers and c.strategy == "plain"
            continue
        if c.strategy == "plain" and c.ablation is None:
            assert c.reference is None
            continue
        ref = by[c.reference]
        assert (ref.strategy, ref.ablation, ref.task, ref.student, ref.seed) == ("plain", None, c.task, c.student, c.seed)
        # same teacher set when the grid has that plain cell, else the grid's first plain cell
        assert ref.teachers == (c.teachers if len(c.teachers) == 1 else [Q05])
    order = sweep.run_order(g.cells)
    assert all(c.reference is None for c in order[:4]) and all(c.reference for c in order[4:])
    position = {c.name: i for i, c in enumerate(order)}
    assert all(position[c.alone_of] < position[c.name] for c in g.cells if c.alone_of)  # mix trains first
    assert g.grid["seeds"] == [1234, 7] and g.grid["equal_updates"] is True


def test_mix_cells_are_compared_with_each_teacher_alone(tmp_path):
    """Li et al. compare a mix with training on each teacher's data alone: every unablated mix cell
    (default teachers included) gets one plain cell per teacher, at the mix cell's updates."""
    text = f"""
tasks: [synthetic_navigate]
students: [smollm2-135m-instruct]
teachers: [[{Q15}, {Q05}]]
strategies: [plain, mix, {{name: mix, teachers: null}}]
strategy_params: {{plain: {{samples: 1}}}}
ablations: [none, cross-teacher-filter]
"""
    with pytest.raises(UserError, match="listed twice"):  # one mix entry per grid, as for any strategy
        load_grid(grid_file(tmp_path, text), out=str(tmp_path / "sw"))
    g = load_grid(grid_file(tmp_path, text.replace(", {name: mix, teachers: null}", "")), out=str(tmp_path / "sw"))
    alone = [c for c in g.cells if c.alone_of]
    mixed = next(c for c in g.cells if c.strategy == "mix" and c.ablation is None)
    assert sorted(c.teachers[0] for c in alone) == sorted([Q15, Q05]) and {c.alone_of for c in alone} == {mixed.name}
    assert all(c.reference == mixed.name and c.params == {"samples": 1} and c.ablation is None for c in alone)
    assert all(c.describe()["alone_of"] == mixed.name for c in alone)
    # never a reference: the mix cell's own budget still comes from the pooled plain cell
    assert mixed.reference == next(c.name for c in g.cells if c.strategy == "plain" and not c.alone_of and c.ablation is None)
    assert len({c.name for c in g.cells}) == len(g.cells)
    off = load_grid(
        grid_file(
            tmp_path, "tasks: [synthetic_navigate]\nstudents: [smollm2-135m-instruct]\nstrategies: [mix]\nequal_updates: false\n"
        ),
        out=str(tmp_path / "sw2"),
    )
    # mix's default teachers (1.5B and 0.5B) alone, at their own epochs (equal updates off)
    assert sorted(c.teachers[0] for c in off.cells if c.alone_of) == sorted(mix_plugin.DEFAULT_TEACHERS)
    assert all(c.reference is None for c in off.cells)


@pytest.mark.parametrize(
    "text, message",
    [
        ("seeds: [1, 1]", "same seed twice"),
        ("seeds: [-1]", "non-negative integers"),
        ("seeds: []", "non-empty list"),
        ("seeds: [1, 2]\nseed: 3", "not both"),
        ("equal_updates: maybe", "true or false"),
    ],
)
def test_bad_seeds_and_equal_updates(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        load_grid(grid_file(tmp_path, f"tasks: [synthetic_navigate]\nstudents: [gemma-3-270m]\nteachers: [{Q05}]\n{text}\n"))


def test_no_references_when_disabled_or_max_steps_fixed(tmp_path):
    base = f"tasks: [synthetic_navigate]\nstudents: [gemma-3-270m]\nteachers: [{Q05}]\nstrategies: [plain, mind]\n"
    assert not any(c.reference for c in load_grid(grid_file(tmp_path, base + "equal_updates: false\n")).cells)
    fixed = load_grid(grid_file(tmp_path, base + "training: {max_steps: 5}\n")).cells
    assert not any(c.reference for c in fixed) and all(c.config.training.max_steps == 5 for c in fixed)


class BudgetRunner:
    """Records the max_steps each cell was given; plain cells "train" 7 updates, others max_steps."""

    seen: dict = {}

    def __init__(self, cfg, console, log=None, *, generation_cache=None, ablation_peers=None, force=False):
        self.cfg = cfg

    def prepare(self):
        from cotgap.jsonio import write_json
        from cotgap.rundir import RunDir

        BudgetRunner.seen[self.cfg.strategy] = self.cfg.training.max_steps
        self.run = RunDir(self.cfg.out)
        updates = 7 if self.cfg.strategy == "plain" else self.cfg.training.max_steps
        write_json(self.run / "stages" / "train.json", {"result": {"updates": updates}, "strategy_records": {}})
        self.run.computed = ["train"]
        self.ctx = types.SimpleNamespace(generate_rationales=lambda model, **sampling: [])
        self.book = types.SimpleNamespace(generation_stats={"computed": 0, "reused": 0})
        return self

    def execute(self):
        return {"verdict": "no significant change"}


def test_sweep_trains_every_strategy_at_the_plain_cells_updates(tmp_path, monkeypatch):
    monkeypatch.setattr("cotgap.pipeline.runner.Runner", BudgetRunner)
    p = grid_file(tmp_path, f"tasks: [synthetic_navigate]\nstudents: [{Q05}]\nteachers: [{Q15}]\nstrategies: [mind, plain]\n")
    res = CliRunner().invoke(cli, ["sweep", "--config", str(p), "--out", str(tmp_path / "sw"), "--no-report"])
    assert res.exit_code == 0, res.output
    s = read_json(tmp_path / "sw" / "sweep.json")
    assert [c["strategy"] for c in s["cells"]] == ["plain", "mind"]  # the reference trains first
    assert BudgetRunner.seen == {"plain": -1, "mind": 7}
    plain, mind = s["cells"]
    assert plain["updates"] == 7 and plain["equal_updates"] is None
    assert mind["updates"] == 7 and mind["equal_updates"] == {"reference": plain["name"], "max_steps": 7}
    assert sweep.updates_label(mind) == "7 (= plain)" and sweep.updates_label(plain) == "7"
