"""Grids of runs: tasks × students × teacher sets × strategies (× ablations), one run directory per cell.

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
      - {name: mix, teachers: [[qwen2.5-coder-1.5b-instruct, qwen2.5-coder-0.5b-instruct]]}
    strategy_params: {plain: {samples: 1}}     # per strategy name
    ablations: [none, cross-teacher-filter]   # optional; default [none]
    generation_cache: sweeps/zoo/_generations  # optional (or COTGAP_GENERATION_CACHE)
    limit: 20                      # any other key: a ``cotgap run`` setting shared by every cell

Every cell is an ordinary run (:class:`cotgap.pipeline.runner.Runner`) in ``<out>/<cell>/``, so
re-running a sweep resumes it: finished stages of finished cells are skipped. All cells share
one teacher-generation cache, keyed by (teacher, task, split, prompt, sampling settings): a
teacher's rationales for a task are computed once and reused by every student, strategy and
ablation that needs them, so generation cost grows with teachers × tasks only. The sweep counts
generations *computed* vs *reused* (a cell whose ``generate`` stage was already finished reuses
everything it needs).

Cells whose student is not strictly smaller than a teacher are *skipped* (protocol rule); a
cell that fails is recorded (message in ``sweep.json``, traceback in ``<cell>/error.log`` for
internal errors) and the sweep goes on. ``<out>/sweep.json`` (schema ``cotgap.sweep/1``) is
rewritten after every cell.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cotgap import config as config_mod
from cotgap.errors import ProtocolError, UserError
from cotgap.jsonio import key_of, write_json
from cotgap.report.sweep_file import SCHEMA

ABLATIONS = ("cross-teacher-filter",)
GRID_KEYS = ("name", "out", "tasks", "students", "teachers", "strategies", "strategy_params", "ablations",
             "generation_cache")
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

    @property
    def setting(self) -> str:
        return self.strategy + (f"+{self.ablation}" if self.ablation else "")

    def describe(self) -> dict:
        return {"name": self.name, "task": self.task, "student": self.student, "teachers": list(self.teachers),
                "strategy": self.strategy, "ablation": self.ablation, "setting": self.setting,
                "params": self.params, "ablation_peers": list(self.peers)}


@dataclass
class Grid:
    name: str
    source: str
    out: Path
    cache: Path
    cells: list[Cell]
    common: dict
    grid: dict  # the normalised grid, for sweep.json


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "x"


def _short(spec: str) -> str:
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


def load_grid(path: str | Path, *, out: str | None = None, limit: int | None = None, backend: str | None = None,
              add_ablation: str | None = None) -> Grid:
    """Read and validate a grid file and expand it into cells (no model is loaded)."""
    from cotgap import plugins
    from cotgap.models.resolve import resolve

    p = Path(path)
    if not p.is_file():
        raise UserError(f"grid file {path} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"grid file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"grid file {path}: top level must be a mapping (tasks, students, teachers, strategies, …)")
    where = str(path)
    run_keys = {f.name for f in dataclasses.fields(config_mod.RunConfig)}
    misplaced = sorted(set(data) & set(CELL_KEYS))
    if misplaced:
        raise UserError(f"grid {where}: {', '.join(misplaced)} cannot be a common setting; use the plural lists "
                        "tasks, students, teachers, strategies")
    unknown = sorted(set(data) - set(GRID_KEYS) - run_keys)
    if unknown:
        raise UserError(f"grid {where}: unknown key(s) {', '.join(unknown)} (grid keys: {', '.join(GRID_KEYS)}; "
                        f"or any `cotgap run` setting: {', '.join(sorted(run_keys - set(CELL_KEYS) - set(GRID_KEYS)))})")
    for k in ("tasks", "students"):
        if k not in data:
            raise UserError(f"grid {where}: missing {k!r}")
    tasks = _string_list(data["tasks"], "tasks", where)
    students = _string_list(data["students"], "students", where)
    teacher_sets = _teacher_sets(data.get("teachers"), where)
    known = plugins.strategies()

    raw_strategies = data.get("strategies", ["plain"])
    if isinstance(raw_strategies, (str, dict)):
        raw_strategies = [raw_strategies]
    if not isinstance(raw_strategies, list) or not raw_strategies:
        raise UserError(f"grid {where}: strategies must be a non-empty list")
    strategies: list[tuple[str, list[list[str]], dict]] = []
    for item in raw_strategies:
        if isinstance(item, str):
            name, sets, params = item, teacher_sets, {}
        elif isinstance(item, dict):
            extra = sorted(set(item) - {"name", "teachers", "params"})
            if "name" not in item or extra:
                raise UserError(f"grid {where}: a strategy mapping needs 'name' and may have 'teachers', 'params' "
                                f"(got {', '.join(map(str, item))})")
            name = item["name"]
            sets = _teacher_sets(item["teachers"], where) if "teachers" in item else teacher_sets
            params = item.get("params") or {}
            if not isinstance(params, dict):
                raise UserError(f"grid {where}: params of strategy {name!r} must be a mapping")
        else:
            raise UserError(f"grid {where}: a strategy is a name or a mapping, got {item!r}")
        if not isinstance(name, str) or name not in known:
            raise UserError(f"grid {where}: unknown strategy {name!r} (available: {', '.join(sorted(known))})")
        if any(s[0] == name for s in strategies):
            raise UserError(f"grid {where}: strategy {name!r} is listed twice")
        strategies.append((name, sets, dict(params)))
    sp = data.get("strategy_params") or {}
    if not isinstance(sp, dict):
        raise UserError(f"grid {where}: strategy_params must map strategy names to parameter mappings")
    names = [s[0] for s in strategies]
    for k, v in sp.items():
        if k not in names:
            raise UserError(f"grid {where}: strategy_params has {k!r}, which is not a strategy of this grid "
                            f"({', '.join(names)}); write strategy_params: {{<strategy>: {{...}}}}")
        if not isinstance(v, dict):
            raise UserError(f"grid {where}: strategy_params.{k} must be a mapping")
    strategies = [(n, sets, {**(sp.get(n) or {}), **params}) for n, sets, params in strategies]
    for n, _, params in strategies:
        bad = sorted(set(params) - set(known[n].defaults))
        if bad:
            raise UserError(f"grid {where}: unknown parameter(s) for strategy {n}: {', '.join(bad)} "
                            f"(known: {', '.join(sorted(known[n].defaults)) or 'none'})")

    raw_abl = data.get("ablations", [None])
    if not isinstance(raw_abl, list) or not raw_abl:
        raw_abl = [raw_abl]
    ablations = list(dict.fromkeys(_ablation(a, where) for a in raw_abl))
    if data.get("ablation") is not None:
        ablations = [_ablation(data["ablation"], where)]
    if add_ablation:
        ablations = list(dict.fromkeys([*ablations, _ablation(add_ablation, where)]))

    common = {k: v for k, v in data.items() if k not in GRID_KEYS and k != "ablation"}
    if limit is not None:
        common["limit"] = limit
    name = str(data.get("name") or p.stem)
    out_dir = Path(out or data.get("out") or Path("sweeps") / _slug(name)).expanduser().resolve()
    cache = Path(data.get("generation_cache") or os.environ.get("COTGAP_GENERATION_CACHE")
                 or out_dir / "_generations").expanduser().resolve()

    for spec in {*students, *(t for _, sets, _ in strategies for s in sets for t in s)}:
        resolve(spec)  # unknown model names fail now, before any work

    cells: list[Cell] = []
    used: set[str] = set()
    for task in tasks:
        for sname, sets, params in strategies:
            peers = list(dict.fromkeys(resolve(t).spec for s in sets for t in s))
            for ablation in ablations:
                for student in students:
                    for ts in sets:
                        setting = sname + (f"+{ablation}" if ablation else "")
                        base = _slug(f"{task}--{setting}--{_short(student)}--"
                                     f"{'+'.join(_short(t) for t in ts) or 'default-teachers'}")[:140]
                        cname = base
                        if cname in used:
                            cname = f"{base[:130]}-{key_of([task, setting, student, ts])[:8]}"
                        used.add(cname)
                        overrides = {**common, "task": task, "student": student, "teachers": list(ts),
                                     "strategy": sname, "out": str(out_dir / cname), "strategy_params": params,
                                     "ablation": ablation}
                        try:
                            cfg = config_mod.load(None, overrides)
                        except UserError as exc:
                            raise UserError(f"grid {where}: {exc}") from None
                        if backend:
                            cfg.generation.backend = backend
                        cells.append(Cell(cname, task, student, list(ts), sname, ablation, params, cfg,
                                          peers if ablation else []))
    grid = {"tasks": tasks, "students": students,
            "strategies": [{"name": n, "teachers": sets, "params": params} for n, sets, params in strategies],
            "ablations": ablations, "common": common}
    return Grid(name, str(p), out_dir, cache, cells, common, grid)


def precheck(cell: Cell) -> str | None:
    """Why the cell must be skipped (the student is not smaller than a teacher), or None."""
    from cotgap import plugins
    from cotgap.config import DEFAULT_TEACHERS
    from cotgap.models.resolve import resolve
    from cotgap.protocol import rules

    teachers = cell.teachers or list(plugins.strategies()[cell.strategy].default_teachers or DEFAULT_TEACHERS)
    try:
        rules.check_student_smaller(resolve(cell.student), [resolve(t) for t in teachers])
    except ProtocolError as exc:
        return str(exc)
    return None


def _gen_stats(runner) -> dict:
    ctx = getattr(runner, "ctx", None)
    stats = dict(ctx.generation_stats) if ctx is not None else {"computed": 0, "reused": 0}
    run = getattr(runner, "run", None)
    if run is not None and "generate" in run.skipped:
        # nothing generated now: everything the cell needs was produced earlier (reused)
        prev = (run.record("generate") or {}).get("generation_cache") or {}
        stats["reused"] += int(prev.get("computed", 0)) + int(prev.get("reused", 0))
    return stats


def _baseline_stat(runner) -> str | None:
    """computed | reused (another cell's identical baseline, or this cell's finished stage) | None."""
    run = getattr(runner, "run", None)
    if run is None:
        return None
    if "baseline" in run.computed:
        return "reused" if (run.record("baseline") or {}).get("shared") else "computed"
    return "reused" if "baseline" in run.skipped else None


def run_sweep(grid: Grid, console, *, log=None) -> dict:
    """Run every cell (resuming finished work); returns (and writes) the sweep summary."""
    from cotgap.backends import generation
    from cotgap.pipeline.runner import Runner

    log = log or console.print
    grid.out.mkdir(parents=True, exist_ok=True)
    summary = {"schema": SCHEMA, "name": grid.name, "config": grid.source, "dir": str(grid.out),
               "generation_cache": str(grid.cache), "grid": grid.grid, "cells": [],
               "generations": {"computed": 0, "reused": 0}, "baselines": {"computed": 0, "reused": 0},
               "counts": {}}
    t_all = time.time()

    def save():
        cells = summary["cells"]
        summary["generations"] = {"computed": sum(c["generations"]["computed"] for c in cells),
                                  "reused": sum(c["generations"]["reused"] for c in cells)}
        summary["baselines"] = {k: sum(c.get("baseline") == k for c in cells) for k in ("computed", "reused")}
        summary["counts"] = {s: sum(c["status"] == s for c in cells) for s in ("done", "skipped", "failed")}
        summary["seconds"] = round(time.time() - t_all, 1)
        summary["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json(grid.out / "sweep.json", summary)

    n = len(grid.cells)
    for i, cell in enumerate(grid.cells, 1):
        console.rule(f"[bold]sweep {grid.name}[/] · cell {i}/{n} · {cell.name}")
        rec = {**cell.describe(), "dir": str(grid.out / cell.name), "status": "failed", "reason": None,
               "verdict": None, "computed": [], "cached": [], "generations": {"computed": 0, "reused": 0},
               "baseline": None}
        t0 = time.time()
        runner = None
        try:
            reason = precheck(cell)
            if reason:
                rec.update(status="skipped", reason=f"protocol: {reason}")
                log(f"[yellow]skipped[/]: {reason}")
            else:
                runner = Runner(cell.config, console, log, generation_cache=grid.cache,
                                ablation_peers=cell.peers).prepare()
                report = runner.execute()
                rec.update(status="done", verdict=report.get("verdict"), computed=list(runner.run.computed),
                           cached=list(runner.run.skipped))
        except KeyboardInterrupt:
            rec.update(reason="interrupted")
            summary["cells"].append(rec)
            save()
            raise
        except UserError as exc:
            rec.update(reason=str(exc))
            log(f"[red]cell failed[/]: {exc}")
        except Exception as exc:  # an internal error in one cell must not lose the others
            cell_dir = grid.out / cell.name
            cell_dir.mkdir(parents=True, exist_ok=True)
            (cell_dir / "error.log").write_text(traceback.format_exc())
            first = str(exc).splitlines()[0] if str(exc) else ""
            rec.update(reason=f"internal error: {type(exc).__name__}: {first} (traceback in {cell_dir / 'error.log'})")
            log(f"[red]cell failed[/]: {rec['reason']}")
        finally:
            if runner is not None:
                rec["generations"] = _gen_stats(runner)
                rec["baseline"] = _baseline_stat(runner)
                if rec["status"] != "done":
                    rec["computed"], rec["cached"] = list(runner.run.computed), list(runner.run.skipped)
            generation.close()
        rec["seconds"] = round(time.time() - t0, 1)
        summary["cells"].append(rec)
        save()
    save()
    return summary


def render_summary(summary: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"sweep {escape(summary['name'])}: {len(summary['cells'])} cells in {summary['dir']}")
    for c in ("task", "setting", "student", "teachers", "status", "verdict", "generations computed / reused",
              "baseline", "stages computed", "s"):
        t.add_column(c, justify="right" if c == "s" else "left")
    style = {"done": "green", "skipped": "yellow", "failed": "red"}
    for c in summary["cells"]:
        status = f"[{style[c['status']]}]{c['status']}[/]"
        if c["status"] != "done" and c.get("reason"):
            status += f": {escape(c['reason'])}"
        g = c["generations"]
        t.add_row(escape(c["task"]), escape(c["setting"]), escape(_short(c["student"])),
                  escape(" + ".join(_short(x) for x in c["teachers"]) or "(default)"), status,
                  escape(c.get("verdict") or "-"), f"{g['computed']} / {g['reused']}", c.get("baseline") or "-",
                  ", ".join(c["computed"]) or "nothing", str(c.get("seconds", "")))
    console.print(t)
    g = summary["generations"]
    counts = summary["counts"]
    teachers = {t for s in summary["grid"]["strategies"] for ts in s["teachers"] for t in ts}
    console.print(f"teacher generations: [bold]{g['computed']} computed[/], [bold]{g['reused']} reused[/] "
                  f"({len(teachers)} teacher(s) × {len(summary['grid']['tasks'])} task(s); "
                  f"cache {summary['generation_cache']})")
    b = summary.get("baselines") or {}
    console.print(f"student baselines: {b.get('computed', 0)} computed, {b.get('reused', 0)} reused")
    console.print(f"cells: {counts.get('done', 0)} done, {counts.get('skipped', 0)} skipped, "
                  f"{counts.get('failed', 0)} failed  (run directories and summary: {Path(summary['dir']) / 'sweep.json'})")
