"""cotgap's SFT against the real LLaMA-Factory 0.9.5 (``llamafactory-cli train`` in ``.venv-llamafactory``).

A small case of ``bench/llamafactory_parity.py`` (the full comparison, its numbers in the README):
8 chat examples, full fine-tuning in fp32, cutoff 300 tokens (two examples fit whole, the others lose
prompt tokens, rationale tokens or both), batch 2, 2 epochs. cotgap runs with its default loss and
template handling. LLaMA-Factory needs an environment of its own (its pins clash with cotgap's):
``bash scripts/setup_llamafactory.sh`` builds it, and CI does (``.ci/run``, which sets
``COTGAP_REQUIRE_LLAMAFACTORY=1`` so that a missing environment fails there instead of skipping).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "llamafactory_parity.py"


def harness():
    spec = importlib.util.spec_from_file_location("llamafactory_parity", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_training_matches_llamafactory(tmp_path):
    lf = harness()
    if lf.llamafactory_cli() is None:
        reason = f"no LLaMA-Factory environment at {lf.llamafactory_venv()} (bash scripts/setup_llamafactory.sh)"
        if os.environ.get("COTGAP_REQUIRE_LLAMAFACTORY") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    case = lf.Case("suite", cutoff_len=300, n_examples=8, epochs=2.0)
    r = lf.run_case(case, tmp_path)

    assert r["rows"] == {"llamafactory": 8, "cotgap": 8}
    assert 0 < r["rows_cut_to_cutoff"] < 8  # both paths: whole examples and cut ones
    assert r["input_ids_identical"] == 8 and r["labels_identical"] == 8, r
    assert r["updates"] == {"llamafactory": 8, "cotgap": 8}
    assert r["logged_steps"]["common"] == 8
    assert r["max_abs_delta_loss"] < 1e-5, r
    assert r["weights"]["rel_l2"] < 1e-6, r["weights"]
    assert r["parity"]
