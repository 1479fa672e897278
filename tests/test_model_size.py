"""The size the protocol's student < teacher rule reads: for a local checkpoint, from its
safetensors headers (no weights read, no model built), equal to the meta-device count."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from cotgap.models.resolve import ModelRef, count_params, stored_params


def _meta_count(path) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    return sum(p.numel() for p in model.parameters())


def test_headers_give_the_meta_device_count(tiny_student, tiny_teacher):
    for path in (tiny_student, tiny_teacher):  # tied embeddings: stored once, counted once
        assert stored_params(path) == _meta_count(path) > 0


def test_sharded_checkpoint_counts_every_shard_once(tiny_teacher, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(tiny_teacher).save_pretrained(out, max_shard_size="100KB")
    assert len(list(out.glob("*.safetensors"))) > 1 and (out / "model.safetensors.index.json").exists()
    assert stored_params(out) == stored_params(tiny_teacher)


def test_headers_that_cannot_tell_fall_back_to_the_config(tiny_student, tmp_path):
    quantized = tmp_path / "quantized"
    shutil.copytree(tiny_student, quantized)
    cfg = json.loads((quantized / "config.json").read_text())
    (quantized / "config.json").write_text(json.dumps({**cfg, "quantization_config": {"quant_method": "gptq"}}))
    assert stored_params(quantized) is None  # packed weights: shapes are not parameter counts
    no_weights = tmp_path / "config-only"
    no_weights.mkdir()
    shutil.copy(tiny_student / "config.json", no_weights / "config.json")
    assert stored_params(no_weights) is None
    assert count_params(ModelRef(str(no_weights), "local")) == _meta_count(tiny_student)  # from the config


def test_sizing_a_local_model_builds_no_model(tiny_student):
    """A run refused by the size rule (or an API teacher's missing size) is refused before the
    modelling stack is imported."""
    code = (
        "import sys; from cotgap.models.resolve import ModelRef, count_params; "
        f"n = count_params(ModelRef({str(tiny_student)!r}, 'local')); "
        "print(n, 'transformers.modeling_utils' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(_meta_count(tiny_student)), "False", "False"]


@pytest.mark.parametrize("spec", ["scripted"])
def test_the_scripted_teacher_has_no_size(spec):
    from cotgap.errors import UserError

    with pytest.raises(UserError, match="has no size"):
        count_params(ModelRef(spec, "scripted"))
