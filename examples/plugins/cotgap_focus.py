"""focus: plain SFT with each rationale's loss weighted by how hard it still is for the student
(its loss / its batch's mean loss, to ``power``), written from docs/plugins.md ("Changing the loss").
The weight function is module-level, so it also runs under the accelerate launcher."""

from dataclasses import dataclass, field
from functools import partial

from cotgap import Strategy


def harder_first(index, weight, losses, power=1.0):
    """Per-example loss multipliers: each example's loss relative to its batch's mean, to ``power``."""
    rel = losses / losses.mean().clamp(min=1e-8)
    return rel.detach() ** power


class Focus(Strategy):
    name = "focus"
    description = "plain SFT with each rationale's loss weighted by how hard it still is"

    @dataclass
    class Params:
        power: float = field(default=1.0, metadata={"min": 0.0})

    def train(self, ctx, data):
        records = [r for recs in data.values() for r in recs]
        return ctx.train_student(records, trainer_kwargs={"weight_fn": partial(harder_first, power=ctx.params.power)})
