"""Grid files: tasks × students × teacher sets × strategies (× ablations) -> one :class:`Cell` per run.

A grid is a YAML file (``cotgap sweep --config grid.yaml``)::

    name: zoo                      # optional (default: the file's stem)
    out: sweeps/zoo                # optional (default: sweeps/<name>)
    tasks: [synthetic_object_counting]
    students: [smollm2-135m-instruct, gemma-3-270m]
    teachers:                      # each item is one cell's teacher set
      - qwen2.5-coder-0.5b-instruct
      - qwen2.5-coder-1.5b-instruct
      - [qwen2.5-coder-1.5b-instruct, qwen2.5-coder-0.5b-instruct]   # a two-teacher set
    strategies:                    # a name, or a mapping with its own teacher sets / params
      - plain
      - {name: my-strategy, teachers: [[qwen2.5-coder-1.5b-instruct, qwen2.5-coder-0.5b-instruct]]}
    strategy_params: {plain: {samples: 1}}     # per strategy name
    ablations: [none, cross-teacher-filter]   # optional; default [none]
    seeds: [1234, 1, 2]            # optional: training replicates (run and training seed; the split never changes)
    equal_updates: true            # optional (default true): strategies compared at the plain cell's updates
    budget: {teacher_tokens: plain}  # optional, instead: equal updates or equal cost (pipeline/budgets.py)
    generation_cache: sweeps/zoo/_generations  # optional (or COTGAP_GENERATION_CACHE)
    resources: {default: {num_gpus: 1}}       # optional: per-model job resources (pipeline/resources.py)
    parameters_b: {Qwen/Qwen2.5-72B-Instruct: 72.7}  # optional: hub models' sizes, for the plan
    limit: 20                      # any other key: a ``cotgap run`` setting shared by every cell

:func:`load_grid` reads and validates such a file and expands it into a :class:`Grid` of cells,
each with its own ``cotgap run`` configuration in ``<out>/<cell>/``; no model is loaded. Running
the cells is :mod:`cotgap.pipeline.sweep`'s job; planning them without running anything
(``--dry-run``) is :mod:`cotgap.pipeline.plan`'s.

``parameters_b`` declares the size (billions of parameters) of hub models, so the plan can apply
the size rule where the hub cannot be reached; only hub ids take one (zoo and local models are
sized from their configs, API teachers declare theirs in the spec). The run itself still counts
parameters from the model's config.

Equal optimizer updates: strategies are compared at the same number of updates (Kajitsuka et al.),
whatever their data sizes. Each cell that is not a plain, non-ablated cell gets a *reference*: the
plain cell of the same task, student and seed with the same teacher set, else the first plain
cell of that task, student and seed in grid order. The sweep trains the reference first and gives
the cell ``training.max_steps`` = the reference's updates. A grid that fixes ``training.max_steps``
itself, or says ``equal_updates: false``, or has no plain cell for a group, gets no references.
``budget:`` generalises this: ``{updates: plain}`` (the default), or equal cost —
``{teacher_tokens: N | plain}``, ``{seconds: N | plain}`` — held by a stop that reads the compute
ledger while the student trains (:mod:`cotgap.pipeline.budgets`); ``plain`` again means each
cell's reference, measured after it has run.

Each-teacher-alone comparisons: a cell of a strategy that declares ``compare_each_teacher_alone``
(and has two or more teachers, no ablation) gets one extra plain cell per teacher, on that teacher
alone (``alone_of`` = the cell), whose reference is that cell: it is trained at the cell's own
optimizer updates, so the combined data is compared with each teacher's data alone at equal
updates. These cells are never references themselves; the cross-run report compares them with
their cell and keeps them out of the main analysis.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cotgap import config as config_mod
from cotgap.errors import UserError
from cotgap.jsonio import key_of
from cotgap.pipeline import budgets
from cotgap.pipeline import resources as resources_mod
from cotgap.protocol.constants import ABLATIONS, REFERENCE_STRATEGY

GRID_KEYS = (
    "name",
    "out",
    "tasks",
    "students",
    "teachers",
    "strategies",
    "strategy_params",
    "ablations",
    "generation_cache",
    "seeds",
    "equal_updates",
    "budget",
    "resources",
    "parameters_b",
)
# cotgap run settings a grid decides per cell (so they cannot be common settings)
CELL_KEYS = ("task", "student", "teacher", "strategy")


@dataclass
class Cell:
    name: str
    task: str
    student: str
    teachers: list[str]  # as written in the grid ([]: the strategy's default teachers)
    strategy: str
    ablation: str | None
    params: dict
    config: Any  # RunConfig
    peers: list[str] = field(default_factory=list)  # resolved teacher specs (cross-teacher-filter only)
    seed: int | None = None  # the replicate's seed when the grid lists ``seeds``
    reference: str | None = None  # the cell whose optimizer updates this one is trained at
    alone_of: str | None = None  # the multi-teacher cell this one compares with, on one of its teachers alone
    budget: dict | None = None  # the grid's budget (cotgap.pipeline.budgets): {"mode", "value"}

    @property
    def setting(self) -> str:
        return self.strategy + (f"+{self.ablation}" if self.ablation else "")

    def describe(self) -> dict:
        return {
            "name": self.name,
            "task": self.task,
            "student": self.student,
            "teachers": list(self.teachers),
            "strategy": self.strategy,
            "ablation": self.ablation,
            "setting": self.setting,
            "params": self.params,
            "ablation_peers": list(self.peers),
            "seed": self.seed,
            "reference": self.reference,
            "alone_of": self.alone_of,
        }


@dataclass
class Grid:
    name: str
    source: str
    out: Path
    cache: Path
    cells: list[Cell]
    common: dict
    grid: dict  # the normalised grid, for sweep.json
    resources: dict = field(default_factory=dict)  # model (or "default") -> {num_gpus, num_cpus}
    parameters_b: dict = field(default_factory=dict)  # hub model -> declared size in billions


# (name, teacher sets, params) of one strategy of the grid
_Strategy = tuple[str, list[list[str]], dict]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "x"


def short_spec(spec: str) -> str:
    """A model spec as shown in cell names and tables: the folder name for a local model, else the spec."""
    p = Path(spec).expanduser()
    return p.name if p.is_dir() else spec


def _string_list(value, what: str, where: str, *, allow_empty: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (not value and not allow_empty):
        raise UserError(f"grid {where}: {what} must be a non-empty list")
    for v in value:
        if not isinstance(v, str) or not v.strip():
            raise UserError(f"grid {where}: {what} must hold names, got {v!r}")
    if len(set(value)) != len(value):
        raise UserError(f"grid {where}: {what} lists the same entry twice")
    return [v.strip() for v in value]


def _teacher_sets(value, where: str) -> list[list[str]]:
    if value is None:
        return [[]]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise UserError(f"grid {where}: teachers must be a non-empty list (an item may be a list: a teacher set)")
    sets = []
    for item in value:
        ts = _string_list(item, "a teacher set", where)
        if ts in sets:
            raise UserError(f"grid {where}: teacher set {ts} is listed twice")
        sets.append(ts)
    return sets


def _ablation(value, where: str) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
        return None
    if value not in ABLATIONS:
        raise UserError(f"grid {where}: unknown ablation {value!r} (known: none, {', '.join(ABLATIONS)})")
    return value


def _read_mapping(path: str | Path) -> dict:
    """The grid file's YAML, which must be a mapping."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"grid file {path} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"grid file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"grid file {path}: top level must be a mapping (tasks, students, teachers, strategies, …)")
    return data


