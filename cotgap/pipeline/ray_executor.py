"""``cotgap sweep --executor ray``: a grid's jobs and cells as Ray tasks, each holding the
resources the grid gives its model (``resources: {<model or default>: {num_gpus, num_cpus}}``).

The driver (the ``cotgap sweep`` process) plans the sweep as the dry run does
(:mod:`cotgap.pipeline.plan`) and submits:

1. the teacher-generation jobs and student baselines (:mod:`cotgap.pipeline.sweep_jobs`), each
   filling the shared generation cache, by engine session: one Ray actor per session (a model's
   jobs for every task), holding the model's resources (the teacher's, the student's), runs the
   session's jobs one after the other in one process, so the engine the first job opens serves
   them all; the last closes it and the actor is then ended, freeing its resources;
2. one task per cell (:func:`cotgap.pipeline.sweep_cell.cell_task`), holding its student's
   resources, once every job it needs has finished — so a cell finds its generations and its
   baseline in the cache and computes neither — and, for equal updates, once its reference cell
   has finished (it then trains at the reference's optimizer updates, read from the reference's
   folder, as under the local executor).

Dependencies are kept by the driver, not by Ray: a task is submitted when what it waits for has
*finished*, successfully or not, so a failed job or reference never cancels the cells after it
(a cell then generates what it needs itself, or trains at its own epochs, and its record says so).
Tasks return records; only the driver writes ``sweep.json``. Tasks are not retried by Ray (a
crashed worker fails its task, which is recorded): re-running the sweep resumes it, under either
executor, from the same run folders and cache.

The threads a task uses are ``--threads`` (or ``COTGAP_THREADS``) if given, else its ``num_cpus``
(Ray's default: 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cotgap.pipeline import ray_cluster, sweep_jobs
from cotgap.pipeline.grid import Grid
from cotgap.pipeline.resources import for_model
from cotgap.pipeline.sweep_cell import cell_task, new_record


@dataclass
class Task:
    key: str  # "job:<id>" or "cell:<name>": what other tasks wait for
    fn: Callable  # a module-level function, run on a worker as fn(*args)
    args: tuple
    resources: dict  # the grid's names (num_gpus, num_cpus)
    deps: list[str]  # keys that must have finished before this task is submitted
    record: Callable[[], dict]  # the task's record if Ray itself fails it
    folder: Path  # where a Ray failure's traceback goes
    session: str | None = None  # tasks of one session run in turn on one actor (None: a task of its own)

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def name(self) -> str:
        """The job's id or the cell's name."""
        return self.key.split(":", 1)[1]


def _call(fn, *args):
    """What every Ray task runs: one of cotgap's task functions."""
    return fn(*args)


class SessionWorker:
    """A Ray actor for one engine session: its calls run one after the other in the actor's one
    process (in the order they were submitted), so module state — the open engine — carries from
    one job to the next."""

    def call(self, fn, *args):
        return fn(*args)


def task_threads(threads: int | None, resources: dict) -> int:
    """A task's torch / OMP threads: ``--threads`` (else the driver's ``COTGAP_THREADS``), else the
    CPUs it holds (at least 1) — not the node's, which other tasks share."""
    return int(threads or os.environ.get("COTGAP_THREADS") or max(1, int(resources.get("num_cpus", 1))))


def build_tasks(grid: Grid, plan: dict, order: list, *, force: bool, threads: int | None) -> list[Task]:
    """The jobs (no dependencies), then the cells in run order, each waiting for its jobs and its
    reference cell."""
    jobs, needs = sweep_jobs.from_plan(grid, plan)
    out, cache = grid.out, grid.cache
    tasks = []
    for group in sweep_jobs.sessions(jobs):
        tasks += [
            Task(
                f"job:{j.id}",
                sweep_jobs.job_task,
                (j, out, cache, task_threads(threads, j.resources), j is group[-1]),
                j.resources,
                [],
                j.record,
                out / sweep_jobs.JOBS_DIR / f"{j.kind}-{j.id}",
                j.session or j.id,
            )
            for j in group
        ]
    names = {c.name for c in grid.cells}
    for cell in order:
        res = for_model(grid.resources, cell.student)
        deps = [f"job:{i}" for i in needs.get(cell.name, [])]
        if cell.reference in names:
            deps.append(f"cell:{cell.reference}")
        tasks.append(
            Task(
                f"cell:{cell.name}",
                cell_task,
                (cell, out, cache, force, task_threads(threads, res)),
                res,
                deps,
                lambda c=cell: new_record(c, out),
                out / cell.name,
            )
        )
    return tasks


def _options(task: Task) -> dict:
    opts = {"name": f"cotgap {task.key}"[:120]}
    opts.update({k: v for k, v in task.resources.items() if k in ray_cluster.RAY_NAMES})
    return opts


