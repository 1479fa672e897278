"""mind — capability-aware multi-perspective CoT distillation (Cui, Guo, Zhou, Yang, Lu, Xu, Song,
Zhao, Ren 2026, "MIND: From Passive Mimicry to Active Reasoning through Capability-Aware
Multi-Perspective CoT Distillation", ACL 2026, arXiv:2601.03717).

The method: instead of one "golden" rationale per question, the student sees several reasoning
*perspectives* per question, and a "Feedback-Driven Inertia Calibration" aligns the supervision
with what the student can currently absorb: an *inertia-filtered* (smoothed) training loss per
rationale drives the weight each rationale gets, recalibrated as training proceeds, so that
rationales the student cannot yet follow (out-of-distribution for it) are down-weighted rather
than forced on it. The paper synthesises perspectives with a "Teaching Assistant" network; here
perspectives come from what the practical protocol allows: several teachers, several
perspective prompts and/or several samples per teacher.

Stages:

- generate: for every teacher and every perspective prompt, ``ctx.generate_rationales`` on the
  *train* split (``description=`` replaces the task's instruction by the task's instruction
  followed by the perspective's extra instruction; null keeps the task's own prompt), with
  ``samples`` rationales per question. One source per teacher (``<teacher spec>``; ``#2``... if
  the same spec is given twice); each record carries ``perspective`` (index) and
  ``perspective_text``, and ``sample`` is renumbered ``perspective * samples + s`` so every
  rationale of a teacher has its own identity.
- filter: per source (one teacher), every correct rationale — all perspectives, all samples —
  by the task's own answer extraction; nothing is filtered across teachers.
- train: SFT on all kept rationales with :class:`MindWeights` driving per-rationale loss weights
  inside a ``Trainer`` subclass of ``weighted_trainer_class()`` (see ``trainer_class``).

The weighting (the paper does not publish its formula; this is ours). For rationale ``i`` with
per-example loss ``l_i`` (mean token cross-entropy over the rationale tokens) observed in a
training batch:

    EMA_i <- l_i                                  on its first observation
    EMA_i <- beta * EMA_i + (1 - beta) * l_i        afterwards                 (beta = inertia)

For the group ``G`` of rationales of one question (all its teachers/perspectives/samples):

    p_i = softmax_{j in G}( -EMA_j / tau )_i                                  (tau = temperature_tau)
    w_i = m + (1 - m) * |G| * p_i                                             (m = min_weight)

so the weights of a question average exactly 1 (the question keeps its total weight; only the
split between its perspectives changes), no weight falls below ``m``, higher-loss ("not yet
absorbable") rationales get less, and equal EMAs give exactly w = 1. A rationale not observed
yet takes the mean EMA of its group's observed ones (neutral); a group with no observation, or
with one rationale, has weight 1. Weights used for a batch are computed from the EMAs *before*
that batch's losses are folded in ("feedback" from earlier batches). The student's capability is
measured before it trains: a *probe pass* (``probe``, on by default) runs the untrained student
once over every kept rationale (forward only, no gradient) and takes each rationale's loss as its
first observation, so the weights act from the first update. Without it every weight stays exactly
1 until both rationales of a question have been seen in training — about a whole epoch, which is
all a sweep's equal-update budget gives MIND on its doubled data (tests/test_mind.py: 16 questions
x 2 perspectives at batch 4, one epoch: 0 of 32 applied weights differ from 1 without the probe,
32 of 32 with it). Its cost (examples, tokens, seconds; one forward pass per rationale, about a
third of a training epoch's compute) is recorded in ``mind.training.probe``. The weights multiply each
rationale's loss in the core's loss average (token-level by default: ``sum_i w_i * s_i / N``,
``s_i`` the rationale's summed token loss, N the global batch's trained tokens; see
``cotgap.backends.training``), as absolute weights with mean 1 over the data (see
``batch_normalise``). The EMA and weight of every rationale are logged to
``strategy/mind/weights.jsonl`` (index -> question/source/perspective in ``examples.jsonl``)
and plotted to ``strategy/mind/weights.png``. Under ``training.launcher: accelerate`` every
process folds in the losses of the whole global batch (the same EMAs everywhere) and the main
process writes the log; the EMAs are saved with training checkpoints and restored on resume.

Choices the paper leaves open, each a parameter (``strategy_params``) with its default:

- ``perspectives`` ([null, "Reason concisely, stating only the essential steps."]): one
  generation per entry and teacher; null (or "") is the task's own prompt, a string is
  appended to the task's instruction (the ``description`` lm-eval puts before the few-shot
  exemplars). Two by default, the task's own CoT and a concise one (two lengths of reasoning):
  each perspective is a full teacher pass over the train split, so two keep the embedded
  default within a CPU's budget (docs/strategies.md, "Measurements behind the defaults"). Add
  perspectives (e.g. "Reason step by step, verifying each intermediate result."), teachers or
  ``samples`` freely on a GPU.
- ``samples`` (1) / ``temperature`` (0.0): rationales per question, teacher and perspective;
  >1 needs temperature > 0.
- ``inertia`` (0.9): beta of the loss EMA (the "inertia filter"); 0 = raw latest loss.
- ``temperature_tau`` (1.0): tau of the softmax over -EMA; smaller = sharper down-weighting,
  large = nearly uniform.
- ``min_weight`` (0.1): floor m in [0, 1] of every weight (1 disables the reweighting).
- ``group`` ("question"): what the weights are normalised over — "question" (the rationales
  of one question compete; weights mean 1 per question) or "all" (every rationale competes
  with every other; weights mean 1 over the data set).
- ``batch_normalise`` (false): false: absolute weights (a down-weighted rationale really
  contributes less); true: the weights are rescaled to mean 1 over each global batch (only the
  split inside the batch changes).
- ``log_every`` (null): optimizer steps between logged weight snapshots; null = about 100
  snapshots over training (plus the first and last step).
- ``probe`` (true): seed every rationale's inertia filter with the untrained student's loss on it
  before the first update (above); false = the filter starts empty (weights 1 until observed).
- ``calibration`` ("inertia"): how the inertia-filtered loss becomes a weight. "inertia": the
  fixed formula above (our reading of "Feedback-Driven Inertia Calibration": the loss itself is the
  feedback). "metanet": the learned reading of the paper's "Teaching Assistant" network — a small
  MLP maps a rationale's inertia-filtered loss and its source · perspective to its weight
  (normalised per group as above) and is trained online by a first-order meta-gradient on a
  held-out slice of the train split, in the manner of Meta-Weight-Net (Shu et al. 2019;
  :mod:`cotgap_plugins._mindnet`). It costs about twice plain training per update, holds out
  ``metanet_holdout`` of the questions from the student's training, and trains in one process.
  The default is "inertia": the measured default run and the tests show it acting from the first
  update at plain training's cost; no run yet shows the learned one doing better (docs/fidelity.md).
- ``metanet_holdout`` (0.1): fraction of the questions (at least one, never all) held out, with
  all their rationales, as the MetaNet's feedback set.
- ``metanet_hidden`` (16) / ``metanet_lr`` (0.5): the MetaNet's hidden width and its SGD
  learning rate (on a meta-objective normalised to unit scale; 0.5 moves the weights within a
  sweep's few updates, tests/test_mind.py).

Fixed choices (no parameter): the EMA starts at the first observed loss (no bias towards 0);
a rationale's loss is its mean token cross-entropy (so length does not by itself lower a
weight); the weight of a batch comes from the EMAs before that batch; a teacher is one source
(its perspectives are told apart by the ``perspective`` field, not by separate sources);
gradient accumulation averages micro-batches (``loss_is_scaled_for_ga = False``).

Recorded (``report.json`` -> ``strategy_records``): ``mind.params``, ``mind.generated``
(rationales and correct ones per teacher and perspective), ``mind.examples_per_source``,
``mind.examples_per_perspective``, ``mind.training`` (updates, examples, the probe's cost, the
weights of the first update and the final ones — min, max, spread, how many differ from 1, and
mean/min/max per source and perspective —, paths of the weight log and plot).
"""

