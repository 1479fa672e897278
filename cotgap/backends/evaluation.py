"""Evaluation and rationale generation through lm-eval (``simple_evaluate`` with cotgap's YAMLs).

Teacher generation is *the same lm-eval run on the train split*: the task's prompt, stop strings
and filter pipeline produce each rationale and its ``correct`` flag, so the correctness filter
and the evaluation share one answer-extraction path by construction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cotgap.errors import UserError

BUILTIN_TASKS = Path(__file__).resolve().parent.parent.parent / "task_configs"


def builtin_task_dir() -> Path:
    try:
        import cotgap_task_configs

        return Path(cotgap_task_configs.__file__).parent
    except ImportError:  # running from a source tree
        return BUILTIN_TASKS


@dataclass
class TaskSettings:
    name: str
    seed: int = 1234
    limit: int | None = None
    data_dir: str | None = None
    synthetic_n: int = 100
    include_paths: list[str] = field(default_factory=list)
    scoring: str = "robust"  # the filter whose exact_match decides correctness

    def metadata(self) -> dict:
        return {
            "cotgap_seed": self.seed,
            "cotgap_limit": self.limit,
            "cotgap_data_dir": self.data_dir,
            "cotgap_synthetic_n": self.synthetic_n,
        }


def task_manager(include_paths=(), metadata: dict | None = None):
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    paths = [str(builtin_task_dir()), *[str(p) for p in include_paths]]
    for p in include_paths:
        if not Path(p).exists():
            raise UserError(f"include path {p} does not exist")
    return TaskManager(include_path=paths, include_defaults=False, metadata=metadata or {})


def list_tasks(include_paths=()) -> list[dict]:
    tm = task_manager(include_paths)
    builtin = str(builtin_task_dir())
    rows = []
    for name in tm.all_subtasks:
        entry = tm.task_index[name]
        path = str(getattr(entry, "yaml_path", "") or "")
        rows.append({"task": name, "source": "built-in" if path.startswith(builtin) else path})
    return rows


def load_task(settings: TaskSettings, split: str = "test"):
    """The lm-eval Task object for ``settings.name``, reading ``split`` as its evaluation docs."""
    from lm_eval.tasks import get_task_dict

    tm = task_manager(settings.include_paths, settings.metadata())
    if settings.name not in tm.all_subtasks:
        known = ", ".join(sorted(tm.all_subtasks)[:12])
        raise UserError(f"unknown task {settings.name!r} (known: {known}, …; see `cotgap tasks`)")
    task = get_task_dict([settings.name], tm)[settings.name]
    if split != "test":
        task.set_config(key="test_split", value=split)
    return task


def docs(task) -> list[dict]:
    return list(task.test_docs())


def run(lm, task, *, scoring: str = "robust") -> tuple[dict, list[dict]]:
    """Evaluate ``lm`` on ``task``'s current split. Returns (summary, per-example records)."""
    import lm_eval

    chat = bool(getattr(getattr(lm, "tokenizer", None), "chat_template", None))
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=[task],
        apply_chat_template=chat,
        fewshot_as_multiturn=False,
        log_samples=True,
        bootstrap_iters=0,
    )
    name = task.config.task
    samples = [s for s in out["samples"][name] if s.get("filter", scoring) == scoring]
    if not samples:
        raise UserError(f"task {name} has no filter named {scoring!r}")
    records = []
    for s in sorted(samples, key=lambda s: s["doc_id"]):
        doc = s["doc"]
        records.append(
            {
                "doc_id": int(s["doc_id"]),
                "input": doc["input"],
                "target": doc["target"],
                "prompt": s["arguments"][0][0],
                "response": s["resps"][0][0],
                "answer": s["filtered_resps"][0],
                "correct": bool(s["exact_match"]),
            }
        )
    results = {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in out["results"][name].items()}
    summary = {
        "task": name,
        "n": len(records),
        "accuracy": sum(r["correct"] for r in records) / max(1, len(records)),
        "lm_eval_results": results,
        "chat_template": chat,
        "config": {k: v for k, v in task.dump_config().items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))},
    }
    return summary, records
