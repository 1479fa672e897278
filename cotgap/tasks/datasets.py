"""Datasets behind the task YAMLs, loaded offline from local files (or from the hub) and split
reproducibly.

Every built-in task YAML names ``custom_dataset: !function utils.load`` (this module's
:func:`lm_eval_dataset`) and a ``cotgap_source`` in its metadata; the core passes the run's
settings (seed, limit, data dir, synthetic size) as lm-eval task metadata.

Sources:

- ``synthetic_<name>``: generated (cotgap/tasks/synthetic);
- ``bbh_<task>``: ``<task>.json`` in the BIG-Bench-Hard repository's format
  (``{"examples": [{"input", "target"}]}``) under the data dir, else hub ``lukaemon/bbh``;
- ``gsm8k``: ``gsm8k/{train,test}.jsonl`` (openai/grade-school-math), else hub ``openai/gsm8k``;
  GSM8K keeps its own train/test split;
- ``math500``: ``math500/test.jsonl`` (prm800k's MATH-500), else hub ``HuggingFaceH4/MATH-500``;
- ``amc23`` / ``aime24``: ``amc23/*.jsonl`` / ``aime24/*.jsonl`` (keys ``problem`` or ``question``,
  and ``answer``), else hub ``math-ai/amc23`` / ``HuggingFaceH4/aime_2024``;
- ``json:<file>``: a user's own ``.json`` (BBH format or a list) or ``.jsonl`` file, absolute or
  relative to the data dir.

The data dir is ``--data-dir`` or ``COTGAP_DATA_DIR``; it may be the folder holding ``bbh/``,
``gsm8k/``… or one of those folders itself (its siblings are found too). Without a data dir the
hub is tried; offline that is a one-line :class:`UserError`.

Tasks that come with one split are split train:test = 3:2 by a fixed seed (Kajitsuka et al.); the
same split is produced for every model and strategy. A train prompt that also appears in test is
refused. Examples carrying a benchmark canary string are dropped on load, so they can never reach
a teacher prompt or training data.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from pathlib import Path

from cotgap.errors import UserError
from cotgap.protocol.constants import SPLIT_SEED, SYNTHETIC_N, TRAIN_FRACTION

MATH_SOURCES = ("gsm8k", "math500", "amc23", "aime24")
# source -> (hub dataset id, config name or None for "the task name", split(s) used)
HUB = {
    "bbh": ("lukaemon/bbh", None),
    "gsm8k": ("openai/gsm8k", "main"),
    "math500": ("HuggingFaceH4/MATH-500", "default"),
    "amc23": ("math-ai/amc23", "default"),
    "aime24": ("HuggingFaceH4/aime_2024", "default"),
}
# A benchmark canary (BIG-bench: "... canary GUID <uuid>"); matched by shape, never spelled out here.
CANARY_RE = re.compile(r"canary\s+GUID\s+[0-9a-f]{8}-[0-9a-f]{4}-", re.IGNORECASE)


# --------------------------------------------------------------------------------- splitting
def split_3_2(examples: list[dict], seed: int = SPLIT_SEED) -> tuple[list[dict], list[dict]]:
    """Shuffle with ``seed`` and cut 3:2 into (train, test)."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_train = round(len(examples) * TRAIN_FRACTION)
    train = [examples[i] for i in sorted(order[:n_train])]
    test = [examples[i] for i in sorted(order[n_train:])]
    check_disjoint(train, test)
    return train, test


def split_sizes_3_2(n: int) -> tuple[int, int]:
    n_train = round(n * TRAIN_FRACTION)
    return n_train, n - n_train


def check_disjoint(train: list[dict], test: list[dict], key: str = "input") -> None:
    overlap = {e[key] for e in train} & {e[key] for e in test}
    if overlap:
        example = next(iter(overlap)).splitlines()[0][:60]
        raise UserError(f"{len(overlap)} train prompt(s) also appear in test (e.g. {example!r}); refusing leaked split")


