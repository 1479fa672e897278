"""Evaluation and rationale generation through lm-eval (``simple_evaluate`` with cotgap's YAMLs).

Teacher generation is *the same lm-eval run on the train split*: the task's prompt, stop strings
and filter pipeline produce each rationale and its ``correct`` flag, so the correctness filter
and the evaluation share one answer-extraction path by construction.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cotgap.errors import UserError
from cotgap.protocol.constants import SPLIT_SEED, SYNTHETIC_N

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
    seed: int = SPLIT_SEED
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


class _TaskYamlLoader(yaml.SafeLoader):
    """Safe YAML plus lm-eval's tags (``!function``), parsed as plain strings: only to check syntax."""


_TaskYamlLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def broken_yamls(include_paths=()) -> list[dict]:
    """Task YAMLs in the include folders that do not parse (lm-eval skips them silently):
    ``{"file", "task", "error"}``, the task name guessed from a ``task:`` line."""
    broken = []
    for folder in include_paths:
        for f in sorted(Path(folder).rglob("*.y*ml")):
            try:
                yaml.load(f.read_text(encoding="utf-8"), Loader=_TaskYamlLoader)
            except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
                text = f.read_text(errors="replace") if f.is_file() else ""
                m = re.search(r"^task:\s*([^\s#]+)", text, re.M)
                broken.append({"file": str(f), "task": m.group(1) if m else None, "error": " ".join(str(exc).split())[:160]})
    return broken


def list_tasks(include_paths=(), data_dir: str | None = None, synthetic_n: int = SYNTHETIC_N) -> list[dict]:
    """Every task with its group (bbh/math/synthetic/user), source and local train/test sizes."""
    from cotgap.tasks import datasets as ds

    tm = task_manager(include_paths)
    builtin = str(builtin_task_dir())
    rows = []
    for name in sorted(tm.all_subtasks):
        entry = tm.task_index[name]
        path = str(getattr(entry, "yaml_path", "") or "")
        cfg = getattr(entry, "cfg", None) or {}
        meta = cfg.get("metadata") or {}
        source = meta.get("cotgap_source") if isinstance(meta, dict) else None
        tags = {t.removeprefix("cotgap_") for t in (getattr(entry, "tags", None) or ())}
        user = not path.startswith(builtin)
        group = "user" if user else next((g for g in ("bbh", "math", "synthetic") if g in tags), "built-in")
        sizes = None
        if source:
            try:
                sizes = ds.local_sizes(source, data_dir=data_dir, synthetic_n=synthetic_n)
            except UserError:
                sizes = None
        if not source:
            data = "lm-eval dataset"
        elif str(source).startswith("synthetic_"):
            data = "generated"
        else:
            local = ds.local_path(source, data_dir)
            hub = ds.HUB.get("bbh" if source.startswith("bbh_") else source)
            data = str(local.parent if local.is_file() else local) if local else (f"hub {hub[0]}" if hub else "none")
        rows.append(
            {
                "task": name,
                "group": group,
                "source": path if user else "built-in",
                "data": data,
                "train": sizes[0] if sizes else None,
                "test": sizes[1] if sizes else None,
            }
        )
    for bad in broken_yamls(include_paths):
        rows.append(
            {
                "task": bad["task"] or Path(bad["file"]).stem,
                "group": "broken",
                "source": bad["file"],
                "data": f"YAML error: {bad['error']}",
                "train": None,
                "test": None,
            }
        )
    order = {"bbh": 0, "math": 1, "synthetic": 2, "broken": 4}
    return sorted(rows, key=lambda r: (order.get(r["group"], 3), r["task"]))


def resolve_name(name: str, known) -> str:
    """Accept lm-eval's names for the BBH tasks (``bbh_cot_fewshot_<task>``, ``bbh_<task>``)."""
    if name in known:
        return name
    for prefix in ("bbh_cot_fewshot_", "bbh_"):
        if name.startswith(prefix) and name.removeprefix(prefix) in known:
            return name.removeprefix(prefix)
    return name


def load_task(settings: TaskSettings, split: str = "test"):
    """The lm-eval Task object for ``settings.name``, reading ``split`` as its evaluation docs."""
    from lm_eval.tasks import get_task_dict

    tm = task_manager(settings.include_paths, settings.metadata())
    name = resolve_name(settings.name, tm.all_subtasks)
    if name not in tm.all_subtasks:
        for bad in broken_yamls(settings.include_paths):
            if bad["task"] in (None, settings.name):
                raise UserError(f"task {settings.name!r}: {bad['file']} is not valid YAML ({bad['error']})")
        known = ", ".join(sorted(tm.all_subtasks)[:12])
        raise UserError(f"unknown task {settings.name!r} (known: {known}, …; see `cotgap tasks`)")
    task = get_task_dict([name], tm)[name]
    if split != "test":
        task.set_config(key="test_split", value=split)
    _check_task(task, settings.scoring)
    return task


