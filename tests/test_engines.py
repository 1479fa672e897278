"""Per-model vLLM engine settings (``generation.engines``): what reaches ``vllm.LLM``, what is
refused before any model loads, what enters the generation cache key, and a real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cotgap import config as config_mod
from cotgap.backends import engines, runtime
from cotgap.errors import UserError

BIG = "Qwen/Qwen2.5-72B-Instruct"
ENGINES = {
    BIG: {"tensor_parallel_size": 4, "engine_kwargs": {"enable_prefix_caching": False}},
    "default": {"gpu_memory_utilization": 0.9, "max_model_len": 8192, "max_num_seqs": 64},
}


def _cfg(engines_section) -> config_mod.RunConfig:
    return config_mod.load(None, {"generation": {"engines": engines_section}})


def test_per_model_settings_layer_over_default_and_machine_defaults():
    cfg = _cfg(ENGINES)
    big, small = cfg.generation.engine_args(BIG), cfg.generation.engine_args("smollm2-135m-instruct")
    base = engines.machine_defaults()
    assert big == {
        **base,
        "gpu_memory_utilization": 0.9,
        "max_model_len": 8192,
        "max_num_seqs": 64,
        "tensor_parallel_size": 4,
        "enable_prefix_caching": False,
    }
    assert small == {**base, "gpu_memory_utilization": 0.9, "max_model_len": 8192, "max_num_seqs": 64}


@pytest.mark.skipif(not runtime.vllm_available(), reason="vLLM is not installed")
def test_engine_is_constructed_with_exactly_these_arguments(monkeypatch, tmp_path):
    import vllm

    from cotgap.backends import generation

    seen = {}

    class RecordingLLM:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def get_tokenizer(self):
            return None

    monkeypatch.setattr(vllm, "LLM", RecordingLLM)
    cfg = _cfg(ENGINES)
    try:
        generation.open_lm(BIG, backend="vllm", seed=7, engine_args=cfg.generation.engine_args(BIG))
    finally:
        generation._current.clear()
    assert seen == {"model": BIG, "seed": 7, **cfg.generation.engine_args(BIG)}
    assert seen["tensor_parallel_size"] == 4 and seen["enable_prefix_caching"] is False and seen["max_model_len"] == 8192


@pytest.mark.parametrize(
    "section, needle",
    [
        ({"default": {"tensor_paralel_size": 2}}, "tensor_paralel_size"),
        ({"m": {"tensor_parallel_size": 0}}, "positive integer"),
        ({"m": {"gpu_memory_utilization": 1.5}}, "fraction"),
        ({"m": {"dtype": "fp7"}}, "dtype"),
        ({"m": {"engine_kwargs": {"tensor_parallel_size": 2}}}, "named setting"),
        ({"m": {"engine_kwargs": {"seed": 2}}}, "set by cotgap"),
        (["tp4"], "mapping"),
    ],
)
def test_malformed_engine_settings_are_refused_by_name(section, needle):
    with pytest.raises(UserError, match=needle):
        _cfg(section)


@pytest.mark.skipif(not runtime.vllm_available(), reason="vLLM is not installed")
def test_arguments_vllm_does_not_accept_are_refused_before_any_model_loads(tmp_path, tiny_student):
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "generation": {
                    "engines": {"default": {"engine_kwargs": {"enable_prefix_caching": True, "no_such_vllm_argument": 1}}}
                }
            }
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cotgap",
            "run",
            "--config",
            str(cfg),
            "--student",
            str(tiny_student),
            "--teacher",
            "scripted",
            "--task",
            "synthetic_navigate",
            "--limit",
            "4",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "vllm.LLM does not accept no_such_vllm_argument" in out.stderr
    assert "enable_prefix_caching" not in out.stderr.split("does not accept")[1]
    assert not (tmp_path / "run" / "stages").exists()


def test_only_output_changing_settings_enter_the_cache_key():
    def key(section):
        return _cfg(section).generation.stage_inputs()

    base = key({})
    assert (
        key(
            {
                "default": {
                    "tensor_parallel_size": 4,
                    "pipeline_parallel_size": 2,
                    "data_parallel_size": 2,
                    "gpu_memory_utilization": 0.5,
                    "max_num_seqs": 8,
                    "enforce_eager": True,
                    "distributed_executor_backend": "ray",
                    "max_model_len": 2048,
                }
            }
        )
        == base
    )
    assert key({"default": {"dtype": "float16"}}) != base
    assert key({"default": {"engine_kwargs": {"quantization": "fp8"}}}) != base
    assert engines.output_key({"dtype": "bfloat16", "tensor_parallel_size": 4}) == {"dtype": "bfloat16"}


def test_data_parallel_is_served_by_a_local_vllm_serve(monkeypatch, tiny_student):
    """``LLM(data_parallel_size>1)`` is refused by vLLM: such a model gets a managed ``vllm serve``."""
    from cotgap.backends import generation, local_server

    started = []
    monkeypatch.setattr(local_server.LocalServer, "start", lambda self, timeout=900: started.append(self.cmd) or self)
    args = {
        **engines.machine_defaults(),
        "data_parallel_size": 2,
        "tensor_parallel_size": 2,
        "max_num_seqs": 16,
        "compilation_config": {"level": 0},
    }
    assert engines.served(args) and not engines.served({"data_parallel_size": 1})
    try:
        lm = generation.open_lm(str(tiny_student), backend="vllm", seed=3, engine_args=args)
    finally:
        generation._current.clear()
    (cmd,) = started
    flags = " ".join(cmd)
    assert "--data-parallel-size 2" in flags and "--tensor-parallel-size 2" in flags and "--seed 3" in flags
    assert '--compilation-config {"level": 0}' in flags
    assert lm._concurrent == 32  # max_num_seqs × replicas requests in flight


@pytest.mark.skipif(not runtime.vllm_available(), reason="vLLM is not installed")
def test_a_real_vllm_engine_starts_with_explicit_settings(tmp_path):
    from cotgap.testing import build_model

    model = build_model(tmp_path / "m", hidden=128, layers=1)
    script = r"""
import json, sys
from cotgap.backends import engines, generation
args = {**engines.machine_defaults(), "max_model_len": 1024, "max_num_seqs": 3, "dtype": "float32"}
lm = generation.open_lm(sys.argv[1], backend="vllm", engine_args=args)
vc = lm.llm.llm_engine.vllm_config
text = lm.llm.generate(["hello"], use_tqdm=False)[0].outputs[0].text
print(json.dumps({"max_model_len": vc.model_config.max_model_len, "max_num_seqs": vc.scheduler_config.max_num_seqs,
                  "dtype": str(vc.model_config.dtype), "generated": isinstance(text, str)}))
"""
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script, str(model)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"max_model_len": 1024, "max_num_seqs": 3, "dtype": "torch.float32", "generated": True}
