"""mind: the capability-aware weighting (unit level) and one end-to-end CLI run on tiny models."""

import json
import os
import subprocess
import sys
import types

import pytest
from cotgap_plugins import mind
from cotgap_plugins.mind import MindWeights

from cotgap.errors import UserError
from cotgap.testing import FakeContext


# -- the weighting ------------------------------------------------------------------------------
def test_ema_follows_inertia():
    w = MindWeights([0, 0], inertia=0.9)
    w.update([0], [2.0])
    assert w.ema[0] == 2.0 and w.ema[1] is None  # first observation initialises the EMA
    w.update([0], [1.0])
    assert w.ema[0] == pytest.approx(0.9 * 2.0 + 0.1 * 1.0)
    w.update([0], [4.0])
    assert w.ema[0] == pytest.approx(0.9 * (0.9 * 2.0 + 0.1 * 1.0) + 0.1 * 4.0)
    raw = MindWeights([0], inertia=0.0)
    raw.update([0, 0], [3.0, 5.0])
    assert raw.ema[0] == 5.0  # beta = 0: the latest loss


def test_weights_lower_for_higher_loss_and_mean_one_per_question():
    # question "a" has three perspectives with different losses, question "b" two with equal losses
    w = MindWeights(["a", "a", "a", "b", "b"], inertia=0.9, tau=1.0, min_weight=0.1)
    w.update(range(5), [1.0, 2.0, 3.0, 2.0, 2.0])
    ws = w.weights()
    assert ws[0] > ws[1] > ws[2]  # the rationale the student absorbs worst gets the least weight
    assert sum(ws[:3]) / 3 == pytest.approx(1.0)
    assert min(ws) >= 0.1
    assert ws[3] == ws[4] == 1.0  # equal EMAs: exactly uniform
    # the formula of the docstring
    import math

    ex = [math.exp(-x) for x in (1.0, 2.0, 3.0)]
    assert ws[0] == pytest.approx(0.1 + 0.9 * 3 * ex[0] / sum(ex))
    # recalibrated from feedback: once rationale 2 becomes easy, its weight rises above the others
    for _ in range(60):
        w.update([0, 1, 2], [1.0, 2.0, 0.2])
    ws2 = w.weights()
    assert ws2[2] > ws2[0] > ws2[1]


def test_equal_losses_stay_exactly_uniform():
    w = MindWeights([0, 0, 0, 1, 1, 2], inertia=0.5, tau=0.3, min_weight=0.0)
    for step in range(5):
        w.update(range(6), [1.7 + step] * 6)
        assert w.weights() == [1.0] * 6
    assert MindWeights(["x"] * 4).weights() == [1.0] * 4  # nothing observed yet


def test_tau_floor_and_unseen_rationales():
    sharp = MindWeights([0, 0], tau=0.01, min_weight=0.25)
    sharp.update([0, 1], [1.0, 2.0])
    assert sharp.weights() == pytest.approx([1.75, 0.25])  # the floor holds, the mean stays 1
    flat = MindWeights([0, 0], tau=1e6, min_weight=0.0)
    flat.update([0, 1], [1.0, 2.0])
    assert flat.weights() == pytest.approx([1.0, 1.0], abs=1e-5)
    partial = MindWeights([0, 0, 0])
    partial.update([0, 1], [1.0, 3.0])  # rationale 2 unseen: neutral (mean EMA of its group)
    ws = partial.weights()
    assert ws[0] > ws[2] > ws[1] and sum(ws) / 3 == pytest.approx(1.0)
    everyone = MindWeights([0, 0, 0, 0])  # group "all": everything competes
    everyone.update(range(4), [1.0, 1.0, 2.0, 2.0])
    assert everyone.weights()[0] > 1.0 > everyone.weights()[3]


