"""Few-shot CoT exemplars for the synthetic tasks, in the official BBH exemplar style.

lm-eval's ``fewshot_config.samples`` takes a callable returning exemplar docs; for CoT the
exemplar's ``target`` is the whole worked rationale (as in lm-eval's ``bbh_cot_fewshot``).
"""

from __future__ import annotations

from functools import cache

from cotgap.protocol.constants import FEWSHOT_K, FEWSHOT_SEED


@cache
def _exemplars(name: str, verbosity: str = "short") -> tuple:
    from cotgap.tasks import synthetic

    task = synthetic.get(name)
    return tuple(
        {"input": ex["input"], "target": task.rationale(ex, verbosity=verbosity)}
        for ex in task.fewshot_examples(FEWSHOT_K, seed=FEWSHOT_SEED)
    )


def synthetic_fewshot(name: str) -> list[dict]:
    return [dict(e) for e in _exemplars(name)]