from __future__ import annotations

import functools
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cotgap import PlannedGeneration, Strategy, UserError, hookimpl

NAME = "mind"
#: "inertia": the fixed reading (softmax of -EMA per question); "metanet": the learned one (_mindnet)
CALIBRATIONS = ("inertia", "metanet")
DEFAULT_PERSPECTIVES = [
    None,
    "Reason concisely, stating only the essential steps.",
]


class Mind(Strategy):
    """MIND (Cui et al. 2026). ``filter`` is the base class's (each source's correct records)."""

    name = NAME
    description = (
        "MIND: several reasoning perspectives per question, each rationale weighted by "
        "the student's inertia-filtered loss on it (Cui et al. 2026)"
    )

    @dataclass
    class Params(Strategy.Params):
        """``samples`` / ``temperature`` and their rule are ``Strategy.Params``'s (per teacher and
        perspective); every other rule is a field's range or ``check`` below, run once by the core."""

        perspectives: list[str | None] = field(default_factory=lambda: list(DEFAULT_PERSPECTIVES))
        inertia: float = field(default=0.9, metadata={"min": 0.0, "lt": 1.0})
        temperature_tau: float = field(default=1.0, metadata={"gt": 0.0})
        min_weight: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
        group: str = field(default="question", metadata={"choices": ("question", "all")})
        batch_normalise: bool = False
        log_every: int | None = field(default=None, metadata={"min": 1})
        probe: bool = True
        calibration: str = field(default="inertia", metadata={"choices": CALIBRATIONS})
        metanet_holdout: float = field(default=0.1, metadata={"gt": 0.0, "lt": 1.0})
        metanet_hidden: int = field(default=16, metadata={"min": 1})
        metanet_lr: float = field(default=0.5, metadata={"gt": 0.0})

        def check(self) -> None:
            """At least one perspective (each a prompt: its instruction, or null for the task's own)."""
            if not self.perspectives:
                raise UserError("perspectives must be a non-empty list of instructions (null = the task's own prompt)")

        @property
        def instructions(self) -> list[str | None]:
            """The perspectives as prompts: an empty or blank instruction is the task's own prompt (None)."""
            return [x if (x is not None and x.strip()) else None for x in self.perspectives]

    def check(self, ctx):
        """Refuse before the baseline what the parameters alone cannot tell (the launcher)."""
        if ctx.params.calibration == "metanet" and ctx.config.training.launcher != "inprocess":
            raise UserError(
                "mind: calibration metanet trains in one process (training.launcher: inprocess); "
                f"got training.launcher: {ctx.config.training.launcher}"
            )

    def generate(self, ctx):
        return generate_perspectives(ctx)

    def planned_generations(self, params, teachers):
        """Every teacher × perspective prompt, with ``samples`` / ``temperature`` (a perspective is
        its instruction text; none: the task's own prompt)."""
        return [
            PlannedGeneration(t, params.samples, params.temperature, instr) for t in teachers for instr in params.instructions
        ]

    def train(self, ctx, data):
        return train_weighted(ctx, data)