def _check_keys(data: dict, where: str) -> None:
    """Reject per-cell settings written as common ones, unknown keys and missing tasks / students."""
    run_keys = {f.name for f in dataclasses.fields(config_mod.RunConfig)}
    misplaced = sorted(set(data) & set(CELL_KEYS))
    if misplaced:
        raise UserError(
            f"grid {where}: {', '.join(misplaced)} cannot be a common setting; use the plural lists "
            "tasks, students, teachers, strategies"
        )
    unknown = sorted(set(data) - set(GRID_KEYS) - run_keys)
    if unknown:
        raise UserError(
            f"grid {where}: unknown key(s) {', '.join(unknown)} (grid keys: {', '.join(GRID_KEYS)}; "
            f"or any `cotgap run` setting: {', '.join(sorted(run_keys - set(CELL_KEYS) - set(GRID_KEYS)))})"
        )
    for k in ("tasks", "students"):
        if k not in data:
            raise UserError(f"grid {where}: missing {k!r}")


def _strategy_item(item, teacher_sets: list[list[str]], where: str) -> _Strategy:
    """One entry of ``strategies`` (a name, or a mapping with name / teachers / params)."""
    if isinstance(item, str):
        return item, teacher_sets, {}
    if not isinstance(item, dict):
        raise UserError(f"grid {where}: a strategy is a name or a mapping, got {item!r}")
    extra = sorted(set(item) - {"name", "teachers", "params"})
    if "name" not in item or extra:
        raise UserError(
            f"grid {where}: a strategy mapping needs 'name' and may have 'teachers', 'params' (got {', '.join(map(str, item))})"
        )
    name = item["name"]
    sets = _teacher_sets(item["teachers"], where) if "teachers" in item else teacher_sets
    params = item.get("params") or {}
    if not isinstance(params, dict):
        raise UserError(f"grid {where}: params of strategy {name!r} must be a mapping")
    return name, sets, params


