"""A sweep's plan (:mod:`cotgap.pipeline.plan`) as rich tables: cells, generation jobs, baselines,
model sizes, and one summary line. Printing only: nothing here computes the plan."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from cotgap.models.resolve import HUB_ID
from cotgap.pipeline.grid import short_spec
from cotgap.protocol.rules import human_size

_STATUS_STYLE = {"run": "green", "skipped": "yellow", "unknown": "red"}
#: Engine settings shown in the jobs table (how the job spreads over GPUs); the JSON has them all.
_PARALLEL = {"tensor_parallel_size": "tp", "pipeline_parallel_size": "pp", "data_parallel_size": "dp"}


def _name(spec: str) -> str:
    """A model as the tables show it: a hub id without its organisation, a local folder's name."""
    s = short_spec(spec)
    return s.rsplit("/", 1)[-1] if HUB_ID.match(s) else s


def _resources(r: dict) -> str:
    return ", ".join(f"{k.removeprefix('num_')} {v:g}" for k, v in r.items()) or "-"


def _sampling(s: dict) -> str:
    text = f"{s['samples']} × T={s['temperature']:g}"
    return text + (f", prompt: {s['description']}" if s.get("description") else "")


def _cells_table(plan: dict) -> Table:
    t = Table(title=f"sweep {escape(plan['name'])}: {len(plan['cells'])} cells → {escape(plan['dir'])}")
    seeds = any(c["seed"] is not None for c in plan["cells"])
    for c in ("task", "setting", "student", "teachers", *(["seed"] if seeds else []), "status", "resources"):
        t.add_column(c, overflow="fold")
    for c in plan["cells"]:
        status = f"[{_STATUS_STYLE[c['status']]}]{c['status']}[/]"
        if c["reason"]:
            status += f": {escape(c['reason'])}"
        seed = [str(c["seed"])] if seeds else []
        t.add_row(
            escape(c["task"]),
            escape(c["setting"]),
            escape(_name(c["student"])),
            escape(" + ".join(_name(x) for x in c["teachers"])),
            *seed,
            status,
            _resources(c["resources"]),
        )
    return t


def _jobs_table(plan: dict) -> Table:
    t = Table(title=f"teacher generations: {len(plan['generation_jobs'])} jobs (computed once, shared by the cells)")
    for c in ("teacher", "task", "sampling", "budget", "parallel", "resources", "cells"):
        t.add_column(c, justify="right" if c == "cells" else "left", overflow="fold")
    for j in plan["generation_jobs"]:
        engine = ", ".join(f"{a} {j['engine'][k]}" for k, a in _PARALLEL.items() if j["engine"].get(k)) or "-"
        mark = "" if j.get("exact", True) else " [yellow](approx.)[/]"
        budget = str(j["max_new_tokens"]) if j.get("max_new_tokens") else "task's"
        t.add_row(
            escape(_name(j["teacher"])) + mark,
            escape(j["task"]),
            escape(_sampling(j["sampling"])),
            budget,
            escape(engine),
            _resources(j["resources"]),
            str(len(j["cells"])),
        )
    return t


def _baselines_table(plan: dict) -> Table:
    t = Table(title=f"student baselines: {len(plan['baselines'])} (one per student × task test split)")
    for c in ("student", "task", "resources", "cells"):
        t.add_column(c, justify="right" if c == "cells" else "left", overflow="fold")
    for b in plan["baselines"]:
        t.add_row(escape(_name(b["student"])), escape(b["task"]), _resources(b["resources"]), str(len(b["cells"])))
    return t


def _models_table(plan: dict) -> Table:
    t = Table(title="model sizes (the size rule's input)")
    for c in ("model", "parameters", "from"):
        t.add_column(c, overflow="fold")
    for spec, m in plan["models"].items():
        size = human_size(m["parameters"]) if m["parameters"] else "-"
        t.add_row(escape(spec), size, escape(m["problem"] or m["source"]))
    return t


def _training_table(plan: dict) -> Table:
    t = Table(title="training settings (cotgap/training_config.py)")
    for c in ("preset", "method", "lr", "epochs", "batch/device × accum", "warmup", "cutoff", "loss", "seed", "cells"):
        t.add_column(c, overflow="fold")
    for s in plan.get("training", []):
        method = s["method"] + (f" r{s['lora_r']}/α{s['lora_alpha']}/drop {s['lora_dropout']:g}" if "lora_r" in s else "")
        t.add_row(
            escape(str(s["preset"] or "-")),
            escape(method),
            f"{s['learning_rate']:g}",
            f"{s['epochs']:g}",
            f"{s['per_device_batch_size']} × {s['grad_accum']}",
            f"{s['warmup_ratio']:g}",
            str(s["cutoff_len"]),
            s["loss_average"],
            str(s["seed"]),
            str(s["cells"]),
        )
    return t


def render(plan: dict, console) -> None:
    """Print the plan's tables and its counts."""
    for table in (_cells_table(plan), _jobs_table(plan), _baselines_table(plan), _models_table(plan), _training_table(plan)):
        console.print(table)
    for note in plan["notes"]:
        console.print(f"[yellow]note[/]: {escape(note)}")
    n = plan["counts"]
    cells = n["cells"]
    console.print(
        f"plan: {sum(cells.values())} cells ({cells['run']} run, {cells['skipped']} skipped, "
        f"{cells['unknown']} unknown), {n['generation_jobs']} teacher-generation jobs, "
        f"{n['baselines']} student baselines; no model loaded, nothing downloaded",
        highlight=False,
    )
    if plan.get("engines"):
        console.print(engines_line(plan["engines"]), highlight=False)


def engines_line(e: dict) -> str:
    """The predicted engine starts in one line: with one session per model, and per job."""
    models = sum(m["sessions"] > 0 for m in e["models"].values())
    adapters = e.get("adapter_sessions") or []
    merged = e.get("merged_distilled", e["distilled"])
    lora = (
        f"{len(adapters)} adapter session(s) for {e['distilled'] - merged} LoRA student(s) + {merged} merged "
        if adapters
        else f"{merged} "
    )
    return (
        f"engine starts: {e['starts']['sessions']} ({models} model session(s) + {lora}distilled "
        f"evaluation(s)); {e['starts']['per_job']} if every job started its own engine"
    )