@hookimpl
def register_strategies(register):
    register(Mind())


def perspective_label(i: int, text: str | None) -> str:
    return f"p{i}: task prompt" if text is None else f"p{i}: {text}"


# -- the weighting ------------------------------------------------------------------------------
class MindWeights:
    """Per-rationale inertia-filtered loss (EMA) and the capability-aware weights derived from it.

    ``groups[i]`` is the group key of example ``i`` (its question, or one key for all). Pure
    Python: ``update`` with observed per-example losses, ``weights_for``/``weights`` to read.
    """

    def __init__(self, groups, *, inertia: float = 0.9, tau: float = 1.0, min_weight: float = 0.1):
        if not 0.0 <= inertia < 1.0:
            raise ValueError("inertia must be in [0, 1)")
        if tau <= 0:
            raise ValueError("tau must be > 0")
        if not 0.0 <= min_weight <= 1.0:
            raise ValueError("min_weight must be in [0, 1]")
        self.groups = list(groups)
        self.inertia, self.tau, self.min_weight = float(inertia), float(tau), float(min_weight)
        self.ema: list[float | None] = [None] * len(self.groups)
        self.observations = [0] * len(self.groups)
        self.members: dict = defaultdict(list)
        for i, g in enumerate(self.groups):
            self.members[g].append(i)
        self._w = [1.0] * len(self.groups)
        self._dirty: set = set()
        self.probe: dict | None = None  # the cost of the probe pass that seeded the EMAs (None: no probe)
        self.learned = None  # a _mindnet.MetaCalibration: the weights come from it (calibration: metanet)

    def __len__(self) -> int:
        return len(self.groups)

    def update(self, indices, losses) -> None:
        """Fold observed losses into the EMAs (``EMA <- beta*EMA + (1-beta)*loss``; first = loss)."""
        b = self.inertia
        for i, loss in zip(indices, losses):
            i, loss = int(i), float(loss)
            if not math.isfinite(loss):
                continue
            prev = self.ema[i]
            self.ema[i] = loss if prev is None else b * prev + (1.0 - b) * loss
            self.observations[i] += 1
            self._dirty.add(self.groups[i])

    def _recompute(self, g) -> None:
        idx = self.members[g]
        known = [self.ema[i] for i in idx if self.ema[i] is not None]
        if len(idx) == 1 or not known:
            for i in idx:
                self._w[i] = 1.0
            return
        neutral = sum(known) / len(known)
        e = [self.ema[i] if self.ema[i] is not None else neutral for i in idx]
        if max(e) == min(e):  # equal EMAs: exactly uniform
            for i in idx:
                self._w[i] = 1.0
            return
        z = [-x / self.tau for x in e]
        top = max(z)
        ex = [math.exp(v - top) for v in z]
        s = sum(ex)
        n, m = len(idx), self.min_weight
        for i, v in zip(idx, ex):
            self._w[i] = m + (1.0 - m) * n * v / s

    def _refresh(self) -> None:
        for g in self._dirty:
            self._recompute(g)
        self._dirty.clear()

    def weights_for(self, indices) -> list[float]:
        if self.learned is not None:
            import torch

            with torch.no_grad():
                return self.learned.weights_tensor([int(i) for i in indices]).tolist()
        self._refresh()
        return [self._w[int(i)] for i in indices]

    def weights(self) -> list[float]:
        if self.learned is not None:
            return self.learned.weights()
        self._refresh()
        return list(self._w)

    def checkpoint_state(self) -> dict:
        """The EMAs and observation counts: saved with training checkpoints (a resumed training
        goes on with them) and copied back from launched worker processes."""
        return {"ema": list(self.ema), "observations": list(self.observations), "probe": self.probe}

    def load_checkpoint_state(self, state: dict) -> None:
        self.ema = [None if x is None else float(x) for x in state["ema"]]
        self.observations = [int(x) for x in state["observations"]]
        self.probe = state.get("probe")
        self._dirty = set(self.members)

    def snapshot(self, step: int, epoch: float | None = None) -> dict:
        w = self.weights()
        return {
            "step": int(step),
            "epoch": None if epoch is None else round(float(epoch), 4),
            "weight": [round(x, 6) for x in w],
            "ema": [None if x is None else round(x, 6) for x in self.ema],
        }


