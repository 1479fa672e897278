"""gkd — generalized knowledge distillation (Agarwal et al., "On-Policy Distillation of Language
Models: Learning from Self-Generated Mistakes", ICLR 2024, arXiv:2306.13649), on TRL's
``trl.experimental.gkd.GKDTrainer``.

GKD unifies supervised KD, sequence-level KD and on-policy distillation: at every training step,
with probability ``lmbda`` the batch's completions are the student's own samples, otherwise the
fixed (off-policy) data — here the teacher's kept rationales, exactly what ``plain`` trains on,
or, with ``seq_kd``, completions the teacher samples afresh (sequence-level KD, Kim & Rush 2016).
Whatever the completion, the teacher scores every token and the student is moved towards its
next-token distribution under a generalized JSD (``beta``). The paper finds on-policy data
(λ = 1) usually best, and mixed data (λ = 0.5) a robust choice; λ = 0 with forward KL is
supervised KD on the teacher's text (token-level "plain" with soft targets).

Stages: generate / filter as ``plain`` (each teacher's correct rationales); train: GKD on the kept
rationales (prompt + rationale ids, the prompt cut from the left to ``training.max_length``),
every optimizer setting from the run's ``training`` section. Student samples are training inputs
scored by the teacher, never SFT rationales. The teacher must be one model larger than the student
with the same vocabulary (refused in one line naming both tokenizers otherwise, before any work);
no cross-tokenizer variant is offered. ``GKDTrainer`` is in TRL's *experimental* namespace (TRL
1.16); TRL recommends ``DistillationTrainer`` (strategy ``onpolicy``) for λ = 1.

Parameters (``strategy_params``), with defaults (TRL's ``GKDConfig`` defaults):

- ``lmbda`` (0.5): probability that a step trains on student samples (the on-policy fraction).
- ``divergence`` ("jsd"; "forward_kl", "reverse_kl") / ``beta`` (null): the generalized-JSD
  coefficient, as for ``onpolicy`` (TRL's GKD default beta is 0.5, JSD).
- ``seq_kd`` (false): off-policy steps use fresh teacher samples instead of the kept rationales.
- ``sample_temperature`` (0.9): sampling temperature of student (and teacher) samples.
- ``max_new_tokens`` (null): tokens per sample; null = the run's ``generation.max_new_tokens``,
  else the task's ``max_gen_toks``.
- ``teacher_dtype`` ("float32"; "bfloat16"): the frozen teacher's weights (as for ``onpolicy``).

Recorded: ``gkd.training`` (trainer, teacher, beta, updates, examples, token counts) and the train
stage's compute ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cotgap_plugins import _distill

from cotgap import Strategy, hookimpl

NAME = "gkd"


class GKD(Strategy):
    name = NAME
    description = (
        "GKD: a fraction lmbda of student samples, the rest the teacher's kept rationales (or "
        "sequence-level KD), all scored by the teacher (TRL GKDTrainer; Agarwal et al. 2024)"
    )

    @dataclass
    class Params:
        lmbda: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
        divergence: str = field(default="jsd", metadata={"choices": tuple(_distill.DIVERGENCES)})
        beta: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})
        seq_kd: bool = False
        sample_temperature: float = field(default=0.9, metadata={"gt": 0.0})
        max_new_tokens: int | None = field(default=None, metadata={"min": 1})
        teacher_dtype: str = field(default="float32", metadata={"choices": _distill.TEACHER_DTYPES})

    def check(self, ctx):
        _distill.check(ctx, NAME)

    def train(self, ctx, data):
        return _distill.train(ctx, NAME, "gkd", data)


@hookimpl
def register_strategies(register):
    register(GKD())