class _Sessions:
    """The session actors of a schedule: each made when its first task is submitted, with that
    task's resources (an actor holds them while it lives; a CPU unless the grid says otherwise, as
    a task would), and ended when its last task has finished."""

    def __init__(self, ray, tasks: list[Task]):
        self.ray = ray
        self.actor_cls = ray.remote(max_restarts=0, max_task_retries=0)(SessionWorker)
        self.left: dict[str, int] = {}
        for t in tasks:
            if t.session:
                self.left[t.session] = self.left.get(t.session, 0) + 1
        self.actors: dict = {}

    def submit(self, task: Task):
        actor = self.actors.get(task.session)
        if actor is None:
            opts = {"num_cpus": 1, **_options(task), "name": f"cotgap session {task.session}"}
            actor = self.actors[task.session] = self.actor_cls.options(**opts).remote()
        return actor.call.remote(task.fn, *task.args)

    def finished(self, task: Task) -> None:
        """One of the session's tasks finished: after its last, the actor (and the resources it
        holds) goes."""
        if not task.session:
            return
        self.left[task.session] -= 1
        if not self.left[task.session]:
            self.end(task.session)

    def end(self, session: str) -> None:
        actor = self.actors.pop(session, None)
        if actor is not None:
            self.ray.kill(actor)


def _result(ray, ref, task: Task) -> dict:
    """The task's record, or (Ray failed the task: a worker crashed, the function raised) a failed
    record naming why, with Ray's traceback in ``<folder>/error.log``."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None) or exc
        first = (str(cause).splitlines() or [""])[0]
        task.folder.mkdir(parents=True, exist_ok=True)
        (task.folder / "error.log").write_text(str(exc))
        return {
            **task.record(),
            "status": "failed",
            "reason": f"ray: {type(cause).__name__}: {first} (traceback in {task.folder / 'error.log'})",
        }


def schedule(ray, tasks: list[Task], on_record: Callable[[Task, dict], None]) -> None:
    """Run ``tasks`` on the cluster, each submitted once everything it waits for has finished (a
    task with a session on its session's actor, in list order); ``on_record(task, record)`` as each
    finishes. On an interrupt the running tasks are cancelled (session actors ended) and recorded
    as interrupted."""
    remote = ray.remote(max_retries=0)(_call)
    sessions = _Sessions(ray, tasks)
    waiting = {t.key: t for t in tasks}
    running: dict = {}
    finished: set[str] = set()
    try:
        while waiting or running:
            for t in [t for t in waiting.values() if all(d in finished for d in t.deps)]:
                del waiting[t.key]
                ref = sessions.submit(t) if t.session else remote.options(**_options(t)).remote(t.fn, *t.args)
                running[ref] = t
            if not running:  # build_tasks only makes dependencies on tasks it makes, without cycles
                raise RuntimeError(f"tasks wait for what never runs: {', '.join(sorted(waiting))[:300]}")
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                t = running.pop(ref)
                on_record(t, _result(ray, ref, t))
                finished.add(t.key)
                sessions.finished(t)
    except KeyboardInterrupt:
        for ref, t in running.items():
            if not t.session:  # an actor's task cannot be force-cancelled: its actor is ended below
                ray.cancel(ref, force=True)
            on_record(t, {**t.record(), "status": "failed", "reason": "interrupted"})
        for session in list(sessions.actors):
            sessions.end(session)
        raise


def run(
    grid: Grid,
    summary,
    order: list,
    log,
    *,
    force: bool = False,
    threads: int | None = None,
    address: str | None = None,
    init: dict | None = None,
) -> None:
    """Run the grid on Ray (module docstring), handing every record to ``summary``. ``address``:
    the cluster (else ``RAY_ADDRESS``, else a local instance started with ``init`` options)."""
    from rich.markup import escape

    from cotgap.pipeline import plan as plan_mod

    ray = ray_cluster.import_ray()
    started = ray_cluster.connect(address, **(init or {}))
    try:
        ray_cluster.check_feasible(ray, grid.resources)
        plan = plan_mod.build_plan(grid)
        tasks = build_tasks(grid, plan, order, force=force, threads=threads)
        summary.expect_jobs([t.name for t in tasks if t.kind == "job"])
        n_jobs = sum(t.kind == "job" for t in tasks)
        n_sessions = len({t.session for t in tasks if t.kind == "job"})
        log(
            f"ray: {n_jobs} generation / baseline job(s) in {n_sessions} engine session(s), then "
            f"{len(tasks) - n_jobs} cell(s), on {_cluster_line(ray)}"
        )
        if ray.cluster_resources().get("GPU") and any(not t.resources.get("num_gpus") for t in tasks):
            log(
                "[yellow]some tasks ask for no GPU, and Ray hides the GPUs from a task that asks for none: they run "
                "on CPUs (give the grid resources: {default: {num_gpus: 1}})[/]"
            )
        done = [0]

        def on_record(task: Task, rec: dict) -> None:
            done[0] += 1
            (summary.add_job if task.kind == "job" else summary.add_cell)(rec)
            what = escape(rec.get("verdict") or rec.get("reason") or "")
            log(f"[{done[0]}/{len(tasks)}] {task.key}: {rec['status']}" + (f" ({what})" if what else ""))

        schedule(ray, tasks, on_record)
    finally:
        if started:
            ray.shutdown()


def _cluster_line(ray) -> str:
    total = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return f"{nodes} node(s), {total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU"
