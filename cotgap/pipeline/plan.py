"""A sweep's plan (``cotgap sweep --dry-run``): what it would run, skip, generate and evaluate, and
what each job needs — before any money is spent. No model is loaded, no weight is read, nothing
is downloaded (hub ids are sized from the grid's ``parameters_b`` or the local cache only; see
:mod:`cotgap.pipeline.plan_sizes`).

The plan (schema ``cotgap.plan/1``) holds:

- ``cells``: every cell of the grid with its ``status`` — ``run``; ``skipped`` with the protocol's
  reason (the student is not smaller than a teacher: the sweep would skip it the same way); or
  ``unknown`` when a model it needs could not be sized here (the reason says which and how to
  declare it) and the known sizes do not already break the rule;
- ``generation_jobs``: one per distinct generation-cache entry the cells that are not skipped
  will ask for — teacher × task × data settings × sampling settings (samples, temperature,
  prompt; the run seed when sampled) × backend and output-changing engine settings, as
  ``RunContext.generate_rationales`` keys them; what each strategy asks for is
  :mod:`cotgap.pipeline.plan_needs`' job (what the strategy declares with
  ``Strategy.planned_generations``, its ``plan_note`` naming what it cannot; an approximation,
  marked ``exact: false``, for a strategy that declares nothing);
- ``baselines``: one per distinct student × task test split (the sweep evaluates each once and
  shares it, keyed like the runner's baseline stage);
- per cell and per job, ``resources`` from the grid's ``resources`` section
  (:mod:`cotgap.pipeline.resources`): the teacher's for a generation job, the student's for a
  baseline and for a cell (its training and evaluation);
- per job its engine ``session`` (same model, backend and engine settings: one engine runs all
  of them), and ``engines``: the sessions and the engine starts predicted with sessions and
  without (:mod:`cotgap.pipeline.plan_engines`).

Jobs only ``unknown`` cells need have ``status: unknown``; skipped cells need no job. Ids are
short hashes of a job's identity, so they are stable across plans of the same grid.
"""

from __future__ import annotations

from cotgap.backends import engines
from cotgap.errors import ProtocolError, UserError
from cotgap.jsonio import key_of
from cotgap.models.resolve import resolve
from cotgap.pipeline import plan_engines, plan_needs, plan_sizes
from cotgap.pipeline import resources as resources_mod
from cotgap.pipeline.grid import Cell, Grid, cell_teachers
from cotgap.protocol import rules
from cotgap.protocol.constants import SPLIT_SEED

PLAN_SCHEMA = "cotgap.plan/1"
STATUSES = ("run", "skipped", "unknown")
#: Model kinds that can write rationales but never be the student (the run refuses them).
_TEACHER_ONLY = {"scripted": "the scripted teacher is not a model", "api": "an API model cannot be fine-tuned"}


def _status(student: plan_sizes.Sized, teachers: list[plan_sizes.Sized]) -> tuple[str, str | None]:
    """run / skipped (the size rule, worded as the sweep words it) / unknown (a model is unsized,
    or the student is a teacher-only kind: the run would fail)."""
    if student.kind in _TEACHER_ONLY:
        return "unknown", f"student {student.spec}: {_TEACHER_ONLY[student.kind]}, so the run would fail"
    problems = [m.problem for m in (student, *teachers) if m.problem]
    if student.n_params is not None:
        known = [t for t in teachers if t.n_params is not None or t.kind == "scripted"]
        try:
            rules.check_student_smaller(student, known)
        except ProtocolError as exc:
            return "skipped", f"protocol: {exc}"
    if problems:
        return "unknown", "; ".join(dict.fromkeys(problems))
    return "run", None


def check_tasks(grid: Grid) -> None:
    """Refuse task names no task YAML defines (lm-eval's BBH aliases accepted), as a run would."""
    from cotgap.backends import evaluation

    include = sorted({p for c in grid.cells for p in c.config.include_path})
    known = evaluation.task_manager(include).all_subtasks
    unknown = [t for t in grid.grid["tasks"] if evaluation.resolve_name(t, known) not in known]
    if unknown:
        raise UserError(f"grid {grid.source}: unknown task(s) {', '.join(unknown)} (see `cotgap tasks`)")


def _declared_engine(cfg, spec: str) -> dict:
    """The engine settings the grid gives model ``spec`` (``default``'s, then its own), without
    cotgap's machine defaults: those depend on the machine the plan is made on, not the one that
    runs it, and are the same for every model, so they never split a job."""
    parsed = engines.parse(cfg.generation.engines)
    args: dict = {}
    for name in [engines.DEFAULT_KEY, *resources_mod.names_of(spec)]:
        s = parsed.get(name)
        if s is not None:
            args.update({k: getattr(s, k) for k in engines.NAMED if getattr(s, k) is not None})
            args.update(s.engine_kwargs)
    return args


