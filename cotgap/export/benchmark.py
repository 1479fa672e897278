"""Whether a run's task is a BIG-Bench-Hard task, and the canary its data file carries.

BIG-bench data files carry a canary string (``"... canary GUID <uuid>"``) so that training
corpora can be filtered of them. An export of a BBH task repeats the canary of the task's own data
file, read from that file (cotgap never spells a canary out itself), in the card and in every
record, so the exported data is filtered with the benchmark. Without a local data file (hub data)
the card says so and names the canary without its text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cotgap.backends import evaluation
from cotgap.errors import UserError
from cotgap.export.run_source import RunInfo

BBH_TAG = "cotgap_bbh"


@dataclass(frozen=True)
class Benchmark:
    is_bbh: bool
    source: str | None  # the task's data source (``cotgap_source``), e.g. bbh_ruin_names
    canary: str | None  # the data file's canary string, if the file is on this machine
    data_file: str | None


def of(run: RunInfo) -> Benchmark:
    """The benchmark facts of the run's task (from cotgap's task index; no data is split)."""
    from cotgap.tasks import datasets as ds

    name = str(run.config["task"])
    try:
        tm = evaluation.task_manager(run.config.get("include_path") or ())
    except UserError:  # an include folder that is gone: cotgap's own tasks (BBH among them) still tell
        tm = evaluation.task_manager()
    entry = tm.task_index.get(evaluation.resolve_name(name, tm.all_subtasks))
    cfg = getattr(entry, "cfg", None) or {}
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    source = meta.get("cotgap_source")
    tags = set(getattr(entry, "tags", None) or ()) | ({cfg["tag"]} if isinstance(cfg.get("tag"), str) else set())
    yaml_path = str(getattr(entry, "yaml_path", "") or "")
    is_bbh = (
        name.startswith("bbh")
        or BBH_TAG in tags
        or str(source or "").startswith("bbh_")
        or yaml_path.startswith(str(evaluation.builtin_task_dir() / "bbh"))
    )
    path = ds.local_path(source, run.config.get("data_dir")) if source else None
    canary = _canary(path) if path is not None and path.is_file() else None
    return Benchmark(is_bbh=is_bbh, source=source, canary=canary, data_file=str(path) if canary else None)


def _canary(path: Path) -> str | None:
    """The ``canary`` field of a BIG-bench-style JSON data file, or None."""
    if path.suffix != ".json":
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    canary = data.get("canary") if isinstance(data, dict) else None
    return canary if isinstance(canary, str) and canary.strip() else None