def _check_task(task, scoring: str) -> None:
    """What cotgap needs of a task, checked before any model runs."""
    name = task.config.task
    filters = [f.get("name") for f in (task.config.filter_list or []) if isinstance(f, dict)]
    if scoring not in filters:
        raise UserError(
            f"task {name} has no filter named {scoring!r} (has: {', '.join(map(str, filters)) or 'none'}); "
            "cotgap tasks define 'strict' and 'robust' filters (see docs/tasks.md)"
        )
    docs = task.test_docs()
    if docs is not None and len(docs) and not {"input", "target"} <= set(docs[0]):
        raise UserError(f"task {name}: its docs need 'input' and 'target' fields (have: {', '.join(docs[0])}); see docs/tasks.md")


def docs(task) -> list[dict]:
    return list(task.test_docs())


_RUN_TM = None


def _task_manager_for_run():
    """simple_evaluate builds a TaskManager when given none, indexing lm-eval's ~13k YAMLs
    (seconds per call); the tasks are already built, so a small one over our own folder suffices."""
    global _RUN_TM
    if _RUN_TM is None:
        _RUN_TM = task_manager()
    return _RUN_TM


def prompt_text(context) -> str:
    """A request's prompt as text. Chat-API requests carry lm-eval's ``JsonChatStr`` (the messages
    as JSON), which lm-eval's logged samples hold as a one-item tuple."""
    if isinstance(context, tuple) and len(context) == 1 and isinstance(context[0], str):
        return context[0]
    return str(getattr(context, "prompt", context))


def uses_chat(lm) -> bool:
    """Chat models get few-shot exemplars as turns: a chat API always, a local model when its
    tokenizer has a chat template."""
    return bool(getattr(lm, "chat_api", False) or getattr(getattr(lm, "tokenizer", None), "chat_template", None))


def token_counter(lm):
    """``text -> number of tokens`` in ``lm``'s own tokenizer, or None (API and scripted models):
    what tells a response that stopped at ``max_gen_toks`` from one that finished."""
    tok = getattr(lm, "tokenizer", None)
    if tok is None or not hasattr(tok, "encode"):
        return None
    return lambda text: len(tok.encode(text, add_special_tokens=False))


def run(
    lm, task, *, scoring: str = "robust", lm_eval_dir: Path | None = None, model_name: str | None = None
) -> tuple[dict, list[dict]]:
    """Evaluate ``lm`` on ``task``'s current split. Returns (summary, per-example records).

    Chat models get the few-shot exemplars as alternating user/assistant turns (lm-eval's
    ``--apply_chat_template --fewshot_as_multiturn``); base models get the plain BBH prompt.
    Exemplars as turns keep chat models to the answer format (docs/engines.md, "Few-shot
    exemplars as chat turns"). With ``lm_eval_dir``, lm-eval's own ``results_<date>.json`` and
    ``samples_<task>_<date>.jsonl`` are written there too (``lm_eval_files``), under ``model_name``.
    """
    import lm_eval

    from cotgap.backends import lm_eval_files

    chat = uses_chat(lm)
    tracker = lm_eval_files.tracker(lm_eval_dir) if lm_eval_dir is not None else None
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=[task],
        apply_chat_template=chat,
        fewshot_as_multiturn=chat,
        log_samples=True,
        bootstrap_iters=0,
        task_manager=_task_manager_for_run(),
        evaluation_tracker=tracker,
    )
    if tracker is not None:
        lm_eval_files.save(tracker, out, model_name=model_name)
    name = task.config.task
    samples = [s for s in out["samples"][name] if s.get("filter", scoring) == scoring]
    if not samples:
        raise UserError(f"task {name} has no filter named {scoring!r}")
    records = []
    reasoning_of = getattr(lm, "reasoning_of", None)  # the request ledger keeps a server's reasoning text
    count = token_counter(lm)
    for s in sorted(samples, key=lambda s: s["doc_id"]):
        doc = s["doc"]
        context, gen_kwargs = s["arguments"][0][:2]
        rec = {
            "doc_id": int(s["doc_id"]),
            "input": doc["input"],
            "target": doc["target"],
            # chat APIs get messages: lm-eval's JsonChatStr holds them as JSON
            "prompt": prompt_text(context),
            "response": str(s["resps"][0][0]),
            "answer": s["filtered_resps"][0],
            "correct": bool(s["exact_match"]),
            "max_gen_toks": gen_kwargs.get("max_gen_toks") if isinstance(gen_kwargs, dict) else None,
        }
        if count is not None:
            rec["tokens"] = count(rec["response"])
        reasoning = reasoning_of(context, gen_kwargs) if reasoning_of else None
        if reasoning is not None:
            rec["reasoning"] = reasoning
        records.append(rec)
    results = {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in out["results"][name].items()}
    by_filter: dict[str, list[float]] = {}
    for s in out["samples"][name]:
        by_filter.setdefault(s.get("filter", scoring), []).append(float(s["exact_match"]))
    summary = {
        "task": name,
        "n": len(records),
        "accuracy": sum(r["correct"] for r in records) / max(1, len(records)),
        "scoring": scoring,
        "accuracy_by_scoring": {f: sum(v) / max(1, len(v)) for f, v in sorted(by_filter.items())},
        "lm_eval_results": results,
        "chat_template": chat,
        "config": {k: v for k, v in task.dump_config().items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))},
    }
    return summary, records
