"""The practical protocol's rules, enforced by the core."""

import subprocess
import sys
from pathlib import Path

import pytest

from cotgap.errors import ProtocolError, UserError
from cotgap.models.resolve import count_params, resolve
from cotgap.protocol import rules
from cotgap.protocol.stats import compare, paired_bootstrap
from cotgap.tasks.datasets import check_disjoint, load_splits, split_3_2


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cotgap", *args], capture_output=True, text=True, cwd=cwd)


def _one_line_exit_2(out):
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr


# -- student strictly smaller than every teacher ----------------------------------------------------


def test_zoo_student_larger_than_teacher_is_refused_before_any_work(tmp_path):
    out = _cli(
        "run", "--student", "qwen2.5-coder-1.5b-instruct", "--teacher", "smollm2-135m-instruct", "--out", str(tmp_path / "r")
    )
    _one_line_exit_2(out)
    assert "not smaller" in out.stderr
    assert not (tmp_path / "r").exists()  # refused before the run directory was created


def test_equal_size_is_refused(tiny_student):
    ref = resolve(str(tiny_student))
    with pytest.raises(ProtocolError):
        rules.check_student_smaller(ref, [ref])


def test_sizes_come_from_config_on_meta_device(tiny_student, tiny_teacher):
    import torch
    from transformers import AutoModelForCausalLM

    s, t = resolve(str(tiny_student)), resolve(str(tiny_teacher))
    real = AutoModelForCausalLM.from_pretrained(tiny_student, dtype=torch.float32)
    assert count_params(s) == sum(p.numel() for p in real.parameters())
    assert rules.check_student_smaller(s, [t]) == {s.spec: count_params(s), t.spec: count_params(t)}
    with pytest.raises(ProtocolError, match="not smaller"):
        rules.check_student_smaller(t, [s])


def test_scripted_teacher_is_exempt_from_size_rule(tiny_student):
    sizes = rules.check_student_smaller(resolve(str(tiny_student)), [resolve("scripted")])
    assert list(sizes) == [str(tiny_student)]


# -- split ------------------------------------------------------------------------------------------


def test_split_is_3_2_and_deterministic():
    rows = [{"input": f"q{i}", "target": "x"} for i in range(100)]
    train, test = split_3_2(rows, seed=1234)
    assert (len(train), len(test)) == (60, 40)
    assert split_3_2(rows, seed=1234) == (train, test)
    assert split_3_2(rows, seed=1) != (train, test)
    assert not {r["input"] for r in train} & {r["input"] for r in test}


def test_leaked_train_prompt_is_refused():
    with pytest.raises(UserError, match="also appear in test"):
        check_disjoint([{"input": "same"}, {"input": "a"}], [{"input": "same"}])
    dup = [{"input": "dup", "target": "1"}] * 10
    with pytest.raises(UserError):
        split_3_2(dup)


def test_synthetic_splits_same_for_every_model_and_limit_is_a_prefix():
    full = load_splits("synthetic_navigate", seed=1234, synthetic_n=50)
    small = load_splits("synthetic_navigate", seed=1234, synthetic_n=50, limit=5)
    assert small["train"] == full["train"][:5] and small["test"] == full["test"][:5]


# -- bootstrap interval / exact-test verdict (more in test_stats.py) ---------------------------------


def test_paired_bootstrap_and_verdict():
    same = [True, False] * 20
    r = compare(same, same, iters=500)
    assert r["diff"] == 0 and r["verdict"] == "no significant change" and r["p_value"] == 1.0
    better = compare([False] * 40, [True] * 30 + [False] * 10, iters=500)
    assert better["diff"] == 75.0 and better["low"] > 0 and better["verdict"] == "helped"
    worse = compare([True] * 40, [False] * 40, iters=500)
    assert worse["verdict"] == "hurt" and worse["high"] < 0
    assert "verdict" not in paired_bootstrap(same, same, iters=100)  # the interval is display only


# -- filter subset ---------------------------------------------------------------------------------------