def _strategies(data: dict, teacher_sets: list[list[str]], known: dict, where: str) -> list[_Strategy]:
    """The grid's strategies, each with its teacher sets and its own params (not yet strategy_params)."""
    raw_strategies = data.get("strategies", [REFERENCE_STRATEGY])
    if isinstance(raw_strategies, (str, dict)):
        raw_strategies = [raw_strategies]
    if not isinstance(raw_strategies, list) or not raw_strategies:
        raise UserError(f"grid {where}: strategies must be a non-empty list")
    strategies: list[_Strategy] = []
    for item in raw_strategies:
        name, sets, params = _strategy_item(item, teacher_sets, where)
        if not isinstance(name, str) or name not in known:
            raise UserError(f"grid {where}: unknown strategy {name!r} (available: {', '.join(sorted(known))})")
        if any(s[0] == name for s in strategies):
            raise UserError(f"grid {where}: strategy {name!r} is listed twice")
        strategies.append((name, sets, dict(params)))
    return strategies


def _with_strategy_params(data: dict, strategies: list[_Strategy], known: dict, where: str) -> list[_Strategy]:
    """Merge ``strategy_params`` under each strategy's own params and check every name against its defaults."""
    sp = data.get("strategy_params") or {}
    if not isinstance(sp, dict):
        raise UserError(f"grid {where}: strategy_params must map strategy names to parameter mappings")
    names = [s[0] for s in strategies]
    for k, v in sp.items():
        if k not in names:
            raise UserError(
                f"grid {where}: strategy_params has {k!r}, which is not a strategy of this grid "
                f"({', '.join(names)}); write strategy_params: {{<strategy>: {{...}}}}"
            )
        if not isinstance(v, dict):
            raise UserError(f"grid {where}: strategy_params.{k} must be a mapping")
    strategies = [(n, sets, {**(sp.get(n) or {}), **params}) for n, sets, params in strategies]
    for n, _, params in strategies:
        bad = sorted(set(params) - set(known[n].defaults))
        if bad:
            raise UserError(
                f"grid {where}: unknown parameter(s) for strategy {n}: {', '.join(bad)} "
                f"(known: {', '.join(sorted(known[n].defaults)) or 'none'})"
            )
    return strategies


def _ablations(data: dict, add_ablation: str | None, where: str) -> list[str | None]:
    """The ablations every cell is run under (None: no ablation), plus the one the command line adds."""
    raw_abl = data.get("ablations", [None])
    if not isinstance(raw_abl, list) or not raw_abl:
        raw_abl = [raw_abl]
    ablations = list(dict.fromkeys(_ablation(a, where) for a in raw_abl))
    if data.get("ablation") is not None:
        ablations = [_ablation(data["ablation"], where)]
    if add_ablation:
        ablations = list(dict.fromkeys([*ablations, _ablation(add_ablation, where)]))
    return ablations


def _locations(data: dict, p: Path, out: str | None) -> tuple[str, Path, Path]:
    """The grid's name, output folder and shared generation cache."""
    name = str(data.get("name") or p.stem)
    out_dir = Path(out or data.get("out") or Path("sweeps") / _slug(name)).expanduser().resolve()
    cache = (
        Path(data.get("generation_cache") or os.environ.get("COTGAP_GENERATION_CACHE") or out_dir / "_generations")
        .expanduser()
        .resolve()
    )
    return name, out_dir, cache


def _cell_name(task: str, setting: str, student: str, ts: list[str], seed: int | None, used: set[str], identity=None) -> str:
    """A cell's folder name, unique among ``used`` (which it joins); ``identity`` (default: the
    arguments) tells apart cells whose names collide."""
    suffix = "" if seed is None else f"--seed{seed}"
    base = (
        _slug(f"{task}--{setting}--{short_spec(student)}--{'+'.join(short_spec(t) for t in ts) or 'default-teachers'}")[
            : 140 - len(suffix)
        ]
        + suffix
    )
    return _unique(base, identity or [task, setting, student, ts, seed], used)


def _unique(base: str, identity, used: set[str]) -> str:
    """``base``, or ``base`` shortened and suffixed with a hash of ``identity`` when ``used`` has it;
    the name joins ``used``."""
    cname = base
    if cname in used:
        cname = f"{base[:130]}-{key_of(identity)[:8]}"
    used.add(cname)
    return cname