def test_params_are_validated_once_by_their_class():
    """Every rule lives on ``Mind.Params`` (fields' ranges and ``check``; ``samples`` /
    ``temperature`` and their rule inherited from ``Strategy.Params``), run by the core once."""
    from cotgap import Strategy

    assert issubclass(mind.Mind.Params, Strategy.Params)
    p = FakeContext(strategy=mind.Mind(), params={"perspectives": ["", "Be brief."]}).params
    assert p.instructions == [None, "Be brief."] and p.samples == 1 and p.given == {"perspectives"}
    assert mind.Mind.validate_params({}).instructions[0] is None
    for bad, needle in (
        ({"inertia": 1.0}, "strategy_params.inertia of strategy mind must be < 1.0, got 1.0"),
        ({"temperature_tau": 0}, "strategy_params.temperature_tau of strategy mind must be > 0.0"),
        ({"min_weight": 2}, "strategy_params.min_weight of strategy mind must be <= 1.0"),
        ({"samples": 2}, "strategy_params of strategy mind: samples > 1 needs temperature > 0"),
        ({"perspectives": []}, "strategy_params of strategy mind: perspectives must be a non-empty list"),
        ({"perspectives": [3]}, "strategy_params.perspectives[0] of strategy mind must be a string or null, got 3"),
        ({"group": "teacher"}, "strategy_params.group of strategy mind must be one of question, all"),
        ({"log_every": 0}, "strategy_params.log_every of strategy mind must be >= 1"),
    ):
        with pytest.raises(UserError) as err:
            FakeContext(strategy=mind.Mind(), params=bad)
        assert needle in str(err.value) and "\n" not in str(err.value)
    assert FakeContext(strategy=mind.Mind(), params={"samples": 2, "temperature": 0.7}).params.samples == 2


def test_bad_params_refused_before_the_baseline(tmp_path, tiny_student):
    from rich.console import Console

    from cotgap import config as config_mod
    from cotgap.pipeline.runner import Runner

    cfg = config_mod.load(
        None,
        {
            "strategy": "mind",
            "student": str(tiny_student),
            "teachers": ["scripted"],
            "task": "synthetic_navigate",
            "limit": 4,
            "out": str(tmp_path / "run"),
            "strategy_params": {"inertia": 1.5},
        },
    )
    with pytest.raises(UserError, match="inertia"):
        Runner(cfg, Console(quiet=True)).prepare()  # the ``check`` hook
    assert not (tmp_path / "run" / "manifest.json").exists() and not (tmp_path / "run" / "baseline").exists()


def test_trainer_uses_current_weights_then_updates_emas(tiny_student):
    """The loss weights each example by the weights *before* this batch (the base trainer's
    ``example_weights`` extension point), in the core's token-level average, then feeds the EMAs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cotgap.backends.training import Collator, TrainConfig, token_losses, tokenize

    tok = AutoTokenizer.from_pretrained(tiny_student)
    model = AutoModelForCausalLM.from_pretrained(tiny_student).eval()
    rows, _ = tokenize(
        tok,
        [
            {"prompt": "Q: a? A:", "completion": " Yes."},
            {"prompt": "Q: b? A:", "completion": " No, because the walk ends elsewhere."},
        ],
        TrainConfig(),
    )
    batch = Collator(tok.pad_token_id)(rows)
    weights = MindWeights([0, 0], inertia=0.5, min_weight=0.0)
    weights.update([0, 1], [1.0, 3.0])  # earlier feedback: example 1 is hard
    before = weights.weights()
    cls = mind.trainer_class()
    trainer = cls.__new__(cls)  # the loss alone: no Trainer set-up needed
    trainer.mind, trainer.batch_normalise, trainer.loss_average, trainer.calibration = weights, False, "token", None
    model.train()  # dropout-free tiny model: deterministic forward
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        sums, counts = token_losses(
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["labels"]
        )
    assert before[0] != before[1]
    assert loss.item() == pytest.approx(((before[0] * sums[0] + before[1] * sums[1]) / counts.sum()).item(), rel=1e-5)
    assert weights.ema[0] == pytest.approx(0.5 * 1.0 + 0.5 * (sums[0] / counts[0]).item(), rel=1e-5)
    assert weights.observations == [2, 2]


def test_generate_asks_each_teacher_for_each_perspective():
    """Perspective prompts = the task's instruction + the extra instruction; one source per teacher."""
    calls = []

    def generate_rationales(t, *, source, samples, temperature, description):
        calls.append((t.spec, source, samples, temperature, description))
        return [
            {"doc_id": d, "response": f"{t.spec}/{description}/{s}", "correct": d != 1, "sample": s}
            for s in range(samples)
            for d in range(3)
        ]

    task = types.SimpleNamespace(config=types.SimpleNamespace(description="Decide the thing.\n\n"))
    ctx = types.SimpleNamespace(
        params=mind.Mind.validate_params({"perspectives": [None, "Be brief."], "samples": 2, "temperature": 0.7}),
        teachers=[types.SimpleNamespace(spec="t-a"), types.SimpleNamespace(spec="t-a")],
        records={},
        generate_rationales=generate_rationales,
        train_task=lambda: task,
    )
    ctx.record = ctx.records.__setitem__
    out = mind.Mind().generate(ctx)
    assert list(out) == ["t-a", "t-a#2"]  # the same spec twice: still two sources
    assert [c[4] for c in calls] == [None, "Decide the thing.\nBe brief.\n\n"] * 2
    assert all(c[2:4] == (2, 0.7) for c in calls)
    recs = out["t-a"]
    assert len(recs) == 2 * 2 * 3
    # every rationale of a teacher has its own (doc_id, sample) identity, tagged with its perspective
    assert len({(r["doc_id"], r["sample"]) for r in recs}) == len(recs)
    assert {(r["perspective"], r["sample"]) for r in recs} == {(0, 0), (0, 1), (1, 2), (1, 3)}
    assert ctx.records["mind.generated"]["t-a"]["p1: Be brief."] == {"generated": 6, "correct": 4}
    assert ctx.records["mind.params"]["perspectives"] == [None, "Be brief."] and ctx.records["mind.params"]["samples"] == 2
    kept = mind.Mind().filter(ctx, "t-a", recs)
    assert len(kept) == 8 and all(r["correct"] for r in kept)


