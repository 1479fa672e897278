"""Datasets behind the task YAMLs, loaded offline and split reproducibly.

Every task YAML names ``custom_dataset: !function utils.load`` and a ``cotgap_source`` in its
metadata; the core passes the run's settings (seed, limit, data dir, synthetic size) as lm-eval
task metadata. Tasks that come with one split are split train:test = 3:2 by a fixed seed
(Kajitsuka et al.); the same split is produced for every model and strategy. A train prompt that
also appears in test is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

from cotgap.errors import UserError

SPLIT_SEED = 1234
TRAIN_FRACTION = 0.6  # 3:2
DEFAULT_SYNTHETIC_N = 100


def split_3_2(examples: list[dict], seed: int = SPLIT_SEED) -> tuple[list[dict], list[dict]]:
    """Shuffle with ``seed`` and cut 3:2 into (train, test)."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_train = round(len(examples) * TRAIN_FRACTION)
    train = [examples[i] for i in sorted(order[:n_train])]
    test = [examples[i] for i in sorted(order[n_train:])]
    check_disjoint(train, test)
    return train, test


def check_disjoint(train: list[dict], test: list[dict], key: str = "input") -> None:
    overlap = {e[key] for e in train} & {e[key] for e in test}
    if overlap:
        example = next(iter(overlap)).splitlines()[0][:60]
        raise UserError(f"{len(overlap)} train prompt(s) also appear in test (e.g. {example!r}); refusing leaked split")


def data_hash(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]


def _synthetic(source: str, n: int, seed: int) -> list[dict]:
    from cotgap.tasks import synthetic

    task = synthetic.get(source)
    return task.generate(n, seed=seed)


def _bbh_json(source: str, data_dir: str | None) -> list[dict]:
    name = source.removeprefix("bbh_")
    base = data_dir or os.environ.get("COTGAP_DATA_DIR")
    if not base:
        raise UserError(f"task {source} needs BBH data: pass --data-dir or set COTGAP_DATA_DIR")
    path = Path(base) / f"{name}.json"
    if not path.exists():
        path = Path(base) / "bbh" / f"{name}.json"
    if not path.exists():
        raise UserError(f"BBH data for {name} not found under {base}")
    return [{"input": e["input"], "target": e["target"]} for e in json.loads(path.read_text())["examples"]]


def load_examples(source: str, *, seed: int = SPLIT_SEED, data_dir: str | None = None,
                  synthetic_n: int = DEFAULT_SYNTHETIC_N, **_ignored) -> list[dict]:
    if source.startswith("synthetic_"):
        return _synthetic(source, int(synthetic_n), int(seed))
    if source.startswith("bbh_"):
        return _bbh_json(source, data_dir)
    raise UserError(f"unknown dataset source {source!r}")


def load_splits(source: str, *, seed: int = SPLIT_SEED, limit: int | None = None, **kw) -> dict[str, list[dict]]:
    """``{"train": [...], "test": [...]}`` with doc ids stable under ``limit`` (a prefix of each split)."""
    train, test = split_3_2(load_examples(source, seed=seed, **kw), seed=seed)
    if limit:
        train, test = train[: int(limit)], test[: int(limit)]
    return {"train": train, "test": test}


def lm_eval_dataset(**metadata):
    """The ``custom_dataset`` callable lm-eval invokes with the task's metadata."""
    import datasets

    splits = load_splits(
        metadata["cotgap_source"],
        seed=metadata.get("cotgap_seed", SPLIT_SEED),
        limit=metadata.get("cotgap_limit"),
        data_dir=metadata.get("cotgap_data_dir"),
        synthetic_n=metadata.get("cotgap_synthetic_n", DEFAULT_SYNTHETIC_N),
    )
    return datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()})