def data_hash(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------- hygiene
def _has_canary(example: dict, extra: tuple[str, ...] = ()) -> bool:
    for v in example.values():
        if isinstance(v, str) and (CANARY_RE.search(v) or any(c and c in v for c in extra)):
            return True
    return False


def clean(examples: list[dict], canaries: tuple[str, ...] = ()) -> list[dict]:
    """Drop examples carrying a canary string and repeated inputs (first kept)."""
    seen: set[str] = set()
    out = []
    for e in examples:
        if _has_canary(e, canaries) or e["input"] in seen:
            continue
        seen.add(e["input"])
        out.append(e)
    return out


# --------------------------------------------------------------------------------- locating data
def data_base(data_dir: str | None) -> Path | None:
    base = data_dir or os.environ.get("COTGAP_DATA_DIR")
    return Path(base).expanduser() if base else None


def _folders(base: Path, folder: str) -> list[Path]:
    """Where ``folder`` may live: under the data dir, the data dir itself, or beside it."""
    out = [base / folder]
    if base.name == folder:
        out.append(base)
    out.append(base.parent / folder)
    return out


def local_path(source: str, data_dir: str | None) -> Path | None:
    """The local file (or folder, for GSM8K) behind ``source``, or None when there is none."""
    base = data_base(data_dir)
    if source.startswith("json:"):  # absolute paths need no data dir; relative ones are read from it
        p = Path(source.removeprefix("json:")).expanduser()
        if not p.is_absolute():
            if base is None:
                return None
            p = base / p
        return p if p.is_file() else None
    if base is None:
        return None
    if source.startswith("bbh_"):
        name = source.removeprefix("bbh_")
        for p in [base / f"{name}.json", *(f / f"{name}.json" for f in _folders(base, "bbh"))]:
            if p.is_file():
                return p
        return None
    if source == "gsm8k":
        for f in _folders(base, "gsm8k"):
            if (f / "train.jsonl").is_file() and (f / "test.jsonl").is_file():
                return f
        return None
    if source in ("math500", "amc23", "aime24"):
        for f in _folders(base, source):
            if f.is_dir():
                files = sorted([*f.glob("*.jsonl"), *f.glob("*.json")])
                pref = [p for p in files if p.stem == "test"] or files
                if pref:
                    return pref[0]
        return None
    return None


def _expected(source: str) -> str:
    if source.startswith("bbh_"):
        return f"{source.removeprefix('bbh_')}.json (BIG-Bench-Hard format) in the folder or in its bbh/"
    return {
        "gsm8k": "gsm8k/train.jsonl and gsm8k/test.jsonl",
        "math500": "math500/test.jsonl",
        "amc23": "amc23/*.jsonl",
        "aime24": "aime24/*.jsonl",
    }.get(source, source)


def _read_rows(path: Path) -> tuple[list[dict], tuple[str, ...]]:
    """Rows of a .jsonl file, a JSON list, or a BBH-style ``{"examples": [...]}`` (plus its canary)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()], ()
    data = json.loads(text)
    if isinstance(data, dict):
        canary = data.get("canary")
        return list(data.get("examples", [])), ((canary,) if isinstance(canary, str) else ())
    return list(data), ()


# --------------------------------------------------------------------------------- the hub
def hub_reachable(timeout: float = 3.0) -> bool:
    import socket

    offline = ("1", "true", "True")
    if os.environ.get("HF_HUB_OFFLINE") in offline or os.environ.get("HF_DATASETS_OFFLINE") in offline:
        return True  # the user asked for the local hub cache: let `datasets` try it
    try:
        from urllib.parse import urlparse

        host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _hub(source: str) -> list[dict] | dict[str, list[dict]]:
    """Rows from the hub: a dict of splits for GSM8K, else one list (all splits concatenated)."""
    key = "bbh" if source.startswith("bbh_") else source
    repo, config = HUB[key]
    config = config if config is not None else source.removeprefix("bbh_")
    msg = (
        f"no local data for {source}: pass --data-dir DIR (or set COTGAP_DATA_DIR) with {_expected(source)}, "
        f"or go online (hub dataset {repo})"
    )
    if not hub_reachable():
        raise UserError(msg)
    import datasets

    try:
        try:
            ds = datasets.load_dataset(repo, config)
        except ValueError:  # no such config name: the dataset's only one
            ds = datasets.load_dataset(repo)
    except Exception as exc:  # noqa: BLE001 — any hub failure is the user's connectivity, not a bug
        raise UserError(f"{msg} — hub load failed: {str(exc).splitlines()[0][:200]}") from None
    if source == "gsm8k":
        return {k: [dict(r) for r in ds[k]] for k in ("train", "test")}
    return [dict(r) for k in sorted(ds) for r in ds[k]]


# --------------------------------------------------------------------------------- per source
def _field(row: dict, *names: str):
    low = {k.lower(): k for k in row}
    for n in names:
        if n in low:
            return row[low[n]]
    raise UserError(f"example has none of the fields {', '.join(names)} (has: {', '.join(row)})")


def number_text(value) -> str:
    """A numeric answer as text; integral floats lose their ``.0`` (AMC stores 12 as 12.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        v = value.strip()
        if re.fullmatch(r"-?\d+\.0+", v):
            return v.split(".")[0]
        return v
    return str(value)


def _bbh_rows(rows: list[dict]) -> list[dict]:
    return [{"input": str(r["input"]), "target": str(r["target"])} for r in rows]


def gsm8k_target(answer: str) -> str:
    """lm-eval's gsm8k-cot ``doc_to_target``: the text after ``####``."""
    return answer.split("####")[-1].strip()


def _gsm8k_rows(rows: list[dict]) -> list[dict]:
    return [
        {"input": r["question"], "target": gsm8k_target(r["answer"]), "question": r["question"], "answer": r["answer"]}
        for r in rows
    ]


def _math500_rows(rows: list[dict]) -> list[dict]:
    return [
        {
            "input": r["problem"],
            "target": str(r["answer"]),
            "problem": r["problem"],
            "solution": r.get("solution", ""),
            "answer": str(r["answer"]),
            "subject": str(r.get("subject", "")),
            "level": str(r.get("level", "")),
            "unique_id": str(r.get("unique_id", "")),
        }
        for r in rows
    ]


def _competition_rows(rows: list[dict]) -> list[dict]:
    """AMC/AIME: ``answer`` keeps the stored value (AMC: a float), ``target`` is its number text."""
    out = []
    for i, r in enumerate(rows):
        problem = str(_field(r, "problem", "question"))
        raw = _field(r, "answer")
        ident = next((r[k] for k in r if k.lower() in ("id", "unique_id")), i)
        out.append({"input": problem, "target": number_text(raw), "problem": problem, "answer": raw, "id": str(ident)})
    return out


def _user_rows(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        ex = dict(r)
        ex["input"] = str(_field(r, "input", "question", "problem"))
        ex["target"] = number_text(_field(r, "target", "answer"))
        out.append(ex)
    return out


def _synthetic(source: str, n: int, seed: int) -> list[dict]:
    from cotgap.tasks import synthetic

    task = synthetic.get(source)
    return task.generate(n, seed=seed)


def _one_split(source: str, data_dir: str | None) -> list[dict]:
    """All examples of a single-split source (local first, then the hub), cleaned."""
    path = local_path(source, data_dir)
    if path is None:
        base = data_base(data_dir)
        if base is not None:
            raise UserError(f"no local data for {source} under {base}: expected {_expected(source)}")
        if source.startswith("json:"):
            raise UserError(f"data file {source.removeprefix('json:')} not found (relative paths need --data-dir)")
        rows, canaries = _hub(source), ()
    else:
        try:
            rows, canaries = _read_rows(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if source.startswith("bbh_"):
        ex = _bbh_rows(rows)
    elif source == "math500":
        ex = _math500_rows(rows)
    elif source in ("amc23", "aime24"):
        ex = _competition_rows(rows)
    else:
        ex = _user_rows(rows)
    return clean(ex, canaries)


def _gsm8k(data_dir: str | None) -> tuple[list[dict], list[dict]]:
    folder = local_path("gsm8k", data_dir)
    if folder is None:
        base = data_base(data_dir)
        if base is not None:
            raise UserError(f"no local data for gsm8k under {base}: expected {_expected('gsm8k')}")
        splits = _hub("gsm8k")
    else:
        splits = {k: _read_rows(folder / f"{k}.jsonl")[0] for k in ("train", "test")}
    test = clean(_gsm8k_rows(splits["test"]))
    test_inputs = {e["input"] for e in test}
    train = [e for e in clean(_gsm8k_rows(splits["train"])) if e["input"] not in test_inputs]
    return train, test


def load_examples(
    source: str, *, seed: int = SPLIT_SEED, data_dir: str | None = None, synthetic_n: int = SYNTHETIC_N, **_ignored
) -> list[dict]:
    """Every example of a single-split source (before the 3:2 split)."""
    if source.startswith("synthetic_"):
        return _synthetic(source, int(synthetic_n), int(seed))
    if source.startswith("bbh_") or source in ("math500", "amc23", "aime24") or source.startswith("json:"):
        return _one_split(source, data_dir)
    raise UserError(f"unknown dataset source {source!r}")


def load_splits(source: str, *, seed: int = SPLIT_SEED, limit: int | None = None, **kw) -> dict[str, list[dict]]:
    """``{"train": [...], "test": [...]}`` with doc ids stable under ``limit`` (a prefix of each split)."""
    if source == "gsm8k":
        train, test = _gsm8k(kw.get("data_dir"))
        check_disjoint(train, test)
    else:
        train, test = split_3_2(load_examples(source, seed=seed, **kw), seed=seed)
    if limit:
        train, test = train[: int(limit)], test[: int(limit)]
    return {"train": train, "test": test}


def local_sizes(
    source: str, *, data_dir: str | None = None, synthetic_n: int = SYNTHETIC_N, seed: int = SPLIT_SEED
) -> tuple[int, int] | None:
    """(train, test) sizes from local data only (never the network); None when there is none."""
    if source.startswith("synthetic_"):
        return split_sizes_3_2(int(synthetic_n))
    if source != "gsm8k" and not source.startswith(("bbh_", "json:")) and source not in MATH_SOURCES:
        return None
    if local_path(source, data_dir) is None:
        return None
    splits = load_splits(source, seed=seed, data_dir=data_dir)
    return len(splits["train"]), len(splits["test"])


def _given(value, default):
    return default if value is None else value


def lm_eval_dataset(**metadata):
    """The ``custom_dataset`` callable lm-eval invokes with the task's metadata."""
    import datasets

    if "cotgap_source" not in metadata:
        raise UserError("task YAML uses cotgap's dataset loader but sets no metadata.cotgap_source")
    splits = load_splits(
        metadata["cotgap_source"],
        seed=_given(metadata.get("cotgap_seed"), SPLIT_SEED),
        limit=metadata.get("cotgap_limit"),
        data_dir=metadata.get("cotgap_data_dir"),
        synthetic_n=_given(metadata.get("cotgap_synthetic_n"), SYNTHETIC_N),
    )
    return datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()})
