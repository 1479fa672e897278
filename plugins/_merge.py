"""DARE-TIES model merging with mergekit, for the ``micota`` strategy (not a plugin: leading ``_``).

``dare_ties_config`` builds the mergekit YAML config (a plain dict) and ``run_merge`` executes it
through mergekit's Python API — the same code path the ``mergekit-yaml`` CLI takes
(``MergeConfiguration.model_validate(yaml)`` -> ``run_merge``), so
``mergekit-yaml <config.yml> <out> --random-seed <seed>`` reproduces a merge tensor for tensor.

Determinism: DARE drops delta entries at random (``torch.bernoulli``). mergekit seeds through
``MergeOptions(random_seed=...)`` (``transformers.set_seed``: python, numpy and torch); we also
call ``torch.manual_seed`` right before the merge so the seed does not depend on that detail.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import yaml


def dare_ties_config(
    *,
    short_parent: str,
    long_parent: str,
    base_model: str | None = None,
    density: float = 0.5,
    weight_long: float = 0.5,
    weight_short: float = 0.5,
    normalize: bool | None = None,
    int8_mask: bool = True,
    dtype: str = "bfloat16",
) -> dict:
    """The mergekit config merging a long-CoT and a short-CoT parent with DARE-TIES.

    ``base_model`` None: the short parent is the base, so the only task vector is
    ``long - short`` and the merge is ``short + weight_long * DARE(long - short)`` (in
    expectation, since DARE rescales kept entries by 1/density: ``short + weight_long * (long -
    short)``). ``weight_short`` then has nothing to weigh and is not written. With a separate
    ``base_model`` both parents contribute a task vector with their own weight and TIES elects
    signs between them. ``normalize`` None: False with one task vector (normalizing would divide
    ``weight_long`` away and give back the long parent in expectation), True with two (the
    weights then act as a convex combination).
    """
    long_params = {"density": float(density), "weight": float(weight_long)}
    models = [{"model": str(long_parent), "parameters": long_params}]
    if base_model is None or str(base_model) == str(short_parent):
        base = str(short_parent)
        n_vectors = 1
    else:
        base = str(base_model)
        models.append({"model": str(short_parent), "parameters": {"density": float(density), "weight": float(weight_short)}})
        n_vectors = 2
    if normalize is None:
        normalize = n_vectors > 1
    return {
        "merge_method": "dare_ties",
        "base_model": base,
        "models": models,
        "parameters": {"normalize": bool(normalize), "int8_mask": bool(int8_mask)},
        "dtype": dtype,
    }


def to_yaml(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)


def run_merge(config: dict, out_dir: str | Path, *, seed: int, yaml_text: str | None = None) -> dict:
    """Merge into ``out_dir`` (written atomically: a temporary folder renamed into place).

    Returns timing and the mergekit version. ``yaml_text`` is the exact config text to record in
    the output (``mergekit_config.yml``), as the CLI does with its input file.
    """
    from importlib.metadata import version

    import torch
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge as mk_run_merge
    from mergekit.options import MergeOptions

    out_dir = Path(out_dir)
    yaml_text = yaml_text if yaml_text is not None else to_yaml(config)
    merge_config = MergeConfiguration.model_validate(yaml.safe_load(yaml_text))
    options = MergeOptions(random_seed=int(seed), quiet=True, device="cpu")
    staging = out_dir.parent / (out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    t0 = time.time()
    torch.manual_seed(int(seed))
    mk_run_merge(merge_config, str(staging), options=options, config_source=yaml_text)
    seconds = time.time() - t0
    _copy_generation_config(config, staging)
    (staging / "micota_merge.yml").write_text(yaml_text)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    return {"seconds": round(seconds, 2), "mergekit": version("mergekit"), "seed": int(seed)}


def _copy_generation_config(config: dict, out: Path) -> None:
    """mergekit writes config, weights and tokenizer; keep the base's generation defaults too."""
    src = Path(str(config["base_model"])) / "generation_config.json"
    if src.is_file() and not (out / "generation_config.json").exists():
        shutil.copy2(src, out / "generation_config.json")