@functools.cache
def trainer_class():
    """A ``Trainer`` subclass of ``weighted_trainer_class()`` driven by a :class:`MindWeights`
    (one class per process, importable as ``cotgap_plugins.mind:MindTrainer``, so that it also
    runs in the worker processes of ``training.launcher: accelerate``).

    Constructor keywords (via ``trainer_kwargs``): ``mind_weights`` (required) and
    ``batch_normalise`` (bool). ``example_weights`` (the base trainer's extension point) looks up
    the current weights by ``example_index`` for every batch, before the batch's losses are folded
    in; ``on_example_losses`` then feeds the EMAs with the losses of the whole global batch (every
    process keeps the same EMAs). The loss average (token or example) is the core's.
    """
    import torch

    from cotgap import gather_example_losses, weighted_trainer_class

    base = weighted_trainer_class()

    class MindTrainer(base):
        def __init__(
            self, *args, mind_weights: MindWeights, batch_normalise: bool = False, probe: bool = False, calibration=None, **kwargs
        ):
            super().__init__(*args, **kwargs)
            self.mind = mind_weights
            self.batch_normalise = batch_normalise
            self.probe = probe
            self.calibration = calibration  # a _mindnet.MetaCalibration (its weights are mind_weights')
            if probe:  # first of all callbacks: the weight log's step-0 snapshot then shows the seeded weights
                self.callback_handler.callbacks.insert(0, _probe_class()(self))

        def on_example_losses(self, index, losses) -> None:
            if index is None:
                return
            self.mind.update(index.tolist(), losses.detach().float().cpu().tolist())

        def compute_loss(self, model, inputs, *args, **kwargs):
            if self.calibration is not None and model.training:
                # the learned calibration's meta step: before this batch's forward pass (it moves the
                # parameters to take its finite difference) and before its weights are read
                self.calibration.step(self, model, inputs, inputs["example_index"].tolist())
            return super().compute_loss(model, inputs, *args, **kwargs)

        def example_weights(self, index, weight, losses):
            # MIND's weights replace any static weight column
            w = torch.tensor(self.mind.weights_for(index.tolist()), dtype=torch.float32)
            if self.batch_normalise:  # mean 1 over the global batch: only the split inside it changes
                everyone, _ = gather_example_losses(self, index, losses)
                total = self.mind.weights_for(everyone.tolist())
                w = w * (len(total) / max(sum(total), 1e-8))
            return w

    MindTrainer.__module__, MindTrainer.__qualname__ = __name__, "MindTrainer"
    return MindTrainer