def _seeds(data: dict, where: str) -> list[int | None]:
    """The grid's training replicates: ``seeds`` (distinct non-negative integers), or [None] (the
    run's default seed, no replicate suffix in cell names)."""
    raw = data.get("seeds")
    if raw is None:
        return [None]
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in raw):
        raise UserError(f"grid {where}: seeds must be a non-empty list of non-negative integers, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise UserError(f"grid {where}: seeds lists the same seed twice")
    return list(raw)


def _cell_config(common: dict, overrides: dict, seed: int | None, backend: str | None, where: str):
    """One cell's run configuration: the grid's common settings, the cell's own, its seed."""
    data = {**common, **overrides}
    if seed is not None:
        data["seed"] = seed
        data["training"] = {**(data.get("training") or {}), "seed": seed}
    try:
        cfg = config_mod.load(None, data)
    except UserError as exc:
        raise UserError(f"grid {where}: {exc}") from None
    if backend:
        cfg.generation.backend = backend
    return cfg


def _expand(
    tasks: list[str],
    students: list[str],
    strategies: list[_Strategy],
    ablations: list[str | None],
    seeds: list[int | None],
    common: dict,
    out_dir: Path,
    backend: str | None,
    where: str,
) -> list[Cell]:
    """Every (task, strategy, ablation, student, teacher set, seed) cell, with its run configuration."""
    from cotgap.models.resolve import resolve

    cells: list[Cell] = []
    used: set[str] = set()
    for task in tasks:
        for sname, sets, params in strategies:
            peers = list(dict.fromkeys(resolve(t).spec for s in sets for t in s))
            for ablation, student, ts, seed in itertools.product(ablations, students, sets, seeds):
                setting = sname + (f"+{ablation}" if ablation else "")
                cname = _cell_name(task, setting, student, ts, seed, used)
                overrides = {
                    "task": task,
                    "student": student,
                    "teachers": list(ts),
                    "strategy": sname,
                    "out": str(out_dir / cname),
                    "strategy_params": params,
                    "ablation": ablation,
                }
                cfg = _cell_config(common, overrides, seed, backend, where)
                cells.append(Cell(cname, task, student, list(ts), sname, ablation, params, cfg, peers if ablation else [], seed))
    return cells


def _alone_cells(
    cells: list[Cell], strategies: list[_Strategy], known: dict, common: dict, backend: str | None, where: str
) -> list[Cell]:
    """One plain cell per teacher of every non-ablated multi-teacher cell whose strategy declares
    ``compare_each_teacher_alone`` (module docstring), with the grid's plain params if it lists plain."""
    plain_params = next((params for n, _, params in strategies if n == REFERENCE_STRATEGY), {})
    used = {c.name for c in cells}
    out: list[Cell] = []
    for cell in cells:
        teachers = cell_teachers(cell)
        compares = getattr(known[cell.strategy].impl, "compare_each_teacher_alone", False)  # a Strategy object's
        if cell.ablation or len(teachers) < 2 or not compares:
            continue
        for t in teachers:
            cname = _cell_name(
                cell.task,
                f"{REFERENCE_STRATEGY}-alone-vs-{cell.setting}",
                cell.student,
                [t],
                cell.seed,
                used,
                identity=[cell.name, t],
            )
            overrides = {
                "task": cell.task,
                "student": cell.student,
                "teachers": [t],
                "strategy": REFERENCE_STRATEGY,
                "out": str(Path(cell.config.out).parent / cname),
                "strategy_params": plain_params,
                "ablation": None,
            }
            cfg = _cell_config(common, overrides, cell.seed, backend, where)
            out.append(
                Cell(
                    cname,
                    cell.task,
                    cell.student,
                    [t],
                    REFERENCE_STRATEGY,
                    None,
                    dict(plain_params),
                    cfg,
                    [],
                    cell.seed,
                    alone_of=cell.name,
                )
            )
    return out


def cell_teachers(cell: Cell) -> list[str]:
    """The teachers a cell runs with: its teacher set, else its strategy's default teachers, else
    cotgap's (``DEFAULT_TEACHERS``), as the runner picks them."""
    from cotgap import plugins
    from cotgap.config import DEFAULT_TEACHERS

    return cell.teachers or list(plugins.strategies()[cell.strategy].default_teachers or DEFAULT_TEACHERS)


def _grid_models(students: list[str], strategies: list[_Strategy], known: dict) -> set[str]:
    """Every model the grid's cells name: students, teachers, and the defaults of strategies given
    no teacher set (what ``resources`` and ``parameters_b`` may be keyed by)."""
    from cotgap.config import DEFAULT_TEACHERS

    models = set(students)
    for name, sets, _ in strategies:
        for ts in sets:
            models.update(ts or known[name].default_teachers or DEFAULT_TEACHERS)
    return models


def _declared_sizes(raw, models: set[str], where: str) -> dict[str, float]:
    """``parameters_b``: hub models of the grid mapped to positive sizes in billions."""
    from cotgap.models.resolve import resolve

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"grid {where}: parameters_b must map hub model ids to sizes in billions, got {raw!r}")
    out = {}
    for model, size in raw.items():
        key = str(model)
        if key not in models:
            raise UserError(f"grid {where}: parameters_b names {key!r}, which is not a student or teacher of this grid")
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not size > 0 or size == float("inf"):
            raise UserError(f"grid {where}: parameters_b.{key} must be a positive number of billions, got {size!r}")
        kind = resolve(key).kind
        if kind != "hub":
            how = "declare it in the teacher's spec (;parameters_b=N)" if kind == "api" else "it is sized from its config"
            raise UserError(
                f"grid {where}: parameters_b.{key}: only hub models take a declared size ({key} is a {kind} model: {how})"
            )
        out[key] = float(size)
    return out


