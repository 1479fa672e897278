"""onpolicy — on-policy distillation (Agarwal, Vieillard, Zhou, Stanczyk, Ramos, Geist, Bachem,
"On-Policy Distillation of Language Models: Learning from Self-Generated Mistakes", ICLR 2024,
arXiv:2306.13649), on TRL's ``DistillationTrainer``.

The student learns from its *own* samples: for each training question it writes a completion
(sampled at ``sample_temperature``), the teacher scores every token of it (a forward pass, no
teacher generation), and the student is moved towards the teacher's next-token distribution at
each of those positions by a generalized Jensen-Shannon divergence. The paper's point: a student
trained only on teacher text (SFT, "plain") is never corrected on the prefixes *it* produces at
test time (train/inference mismatch); on-policy data fixes that, and the divergence matters
(mode-seeking reverse KL or JSD suit a student of small capacity better than forward KL).

Stages:

- generate / filter: the teacher's rationales and the base filter (the questions it solves), as
  ``plain`` — only their *questions* are used (``prompts``), so the two strategies train on the
  same questions; the teacher's text is never trained on.
- train: ``trl.DistillationTrainer`` (subclassed only to count compute), LoRA/full and every
  optimizer setting from the run's ``training`` section, so ``training.max_steps`` gives equal
  updates with ``plain``. The student's samples are training inputs scored by the teacher, never
  rationales for SFT.

The teacher must be one model (local, hub or zoo; not scripted, not an API) larger than the
student (the core's rule) and with the student's vocabulary: otherwise the run is refused before
any work, in one line naming both tokenizers. No cross-tokenizer variant is offered.

Parameters (``strategy_params``), with defaults:

- ``divergence`` ("reverse_kl"; "forward_kl", "jsd"): TRL's ``beta`` 1.0 / 0.0 / 0.5.
  Reverse KL is TRL's default and the paper's recommendation for on-policy data.
- ``beta`` (null): a generalized-JSD coefficient in [0, 1] instead of a named divergence (the
  paper's JSD(β), e.g. 0.9).
- ``sample_temperature`` (1.0): the student's sampling temperature, also the loss temperature
  (TRL's default; the paper samples at 1).
- ``max_new_tokens`` (null): tokens per student sample; null = the run's
  ``generation.max_new_tokens``, else the task's ``max_gen_toks``.
- ``prompts`` ("solved"; "all"): train on the questions the teacher solved (as plain does), or
  on every train question (the teacher's answer is not needed for its distribution).
- ``teacher_dtype`` ("float32"; "bfloat16"): the frozen teacher's weights; bfloat16 halves its
  memory (a 1.5B teacher: 3.6 instead of 7.1 GB) at bf16 precision of its distribution.

Recorded: ``onpolicy.training`` (trainer, teacher, beta, updates, prompts, and the token counts),
and the train stage's compute ledger (``report.json`` -> ``compute``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cotgap_plugins import _distill

from cotgap import Strategy, hookimpl

NAME = "onpolicy"


class OnPolicy(Strategy):
    name = NAME
    description = (
        "on-policy distillation: the student samples, the teacher scores every token "
        "(TRL DistillationTrainer, generalized JSD; Agarwal et al. 2024)"
    )

    @dataclass
    class Params:
        divergence: str = field(default="reverse_kl", metadata={"choices": tuple(_distill.DIVERGENCES)})
        beta: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})
        sample_temperature: float = field(default=1.0, metadata={"gt": 0.0})
        max_new_tokens: int | None = field(default=None, metadata={"min": 1})
        prompts: str = field(default="solved", metadata={"choices": ("solved", "all")})
        teacher_dtype: str = field(default="float32", metadata={"choices": _distill.TEACHER_DTYPES})

    def check(self, ctx):
        _distill.check(ctx, NAME)

    def filter(self, ctx, source, records):
        """The questions to distil on: those the teacher solved, or (``prompts: all``) every one."""
        return list(records) if ctx.params.get("prompts") == "all" else [r for r in records if r["correct"]]

    def train(self, ctx, data):
        return _distill.train(ctx, NAME, "onpolicy", data)


@hookimpl
def register_strategies(register):
    register(OnPolicy())