def probe_losses(trainer, model) -> dict:
    """The probe pass: every training rationale's mean token loss under the untrained student (one
    forward pass each, no gradient, in eval mode), folded into the inertia filter as its first
    observation, so that the weights of the very first update already reflect what the student
    can absorb. Every process probes the whole data set (the same EMAs everywhere; equal forward
    counts, as sharded models need). Returns the pass's cost: examples, tokens, seconds."""
    import time

    import torch

    from cotgap import per_example_loss

    t0, ds = time.time(), trainer.train_dataset
    size = max(1, int(trainer.args.per_device_train_batch_size))
    device = trainer.args.device
    was_training, tokens = model.training, 0
    model.eval()
    try:
        with torch.no_grad(), trainer.compute_loss_context_manager():
            for start in range(0, len(ds), size):
                batch = trainer.data_collator([ds[i] for i in range(start, min(start + size, len(ds)))])
                labels = batch["labels"].to(device)
                logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
                losses = per_example_loss(logits, labels)
                tokens += int((labels[:, 1:] != -100).sum())
                trainer.mind.update(batch["example_index"].tolist(), losses.float().cpu().tolist())
    finally:
        model.train(was_training)
    return {
        "examples": len(ds),
        "tokens": tokens,
        "forward_batches": math.ceil(len(ds) / size),
        "seconds": round(time.time() - t0, 2),
    }


@functools.cache
def _probe_class():
    from transformers import TrainerCallback

    class MindProbe(TrainerCallback):
        """Runs :func:`probe_losses` when training begins from scratch (a resumed training has its
        EMAs back from the checkpoint), on the model as the Trainer prepared it."""

        def __init__(self, trainer):
            self.trainer = trainer

        def on_train_begin(self, args, state, control, model=None, **kw):
            mind = self.trainer.mind
            if state.global_step == 0 and not any(mind.observations):
                mind.probe = probe_losses(self.trainer, model if model is not None else self.trainer.model)

    MindProbe.__module__, MindProbe.__qualname__ = __name__, "MindProbe"
    return MindProbe


@functools.cache
def _log_class():
    from transformers import TrainerCallback

    class MindLog(TrainerCallback):
        """Appends weight/EMA snapshots of ``weights`` to ``path`` (jsonl), every ``every`` optimizer
        steps (None: about 100 over training) and at the first and last; main process only. A
        resumed training keeps the snapshots up to the update it resumes from."""

        def __init__(self, weights: MindWeights, path: Path, every: int | None):
            self.weights, self.path, self.every = weights, Path(path), every
            self.last = None

        def _write(self, state):
            if self.last == state.global_step or not state.is_world_process_zero:
                return
            self.last = state.global_step
            with open(self.path, "a") as f:
                f.write(json.dumps(self.weights.snapshot(state.global_step, state.epoch)) + "\n")

        def on_train_begin(self, args, state, control, **kw):
            if self.every is None:
                self.every = max(1, int(state.max_steps or 1) // 100)
            if state.is_world_process_zero:
                kept = [
                    line
                    for line in (self.path.read_text().splitlines() if self.path.exists() else [])
                    if state.global_step and line.strip() and json.loads(line)["step"] < state.global_step
                ]
                self.path.write_text("".join(line + "\n" for line in kept))
            self._write(state)

        def on_step_end(self, args, state, control, **kw):
            if state.global_step % self.every == 0:
                self._write(state)

        def on_train_end(self, args, state, control, **kw):
            self._write(state)

    MindLog.__module__, MindLog.__qualname__ = __name__, "MindLog"
    return MindLog


def __getattr__(name: str):
    """``MindTrainer`` and ``MindLog`` by name (built on first use: transformers loads only then)."""
    if name == "MindTrainer":
        return trainer_class()
    if name == "MindLog":
        return _log_class()
    if name == "MindProbe":
        return _probe_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def logger_callback(weights: MindWeights, path: Path, every: int | None):
    """A ``TrainerCallback`` appending weight/EMA snapshots to ``path`` (jsonl)."""
    return _log_class()(weights, path, every)


def plot_weights(log_path: Path, examples: list[dict], out: Path, max_lines: int = 300) -> Path:
    """Weight and EMA evolution: thin line per rationale, thick mean per source x perspective."""
    from matplotlib.figure import Figure

    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    fig = Figure(figsize=(9, 6.5))
    ax_w, ax_e = fig.subplots(2, 1, sharex=True)
    steps = [r["step"] for r in rows]
    n = len(examples)
    stride = max(1, math.ceil(n / max_lines))
    for i in range(0, n, stride):
        ax_w.plot(steps, [r["weight"][i] for r in rows], color="#bbbbbb", lw=0.6, alpha=0.6)
    keys = sorted({(e["source"], e["perspective"]) for e in examples})
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for k, (src, persp) in enumerate(keys):
        idx = [e["index"] for e in examples if (e["source"], e["perspective"]) == (src, persp)]
        label = f"{str(src).split('/')[-1]} · p{persp}"
        c = colours[k % len(colours)]
        ax_w.plot(steps, [sum(r["weight"][i] for i in idx) / len(idx) for r in rows], color=c, lw=2, label=label)
        ema_means = []
        for r in rows:
            vals = [r["ema"][i] for i in idx if r["ema"][i] is not None]
            ema_means.append(sum(vals) / len(vals) if vals else float("nan"))
        ax_e.plot(steps, ema_means, color=c, lw=2, label=label)
    ax_w.axhline(1.0, color="black", lw=0.8, ls="--")
    ax_w.set_ylabel("weight")
    ax_w.set_title("MIND: per-rationale weights (grey) and mean per source · perspective")
    ax_w.legend(fontsize=7, loc="best")
    ax_e.set_ylabel("inertia-filtered loss (EMA)")
    ax_e.set_xlabel("optimizer step")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=110)
    return out