def _data(cfg) -> dict:
    """The data settings that enter both cache keys (``evaluation.TaskSettings`` less the name)."""
    return {
        "seed": SPLIT_SEED,
        "limit": cfg.limit,
        "data_dir": cfg.data_dir,
        "synthetic_n": cfg.synthetic_n,
        "include_paths": list(cfg.include_path),
        "scoring": cfg.scoring,
    }


def _backend(cfg, spec: str) -> tuple[str, dict]:
    """The configured backend for model ``spec`` and the engine settings that change its output."""
    if resolve(spec).kind == "api":
        return "api", {}
    extra = {"hf_batch_size": cfg.generation.hf_batch_size} if cfg.generation.backend == "hf" else {}
    return cfg.generation.backend, {**extra, "engine": engines.output_key(_declared_engine(cfg, spec))}


class _Jobs:
    """Distinct jobs by identity, each with the cells that need it (first-seen order)."""

    def __init__(self):
        self.by_id: dict[str, dict] = {}

    def add(self, identity: dict, record: dict, cell: Cell, certain: bool) -> str:
        """Count ``cell`` as needing the job of this identity (made from ``record`` when new); a
        ``certain`` (run) cell makes the job's status ``run``. Returns the job's id."""
        jid = key_of(identity)[:12]
        job = self.by_id.setdefault(jid, {"id": jid, **record, "status": "unknown", "cells": []})
        job["cells"].append(cell.name)
        if certain:
            job["status"] = "run"
        if not record.get("exact", True):
            job["exact"] = False
        return jid


def _generation_job(jobs: _Jobs, grid: Grid, cell: Cell, need: plan_needs.Need, certain: bool) -> str:
    cfg = cell.config
    backend, output = _backend(cfg, need.model)
    # sampled rationales depend on the run's seed (seed replicates do not share them); greedy ones do not
    seed = cfg.seed if need.temperature > 0 else None
    identity = {
        "model": resolve(need.model).spec,
        "task": cell.task,
        "split": "train",
        "data": _data(cfg),
        **need.sampling(),
        **({"seed": seed} if seed is not None else {}),
        "max_new_tokens": cfg.generation.budget_for(need.model),
        "backend": backend,
        **output,
    }
    record = {
        "teacher": need.model,
        "task": cell.task,
        "sampling": need.sampling(),
        "seed": seed,
        "max_new_tokens": cfg.generation.budget_for(need.model),
        "backend": backend,
        "engine": _declared_engine(cfg, need.model) if backend != "api" else {},
        "resources": resources_mod.for_model(grid.resources, need.model),
        "exact": need.exact,
        "session": _session(cfg, need.model, backend),
    }
    return jobs.add(identity, record, cell, certain)


def _baseline_job(jobs: _Jobs, grid: Grid, cell: Cell, certain: bool) -> str:
    cfg = cell.config
    backend, output = _backend(cfg, cell.student)
    identity = {
        "student": resolve(cell.student).spec,
        "task": cell.task,
        "split": "test",
        "data": _data(cfg),
        "backend": backend,
        **output,
    }
    record = {
        "student": cell.student,
        "task": cell.task,
        "resources": resources_mod.for_model(grid.resources, cell.student),
        "session": _session(cfg, cell.student, backend),
    }
    return jobs.add(identity, record, cell, certain)


def _session(cfg, spec: str, backend: str) -> str:
    """The engine session a job of model ``spec`` belongs to: jobs of one model, backend and engine
    settings (all of them, output-neutral ones too: they decide how the engine is started) share
    one engine, whatever their task or sampling."""
    return key_of({"model": resolve(spec).spec, "backend": backend, "engine": _declared_engine(cfg, spec)})[:12]


def _distilled_session(cell: Cell) -> str | None:
    """The adapter session the cell's distilled evaluation is planned in (its student's LoRA
    adapter on one engine of the student: :mod:`cotgap.pipeline.plan_engines`), or None."""
    cfg = cell.config
    backend = _backend(cfg, cell.student)[0]
    return plan_engines.adapter_session(
        cfg.training.method, backend, _declared_engine(cfg, cell.student), _session(cfg, cell.student, backend)
    )