def test_filter_must_return_a_subset():
    given = [{"doc_id": 0, "response": "a", "correct": True}, {"doc_id": 1, "response": "b", "correct": False}]
    rules.check_filter_subset("t", given, given[:1])
    with pytest.raises(ProtocolError, match="subset"):
        rules.check_filter_subset("t", given, [{"doc_id": 2, "response": "from another teacher"}])


# -- bad input: one line, exit 2 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--strategy", "nope"],
        ["run", "--task", "no_such_task"],
        ["run", "--student", "/no/such/model/folder"],
        ["run", "--teacher", "not a model"],
    ],
)
def test_bad_input_exits_2_with_one_line(args, tmp_path):
    _one_line_exit_2(_cli(*args, "--out", str(tmp_path / "r")))


def test_malformed_config_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy: plain\n  task: [unclosed\n")
    _one_line_exit_2(_cli("run", "--config", str(bad)))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("strategy: plain\nlearning_rate_typo: 3\n")
    out = _cli("run", "--config", str(unknown))
    _one_line_exit_2(out)
    assert "learning_rate_typo" in out.stderr


def test_split_is_fixed_whatever_the_run_seed(cotgap_runner):
    """A replicate with another seed trains differently on the *same* train/test split."""
    data = []
    for seed in (1234, 7):
        runner = cotgap_runner(limit=None, seed=seed, log=lambda *_: None).prepare()
        runner.run.unlock()
        data.append(runner.data)
    assert data[0] == data[1]


def test_embedded_default_applies_only_when_nothing_names_the_experiment():
    from cotgap.backends import runtime
    from cotgap.config import EMBEDDED_DEFAULT, embedded_default_applies, load

    assert embedded_default_applies(None, {}) and embedded_default_applies(None, {"strategy": "plain", "limit": 5})
    for named in (
        {"task": "synthetic_navigate"},
        {"student": "gemma-3-270m"},
        {"teachers": ("scripted",)},
        {"strategy": "micota"},
    ):
        assert not embedded_default_applies(None, named)
    assert not embedded_default_applies("grid.yaml", {})
    cfg = load(None, {"limit": 5}, base=EMBEDDED_DEFAULT)
    assert (cfg.task, cfg.teachers, cfg.synthetic_n, cfg.limit) == (
        EMBEDDED_DEFAULT["task"],
        EMBEDDED_DEFAULT["teachers"],
        EMBEDDED_DEFAULT["synthetic_n"],
        5,
    )
    assert (cfg.training.method, cfg.training.lr(), cfg.training.max_steps) == ("full", 1e-4, 60)
    assert (cfg.train_shots, cfg.training.mask_history) == (3, True)  # trained on the prompt it is evaluated with
    assert (load(None, {}).train_shots, load(None, {}).training.mask_history) == (0, False)  # the paper's, outside it
    assert cfg.training.per_device_batch_size == 1
    assert cfg.training.use_bf16() is runtime.has_cuda()  # float32 on every CPU, whatever its flags
    assert load(None, {}).training.lr() == 1e-4  # the paper's LoRA rate outside the embedded default
    assert load(None, {}).training.method == "lora"  # the paper's LoRA setting outside it
    # base is copied, never mutated
    assert EMBEDDED_DEFAULT["training"] == {"method": "full", "learning_rate": 1e-4, "max_steps": 60, "mask_history": True}


def test_the_bench_copy_of_the_embedded_default_is_the_embedded_default():
    """bench/configs/embedded-default.yaml (the command behind docs/embedded-default.md's table)
    writes the embedded default out; only the numerics it exists to vary may be added to it."""
    from cotgap.config import EMBEDDED_DEFAULT, load

    path = Path(__file__).parent.parent / "bench" / "configs" / "embedded-default.yaml"
    bench, embedded = load(str(path), {}), load(None, {}, base=EMBEDDED_DEFAULT)
    bench.training.bf16, bench.training.seed = embedded.training.bf16, embedded.training.seed
    assert bench.to_dict() == embedded.to_dict()