def weight_summary(weights: list[float], examples: list[dict]) -> dict:
    """Min, max and spread of the weights, and their mean, min and max per source · perspective
    (the mechanism in numbers: equal weights mean MIND trained as plain SFT)."""
    by = defaultdict(list)
    for e, w in zip(examples, weights):
        by[f"{e['source']} · p{e['perspective']}"].append(w)
    return {
        "min": min(weights, default=None),
        "max": max(weights, default=None),
        "spread": (max(weights) - min(weights)) if weights else None,
        "differ_from_1": sum(abs(w - 1.0) > 1e-6 for w in weights),
        "by_source_perspective": {
            k: {"mean": round(sum(v) / len(v), 4), "min": round(min(v), 4), "max": round(max(v), 4), "n": len(v)}
            for k, v in sorted(by.items())
        },
    }


# -- the strategy's steps --------------------------------------------------------------------------
def _source_names(ctx) -> list[str]:
    names, seen = [], defaultdict(int)
    for t in ctx.teachers:
        seen[t.spec] += 1
        names.append(t.spec if seen[t.spec] == 1 else f"{t.spec}#{seen[t.spec]}")
    return names


def _description(ctx, instruction: str | None) -> str | None:
    if instruction is None:
        return None
    base = (ctx.train_task().config.description or "").rstrip()
    return (f"{base}\n{instruction.strip()}" if base else instruction.strip()) + "\n\n"


def generate_perspectives(ctx) -> dict:
    p = ctx.params
    ctx.record("mind.params", {**dict(p), "perspectives": p.instructions})
    out, stats = {}, {}
    for name, t in zip(_source_names(ctx), ctx.teachers):
        recs = []
        for k, instr in enumerate(p.instructions):
            got = ctx.generate_rationales(
                t, source=name, samples=p.samples, temperature=p.temperature, description=_description(ctx, instr)
            )
            for r in got:
                r = dict(r)
                r["sample_in_perspective"] = r.get("sample", 0)
                r["sample"] = k * p.samples + r.get("sample", 0)
                r["perspective"] = k
                r["perspective_text"] = instr
                recs.append(r)
            stats.setdefault(name, {})[perspective_label(k, instr)] = {
                "generated": len(got),
                "correct": sum(bool(r["correct"]) for r in got),
            }
        out[name] = recs
    ctx.record("mind.generated", stats)
    return out


