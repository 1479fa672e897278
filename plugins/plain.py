"""plain — standard CoT distillation (the baseline strategy of Kajitsuka et al., "Revisiting the
Capacity Gap in CoT Distillation from a Practical Perspective").

- generate: every teacher writes one greedy CoT rationale per *train* question with the task's
  few-shot CoT prompt (lm-eval builds the prompt; same prompt the evaluation uses).
- filter: keep the rationales whose extracted answer matches the gold answer — the ``correct``
  flag set by the task's own answer extraction, i.e. exactly what the evaluation would score.
  Each teacher's data is every example *that teacher* got right (no cross-teacher filtering).
- train: SFT of the student on question -> rationale, all teachers' kept rationales pooled.

Choices and parameters (``strategy_params``):
- ``samples`` (1): rationales per question and teacher; >1 samples at ``temperature``.
- ``temperature`` (0.0): greedy by default, as in the paper.
"""

from cotgap.hookspecs import hookimpl

NAME = "plain"
DEFAULTS = {"samples": 1, "temperature": 0.0}


@hookimpl
def register_strategies(register):
    register(NAME, description="CoT distillation from each teacher's correct rationales (SFT)", defaults=DEFAULTS)


@hookimpl
def generate(strategy, ctx):
    if strategy != NAME:
        return None
    p = ctx.params
    return {
        t.spec: ctx.generate_rationales(t, samples=int(p["samples"]), temperature=float(p["temperature"]))
        for t in ctx.teachers
    }


@hookimpl
def filter(strategy, ctx, source, records):
    if strategy != NAME:
        return None
    return [r for r in records if r["correct"]]


@hookimpl
def train(strategy, ctx, data):
    if strategy != NAME:
        return None
    records = [r for recs in data.values() for r in recs]
    return ctx.train_student(records)