def is_reference(cell: Cell) -> bool:
    """A cell other strategies are compared against: the reference strategy, no ablation, not an
    each-teacher-alone comparison."""
    return cell.strategy == REFERENCE_STRATEGY and cell.ablation is None and cell.alone_of is None


def assign_references(cells: list[Cell], *, keep_fixed_steps: bool = True) -> None:
    """Give every non-reference cell the reference cell whose updates (or cost: a grid ``budget``)
    it is trained at (rule in the module docstring: an each-teacher-alone cell's is its combined
    cell); with ``keep_fixed_steps``, cells whose config fixes ``training.max_steps`` keep it."""
    refs = [c for c in cells if is_reference(c)]
    for cell in cells:
        if is_reference(cell) or (keep_fixed_steps and cell.config.training.max_steps > 0):
            continue
        if cell.alone_of is not None:
            cell.reference = cell.alone_of
            continue
        group = [r for r in refs if (r.task, r.student, r.seed) == (cell.task, cell.student, cell.seed)]
        same = [r for r in group if r.teachers == cell.teachers]
        pick = (same or group or [None])[0]
        cell.reference = pick.name if pick else None


def load_grid(
    path: str | Path,
    *,
    out: str | None = None,
    limit: int | None = None,
    backend: str | None = None,
    add_ablation: str | None = None,
) -> Grid:
    """Read and validate a grid file and expand it into cells (no model is loaded)."""
    from cotgap import plugins
    from cotgap.models.resolve import resolve

    data = _read_mapping(path)
    where = str(path)
    _check_keys(data, where)
    tasks = _string_list(data["tasks"], "tasks", where)
    students = _string_list(data["students"], "students", where)
    teacher_sets = _teacher_sets(data.get("teachers"), where)
    known = plugins.strategies()
    strategies = _with_strategy_params(data, _strategies(data, teacher_sets, known, where), known, where)
    ablations = _ablations(data, add_ablation, where)
    seeds = _seeds(data, where)
    budget = budgets.parse(data.get("budget"), data.get("equal_updates"), where)
    equal = budget == budgets.DEFAULT

    common = {k: v for k, v in data.items() if k not in GRID_KEYS and k != "ablation"}
    if seeds != [None] and "seed" in common:
        raise UserError(f"grid {where}: give either seed (one seed for every cell) or seeds (replicates), not both")
    if limit is not None:
        common["limit"] = limit
    p = Path(path)
    name, out_dir, cache = _locations(data, p, out)

    for spec in {*students, *(t for _, sets, _ in strategies for s in sets for t in s)}:
        resolve(spec)  # unknown model names fail now, before any work
    models = _grid_models(students, strategies, known)
    resources = resources_mod.parse(data.get("resources"), models, where)
    declared = _declared_sizes(data.get("parameters_b"), models, where)

    cells = _expand(tasks, students, strategies, ablations, seeds, common, out_dir, backend, where)
    cells += _alone_cells(cells, strategies, known, common, backend, where)
    for cell in cells:
        cell.budget = budget
        budgets.set_fixed(cell.config, budget)
    if budgets.needs_reference(budget):
        assign_references(cells, keep_fixed_steps=equal)
    grid = {
        "tasks": tasks,
        "students": students,
        "strategies": [{"name": n, "teachers": sets, "params": params} for n, sets, params in strategies],
        "ablations": ablations,
        "seeds": seeds,
        "equal_updates": equal,
        "budget": budget,
        "common": common,
        "resources": resources,
        "parameters_b": declared,
    }
    return Grid(name, str(p), out_dir, cache, cells, common, grid, resources, declared)