def hold_out(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(trained, held out): a seeded ``fraction`` of the questions (at least one, never all) is held
    out with all its rationales — the learned calibration's feedback comes from questions the
    student does not train on."""
    import random

    questions = sorted({r["doc_id"] for r in records})
    if len(questions) < 2:
        raise UserError("mind: calibration metanet needs kept rationales of at least 2 questions (one is held out)")
    k = min(len(questions) - 1, max(1, round(fraction * len(questions))))
    held = set(random.Random(seed).sample(questions, k))
    return [r for r in records if r["doc_id"] not in held], [r for r in records if r["doc_id"] in held]


def learned_calibration(ctx, p: Mind.Params, weights: MindWeights, examples: list[dict], held: list[dict]):
    """The MetaNet (``calibration: metanet``, :mod:`cotgap_plugins._mindnet`) on the held-out rows,
    tokenised as the student's training rows are."""
    from cotgap_plugins._mindnet import MetaCalibration
    from transformers import AutoTokenizer

    from cotgap import tokenize

    tokenizer = AutoTokenizer.from_pretrained(ctx.student.path(log=ctx.log))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows, _ = tokenize(tokenizer, ctx.training_examples(held, tokenizer), ctx.training_config())
    keys = sorted({(str(e["source"]), e["perspective"]) for e in examples})
    cats = [keys.index((str(e["source"]), e["perspective"])) for e in examples]
    return MetaCalibration(weights, cats, len(keys), rows, hidden=p.metanet_hidden, lr=p.metanet_lr, seed=ctx.config.seed)


def train_weighted(ctx, data: dict):
    p = ctx.params
    records = [r for recs in data.values() for r in recs]
    held: list[dict] = []
    if p.calibration == "metanet":
        records, held = hold_out(records, p.metanet_holdout, ctx.config.seed)
    examples = [
        {
            "index": i,
            "doc_id": r["doc_id"],
            "source": r.get("source"),
            "perspective": r.get("perspective", 0),
            "sample": r.get("sample", 0),
        }
        for i, r in enumerate(records)
    ]
    per_persp = defaultdict(int)
    for r in records:
        k = r.get("perspective", 0)
        per_persp[perspective_label(k, p.instructions[k] if k < len(p.instructions) else None)] += 1
    ctx.record("mind.examples_per_source", {name: len(recs) for name, recs in data.items()})
    ctx.record("mind.examples_per_perspective", dict(per_persp))

    groups = [r["doc_id"] if p.group == "question" else 0 for r in records]
    weights = MindWeights(groups, inertia=p.inertia, tau=p.temperature_tau, min_weight=p.min_weight)
    learned = learned_calibration(ctx, p, weights, examples, held) if held else None
    weights.learned = learned
    work = ctx.workdir(NAME)
    with open(work / "examples.jsonl", "w") as f:
        for e in examples:
            f.write(json.dumps(e) + "\n")
    log_path = work / "weights.jsonl"
    result = ctx.train_student(
        records,
        trainer_cls=trainer_class(),
        trainer_kwargs={
            "mind_weights": weights,
            "batch_normalise": p.batch_normalise,
            "probe": p.probe,
            **({"calibration": learned} if learned is not None else {}),
        },
        callbacks=[logger_callback(weights, log_path, p.log_every)],
    )
    png = plot_weights(log_path, examples, work / "weights.png") if records else None
    if weights.probe:
        ctx.log(
            f"  mind: probe pass over {weights.probe['examples']} rationales ({weights.probe['tokens']} tokens) "
            f"seeded the inertia filter in {weights.probe['seconds']} s"
        )
    snaps = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] if records else []
    ctx.record(
        "mind.training",
        {
            "updates": result.updates,
            "examples": result.examples,
            "probe": weights.probe,
            "weights_first_update": weight_summary(snaps[0]["weight"], examples) if snaps else None,
            "weights_final": weight_summary(weights.weights(), examples),
            "observed_examples": sum(1 for x in weights.ema if x is not None),
            "calibration": p.calibration,
            "metanet": None
            if learned is None
            else {
                "held_out_questions": len({r["doc_id"] for r in held}),
                "held_out_rationales": len(held),
                "meta_steps": learned.steps,
                "meta_loss_first": (learned.history or [{}])[0].get("meta_loss"),
                "meta_loss_last": (learned.history or [{}])[-1].get("meta_loss"),
            },
            "weights_log": str(log_path.relative_to(ctx.run.path)),
            "weights_plot": str(png.relative_to(ctx.run.path)) if png else None,
        },
    )
    return result
