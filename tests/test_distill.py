"""onpolicy and gkd: logit-level distillation on TRL's real trainers, tiny same-vocabulary models.

The teacher is a tiny random model with peaked next-token distributions (``init_std`` 0.2), the
student a smaller one built with the same tokenizer; what the trainers learn is checked against the
teacher itself: after training, the student's reverse KL to the teacher on the student's own
(stored) samples is lower than before, and every counted token is one the trainer really sampled
or scored."""

from __future__ import annotations

import json

import pytest

from cotgap import UserError


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from cotgap.testing import build_model

    root = tmp_path_factory.mktemp("distill-pair")
    return (
        build_model(root / "student", hidden=64, layers=2, seed=0),
        build_model(root / "teacher", hidden=96, layers=3, seed=1, init_std=0.2),
    )


def _examples(n: int) -> list[dict]:
    from cotgap.tasks import synthetic

    task = synthetic.get("synthetic_navigate")
    return [{"prompt": ex["input"] + "\nA:", "completion": task.rationale(ex)} for ex in task.generate(n, seed=3)]


def _reverse_kl(student_path, teacher_path, samples) -> float:
    """Mean reverse KL(student || teacher) over the sampled positions of ``samples``."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    s = AutoModelForCausalLM.from_pretrained(str(student_path), dtype=torch.float32).eval()
    t = AutoModelForCausalLM.from_pretrained(str(teacher_path), dtype=torch.float32).eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for row in samples:
            ids = torch.tensor([row["input_ids"]])
            att = torch.tensor([row["attention_mask"]])
            mask = torch.tensor(row["completion_mask"][1:], dtype=torch.bool)
            ls = F.log_softmax(s(input_ids=ids, attention_mask=att).logits[0, :-1], -1)[mask]
            lt = F.log_softmax(t(input_ids=ids, attention_mask=att).logits[0, :-1], -1)[mask]
            total += (ls.exp() * (ls - lt)).sum().item()
            n += int(mask.sum())
    return total / max(n, 1)


@pytest.mark.parametrize(
    "kind,params",
    [
        ("onpolicy", {"divergence": "reverse_kl", "beta": None, "sample_temperature": 1.0, "max_new_tokens": 8}),
        (
            "gkd",
            {
                "lmbda": 0.5,
                "divergence": "reverse_kl",
                "beta": None,
                "seq_kd": False,
                "sample_temperature": 1.0,
                "max_new_tokens": 8,
            },
        ),
    ],
)
def test_trainer_moves_the_student_towards_the_teacher_and_counts_what_it_did(tmp_path, pair, kind, params):
    from cotgap_plugins import _distill, _distill_trainers
    from transformers import AutoTokenizer

    from cotgap import TrainConfig

    student, teacher = pair
    counts = _distill_trainers.Counts(keep_samples=64)
    cfg = TrainConfig(method="full", learning_rate=3e-3, epochs=1, max_steps=8, grad_accum=1, warmup_ratio=0.0)
    fn = _distill.training_function(kind, params, str(teacher), "teacher", counts, log=lambda *a: None)
    examples = _examples(8)
    result = fn(str(student), examples, tmp_path / "out", cfg, AutoTokenizer.from_pretrained(student))

    assert result.updates == 8 and (tmp_path / "out" / "model" / "config.json").is_file()
    assert result.extra["distillation"]["trainer"] == ("DistillationTrainer" if kind == "onpolicy" else "GKDTrainer")
    c = counts.state()
    sampled = sum(sum(s["completion_mask"]) for s in counts.samples)
    assert c["student_tokens_sampled"] == sampled > 0  # every sample kept: the counts are the samples' tokens
    assert all(sum(s["completion_mask"]) <= params["max_new_tokens"] for s in counts.samples)
    if kind == "onpolicy":  # the teacher scores exactly the student's samples, and nothing else is trained on
        assert c["teacher_tokens_scored"] == c["tokens_trained"] == sampled
    else:  # off-policy steps score the teacher's rationales: tokens beyond the samples
        assert c["teacher_tokens_scored"] == c["tokens_trained"] > sampled
    assert c["teacher_forward_tokens"] > c["teacher_tokens_scored"]  # prompts are read, not scored
    before = _reverse_kl(student, teacher, counts.samples)
    after = _reverse_kl(result.path, teacher, counts.samples)
    assert after < before - 0.02, (before, after)  # measured: ~1.85 -> ~1.76
    assert not (tmp_path / "out.work").exists()  # checkpoints are removed after success


def _runner(tmp_path, student, teacher, strategy="onpolicy", params=None, teachers=None):
    from cotgap.testing import build_runner

    return build_runner(
        tmp_path,
        student,
        strategy=strategy,
        teachers=teachers or [str(teacher)],
        limit=6,
        strategy_params=params or {},
        training={"learning_rate": 1e-2},
        generation={"max_new_tokens": 8},
        generation_cache=tmp_path / "gc",
    )


def test_onpolicy_run_records_its_compute_in_the_report(tmp_path, pair):
    student, teacher = pair
    report = _runner(tmp_path, student, teacher, params={"prompts": "all"}).prepare().execute()
    rec = report["strategy_records"]["onpolicy.training"]
    assert rec["trainer"] == "DistillationTrainer" and rec["beta"] == 1.0 and rec["max_new_tokens"] == 8
    sampled = rec["student_tokens_sampled"]
    assert 0 < sampled == rec["teacher_tokens_scored"] == rec["tokens_trained"] <= 8 * rec["prompts"] * rec["updates"]
    train = report["compute"]["stages"]["train"]
    assert {k: train[k] for k in ("student_tokens_sampled", "teacher_tokens_scored", "tokens_trained")} == {
        k: rec[k] for k in ("student_tokens_sampled", "teacher_tokens_scored", "tokens_trained")
    }
    gen = report["compute"]["stages"]["generate"]
    assert gen["teacher_tokens_generated"] > 0 and gen["student_tokens_sampled"] == 0
    assert report["compute"]["total"]["wall_seconds"] > 0
    assert report["verdict"] in ("helped", "hurt", "no significant change")


def test_vocabulary_mismatch_is_refused_before_any_work(tmp_path, pair):
    from cotgap.testing import build_model

    student, _ = pair
    other = build_model(tmp_path / "other-vocab", hidden=96, layers=3, seed=1)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(other / "tokenizer.json"))  # same size, two ids swapped: another vocabulary
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    a, b = list(vocab)[100:102]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (other / "tokenizer.json").write_text(json.dumps(data))
    for strategy in ("onpolicy", "gkd"):
        with pytest.raises(UserError) as err:
            _runner(tmp_path / strategy, student, other, strategy=strategy).prepare()
        msg = str(err.value)
        assert "\n" not in msg and "do not share a vocabulary" in msg
        assert f"of {other}" in msg and f"of {student}" in msg  # both tokenizers named
        assert not (tmp_path / strategy / "run" / "stages").exists()


def test_a_teacher_without_logits_is_refused(tmp_path, pair):
    student, _ = pair
    with pytest.raises(UserError, match="scripted teacher"):
        _runner(tmp_path, student, None, teachers=["scripted"]).prepare()


def test_teacher_dtype_loads_the_frozen_teacher_in_bfloat16(pair):
    """``teacher_dtype: bfloat16`` halves the teacher's memory; the trained student stays float32."""
    import torch
    from cotgap_plugins import _distill

    from cotgap import plugins

    student, teacher = pair
    s, t = _distill.load_models(str(student), str(teacher), "bfloat16")
    assert s.dtype == torch.float32 and t.dtype == torch.bfloat16 and not t.training
    assert not any(p.requires_grad for p in t.parameters())
    for name in ("onpolicy", "gkd"):
        assert plugins.strategies()[name].defaults["teacher_dtype"] == "float32"
