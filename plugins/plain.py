"""plain — standard CoT distillation (the baseline strategy of Kajitsuka et al., "Revisiting the
Capacity Gap in CoT Distillation from a Practical Perspective").

- generate: every teacher writes one greedy CoT rationale per *train* question with the task's
  few-shot CoT prompt (lm-eval builds the prompt; same prompt the evaluation uses).
- filter: keep the rationales whose extracted answer matches the gold answer — the ``correct``
  flag set by the task's own answer extraction, i.e. exactly what the evaluation would score.
  Each teacher's data is every example *that teacher* got right (no cross-teacher filtering).
- train: SFT of the student on question -> rationale, all teachers' kept rationales pooled.

This is ``cotgap.Strategy``'s own behaviour, so the class only names it. Parameters
(``strategy_params``, declared by ``Strategy.Params``): ``samples`` (1) rationales per question and
teacher, >1 sampled at ``temperature`` (0.0: greedy, as in the paper).
"""

from cotgap import Strategy, hookimpl


class Plain(Strategy):
    name = "plain"
    description = "CoT distillation from each teacher's correct rationales (SFT)"


@hookimpl
def register_strategies(register):
    register(Plain())