def _peer_notes(cell: Cell, teachers: list[str], sized: dict) -> list[str]:
    """What the plan sees of a cross-teacher-filter cell's peers: the runner generates with every
    peer that is not the cell's own teacher, and that generation applies the size rule, so a peer
    not larger than the student makes the cell *fail* (not skip) — said here, before the spend."""
    if not (cell.ablation and cell.peers):
        return []
    own = {resolve(t).spec for t in teachers}
    student, notes = sized[cell.student], []
    for spec in (s for s in cell.peers if s not in own):
        peer = sized[spec]
        if peer.problem:
            notes.append(f"{cell.ablation} peer: {peer.problem}")
        elif student.n_params is not None and peer.kind != "scripted":
            try:
                rules.check_student_smaller(student, [peer])
            except ProtocolError as exc:
                notes.append(
                    f"{cell.name}: {cell.ablation} generates with peer {spec}, which the size rule "
                    f"refuses ({exc}): this cell would fail"
                )
    return notes


def _plan_cell(grid: Grid, cell: Cell, sized: dict, gen: _Jobs, base: _Jobs, infos: dict) -> dict:
    """One cell's plan entry; registers the generation jobs and baseline it needs."""
    teachers = cell_teachers(cell)
    status, reason = _status(sized[cell.student], [sized[t] for t in teachers])
    needs, notes = plan_needs.cell_needs(cell, teachers, infos[cell.strategy])
    if status != "skipped":
        notes += _peer_notes(cell, teachers, sized)
    gen_ids, base_id = [], None
    if status != "skipped":
        gen_ids = [_generation_job(gen, grid, cell, n, status == "run") for n in needs]
        base_id = _baseline_job(base, grid, cell, status == "run")
    return {
        "name": cell.name,
        "task": cell.task,
        "student": cell.student,
        "teachers": teachers,
        "strategy": cell.strategy,
        "ablation": cell.ablation,
        "setting": cell.setting,
        "seed": cell.seed,
        "reference": cell.reference,
        "alone_of": cell.alone_of,
        "status": status,
        "reason": reason,
        "resources": resources_mod.for_model(grid.resources, cell.student),
        "generation_jobs": list(dict.fromkeys(gen_ids)),
        "baseline": base_id,
        "distilled_session": _distilled_session(cell) if status != "skipped" else None,
        "notes": notes,
    }


def _training_settings(grid: Grid) -> list[dict]:
    """The distinct training settings of the grid's cells (preset, batch and loss semantics, lr...),
    each with how many cells use it."""
    seen: dict[str, dict] = {}
    for cell in grid.cells:
        t = cell.config.training
        entry = {
            "preset": t.preset,
            "method": t.method,
            "learning_rate": t.lr(),
            "epochs": t.epochs,
            "per_device_batch_size": t.per_device_batch_size,
            "grad_accum": t.grad_accum,
            "warmup_ratio": t.warmup_ratio,
            "scheduler": t.scheduler,
            "cutoff_len": t.max_length,
            "loss_average": t.loss_average,
            "bf16": t.bf16,
            "seed": t.seed,
            **({"lora_r": t.lora_r, "lora_alpha": t.lora_alpha, "lora_dropout": t.lora_dropout} if t.method == "lora" else {}),
        }
        seen.setdefault(key_of(entry), {**entry, "cells": 0})["cells"] += 1
    return list(seen.values())


def build_plan(grid: Grid) -> dict:
    """The plan of ``grid`` (module docstring), made offline: task names checked, every model
    sized from what this machine has, every cell, generation job and baseline listed."""
    from cotgap import plugins

    with plan_sizes.offline():
        check_tasks(grid)
        infos = plugins.strategies()
        specs = [m for c in grid.cells for m in (c.student, *cell_teachers(c), *c.peers)]
        sized = plan_sizes.sizes(specs, grid.parameters_b)
        gen, base = _Jobs(), _Jobs()
        cells = [_plan_cell(grid, c, sized, gen, base, infos) for c in grid.cells]
    counts = {
        "cells": {s: sum(c["status"] == s for c in cells) for s in STATUSES},
        "generation_jobs": len(gen.by_id),
        "baselines": len(base.by_id),
    }
    jobs = {"generation_jobs": list(gen.by_id.values()), "baselines": list(base.by_id.values())}
    return {
        "schema": PLAN_SCHEMA,
        "name": grid.name,
        "config": grid.source,
        "dir": str(grid.out),
        "generation_cache": str(grid.cache),
        "counts": counts,
        "models": {s: sized[s].describe() for s in sized},
        "notes": list(dict.fromkeys(n for c in cells for n in c["notes"])),
        "cells": cells,
        **jobs,
        "engines": plan_engines.predict(cells, **jobs),
        "training": _training_settings(grid),
        "resources": grid.resources,
        "parameters_b": grid.parameters_b,
    }