# -- end to end ---------------------------------------------------------------------------------
def test_cli_run_writes_weight_log_and_plot(tmp_path, tiny_student):
    # one perspective per teacher keeps this fast (every generation is its own lm-eval run, ~6 s);
    # the perspective prompts are covered above. Rationales of a question: long vs short CoT.
    cfg = tmp_path / "mind.yaml"
    cfg.write_text("strategy_params:\n  perspectives: [null]\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cotgap",
            "run",
            "--strategy",
            "mind",
            "--teacher",
            "scripted:long",
            "--teacher",
            "scripted:short",
            "--student",
            str(tiny_student),
            "--task",
            "synthetic_navigate",
            "--limit",
            "10",
            "--backend",
            "hf",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COTGAP_GENERATION_CACHE": str(tmp_path / "gc")},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run = tmp_path / "run"
    work = run / "strategy" / "mind"
    assert (work / "weights.png").stat().st_size > 1000
    examples = [json.loads(line) for line in (work / "examples.jsonl").read_text().splitlines()]
    snaps = [json.loads(line) for line in (work / "weights.jsonl").read_text().splitlines()]
    report = json.loads((run / "report.json").read_text())
    recs = report["strategy_records"]
    updates = report["training"]["updates"]

    # 2 teachers x 1 perspective x 10 questions, all correct (error rate 0)
    assert len(examples) == 20 == report["training"]["examples"]
    assert recs["mind.examples_per_source"] == {"scripted:long": 10, "scripted:short": 10}
    assert recs["mind.examples_per_perspective"] == {"p0: task prompt": 20}
    assert recs["mind.training"]["updates"] == updates > 0
    assert recs["mind.params"]["inertia"] == 0.9
    assert {s["source"]: s["kept"] for s in report["sources"]} == {"scripted:long": 10, "scripted:short": 10}
    assert report["training"]["examples_per_source"] == {"scripted:long": 10, "scripted:short": 10}
    assert all(s["trained"] == 10 and s["rationale_length_kept"]["mean_tokens"] > 0 for s in report["sources"])
    long_len, short_len = (
        next(s for s in report["sources"] if s["source"] == n)["rationale_length_kept"]["mean_tokens"]
        for n in ("scripted:long", "scripted:short")
    )
    assert long_len > short_len

    # a snapshot at the start (seeded by the probe pass: already not uniform) and at the last step;
    # weights mean 1 per question, floor holds
    assert snaps[0]["step"] == 0 and all(e is not None for e in snaps[0]["ema"]) and len(set(snaps[0]["weight"])) > 1
    probe = recs["mind.training"]["probe"]
    assert probe["examples"] == 20 and probe["tokens"] > 0 and probe["seconds"] >= 0
    first = recs["mind.training"]["weights_first_update"]
    assert first["differ_from_1"] == 20 and set(first["by_source_perspective"]) == {"scripted:long · p0", "scripted:short · p0"}
    assert snaps[-1]["step"] == updates
    final = snaps[-1]["weight"]
    assert all(e is not None for e in snaps[-1]["ema"])
    by_q = {}
    for e, w in zip(examples, final):
        by_q.setdefault(e["doc_id"], []).append(w)
    assert all(len(v) == 2 and sum(v) / 2 == pytest.approx(1.0, abs=1e-4) for v in by_q.values())
    assert min(final) >= 0.1 - 1e-9 and max(final) > min(final)  # long vs short CoT: not uniform


# -- calibration from the first update (issue 23.1) ----------------------------------------------
def _two_perspectives(n_questions: int) -> list[dict]:
    """Per question a worked rationale (perspective 0) and a bare answer (perspective 1), in the
    order the strategy hands them to the trainer (source-major, perspective-major)."""
    out = []
    for k in range(2):
        for i in range(n_questions):
            prompt = f"Q: what is {i} plus {i}? A:"
            text = f" {i} plus {i} is {2 * i}. So the answer is {2 * i}." if k == 0 else f" So the answer is {2 * i}."
            out.append({"prompt": prompt, "completion": text, "source": "t", "perspective": k, "doc_id": i})
    return out


def _one_epoch(tiny_student, out, examples, *, mind_params=None):
    """One epoch at batch 4; with ``mind_params`` MIND's trainer (recording the weights each batch
    was given), else the plain weighted trainer. Returns the weights applied and the model's tensors."""
    from safetensors.torch import load_file

    from cotgap.backends.training import TrainConfig, train_sft

    cfg = TrainConfig(learning_rate=3e-3, epochs=1, per_device_batch_size=4, bf16=False)
    applied, kwargs, cls = [], None, None
    if mind_params is not None:
        p = mind.Mind.validate_params(mind_params)
        weights = MindWeights([e["doc_id"] for e in examples], inertia=p.inertia, tau=p.temperature_tau, min_weight=p.min_weight)
        base = mind.trainer_class()

        class Recording(base):
            def example_weights(self, index, weight, losses):
                w = super().example_weights(index, weight, losses)
                applied.extend(zip(index.tolist(), w.tolist()))
                return w

        cls, kwargs = Recording, {"mind_weights": weights, "probe": p.probe}
    result = train_sft(str(tiny_student), examples, out, cfg, trainer_cls=cls, trainer_kwargs=kwargs, progress=False)
    assert result.updates == 8
    return applied, (kwargs or {}).get("mind_weights"), load_file(out / "model" / "model.safetensors")


def test_probe_seeds_the_weights_so_one_epoch_is_not_plain_sft(tmp_path, tiny_student):
    """16 questions x 2 perspectives, batch 4, one epoch (8 updates: a sweep's equal-update budget
    is of this order). Without the probe every weight applied in the epoch is exactly 1 (a rationale's
    weight needs both rationales of its question seen first) — MIND would be plain SFT; with it
    (the default) every applied weight differs from 1, the two perspectives get different weights,
    and the trained model differs from plain's on the same data."""
    examples = _two_perspectives(16)
    unseeded, _, model_unseeded = _one_epoch(tiny_student, tmp_path / "unseeded", examples, mind_params={"probe": False})
    _, _, model_plain = _one_epoch(tiny_student, tmp_path / "plain", examples)
    assert len(unseeded) == 32 and all(w == 1.0 for _, w in unseeded)
    assert all(torch_equal(model_unseeded[k], model_plain[k]) for k in model_plain)  # plain SFT indeed

    applied, weights, model_mind = _one_epoch(tiny_student, tmp_path / "mind", examples, mind_params={})
    assert len(applied) == 32 and all(abs(w - 1.0) > 1e-4 for _, w in applied)
    by_persp = [[w for i, w in applied if examples[i]["perspective"] == k] for k in (0, 1)]
    means = [sum(v) / len(v) for v in by_persp]
    assert abs(means[0] - means[1]) > 0.01  # a spread between the perspectives (a random-init student: small)
    final = weights.weights()  # a question keeps its total weight: its two weights average 1
    assert all((final[i] + final[i + 16]) / 2 == pytest.approx(1.0) for i in range(16))
    # the probe's cost is reported: one forward pass over every rationale
    assert weights.probe["examples"] == 32 and weights.probe["forward_batches"] == 8 and weights.probe["tokens"] > 0
    assert weights.observations == [2] * 32  # the probe, then the epoch's one pass
    assert max((model_mind[k].float() - model_plain[k].float()).abs().max().item() for k in model_plain) > 1e-4


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


# -- the learned calibration (calibration: metanet) --------------------------------------------------
def test_metanet_learns_to_weight_the_perspective_that_helps_the_held_out_questions(tmp_path, tiny_student):
    """Perspective 0 writes the answer format of the held-out questions, perspective 1 unrelated
    words: the first-order meta-gradient (a_i = g_heldout . grad L_i) must move weight to
    perspective 0, from the network alone (probe off: no inertia-filtered loss difference to start)."""
    from cotgap_plugins._mindnet import MetaCalibration
    from transformers import AutoTokenizer

    from cotgap import tokenize
    from cotgap.backends.training import TrainConfig, train_sft

    words = "zebra quantum violet harbour marble tundra copper lantern".split()
    examples = []
    for k in range(2):
        for i in range(12):
            text = f" So the answer is {2 * i}." if k == 0 else " " + " ".join(words[(i + j) % 8] for j in range(6)) + "."
            examples.append(
                {"prompt": f"Q: what is {i} plus {i}? A:", "completion": text, "perspective": k, "doc_id": i, "source": "t"}
            )
    held = [{"prompt": f"Q: what is {i} plus {i}? A:", "completion": f" So the answer is {2 * i}."} for i in range(12, 16)]
    tok = AutoTokenizer.from_pretrained(tiny_student)
    cfg = TrainConfig(learning_rate=3e-3, epochs=3, per_device_batch_size=4, bf16=False)
    meta_rows, _ = tokenize(tok, held, cfg)
    weights = MindWeights([e["doc_id"] for e in examples], min_weight=0.1)
    learned = MetaCalibration(weights, [e["perspective"] for e in examples], 2, meta_rows, lr=0.5, seed=0)
    weights.learned = learned
    start = weights.weights()
    result = train_sft(
        str(tiny_student),
        examples,
        tmp_path / "m",
        cfg,
        trainer_cls=mind.trainer_class(),
        trainer_kwargs={"mind_weights": weights, "calibration": learned},
        progress=False,
    )
    assert learned.steps == result.updates == 18 and len(learned.history) == 18
    final = weights.weights()
    p0, p1 = (sum(final[k * 12 : (k + 1) * 12]) / 12 for k in (0, 1))
    assert p0 > p1 + 0.05 and p0 > sum(start[:12]) / 12  # learned, not the initial network's split
    assert all((final[i] + final[i + 12]) / 2 == pytest.approx(1.0, abs=1e-5) for i in range(12))  # per question
    assert min(final) >= 0.1 - 1e-6
    state = learned.checkpoint_state()  # resumable: the network's parameters travel as JSON
    other = MetaCalibration(weights, [e["perspective"] for e in examples], 2, meta_rows, seed=5)
    other.load_checkpoint_state(json.loads(json.dumps(state)))
    assert other.weights() == pytest.approx(final) and other.steps == 18


def test_metanet_holds_out_whole_questions_and_refuses_one_question():
    recs = [{"doc_id": d, "perspective": k} for d in range(10) for k in range(2)]
    trained, held = mind.hold_out(recs, 0.2, seed=1234)
    assert len(held) == 4 and len({r["doc_id"] for r in held}) == 2
    assert not {r["doc_id"] for r in held} & {r["doc_id"] for r in trained} and len(trained) == 16
    assert mind.hold_out(recs, 0.2, seed=1234) == (trained, held)  # seeded
    with pytest.raises(UserError, match="at least 2 questions"):
        mind.hold_out(recs[:2], 0.5, seed=0)
    for bad in ({"calibration": "learned"}, {"metanet_holdout": 1.0}):
        with pytest.raises(UserError):
            mind.Mind.validate_params(bad)
