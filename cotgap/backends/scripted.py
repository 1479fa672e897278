"""The ``scripted`` reference teacher for synthetic tasks: an lm-eval ``LM`` that writes a correct
(or, at a chosen rate, deliberately wrong) step-by-step rationale from the generator's solver.

Spec: ``scripted[:short|long][:ERROR_RATE]`` — e.g. ``scripted:long:0.2`` writes long CoT and
gets 20% of questions wrong. Teacher length and strength thus become controlled dials for
capacity-gap experiments. It goes through the same lm-eval prompt and answer extraction as any
model. It is not a language model: the student-size rule does not apply and reports mark it.
"""

from __future__ import annotations

import random
import re

from lm_eval.api.model import LM

SPEC = re.compile(r"^scripted(?::(short|long))?(?::([0-9]*\.?[0-9]+))?$")


def parse(spec: str) -> tuple[str, float] | None:
    m = SPEC.match(spec)
    if not m:
        return None
    return (m.group(1) or "short"), float(m.group(2) or 0.0)


class ScriptedLM(LM):
    def __init__(self, spec: str, seed: int = 0):
        super().__init__()
        parsed = parse(spec)
        if parsed is None:
            raise ValueError(f"bad scripted teacher spec {spec!r}")
        self.verbosity, self.error_rate = parsed
        self.seed = seed
        self.tokenizer = None  # no chat template: plain prompt

    @property
    def tokenizer_name(self) -> str:
        return f"scripted-{self.verbosity}-{self.error_rate}"

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        from cotgap.errors import UserError
        from cotgap.tasks import synthetic

        out = []
        for req in requests:
            source = (req.task_name or "").removesuffix("_train")
            try:
                task = synthetic.get(source)
            except KeyError:
                raise UserError(f"the scripted teacher only knows synthetic tasks, not {source!r}") from None
            rng = random.Random(f"{self.seed}:{self.verbosity}:{self.error_rate}:{req.doc['input']}")
            wrong = rng.random() < self.error_rate
            out.append(
                task.rationale({"input": req.doc["input"], "target": req.doc["target"]}, verbosity=self.verbosity, wrong=wrong)
            )
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError
