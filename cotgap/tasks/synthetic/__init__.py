"""Seeded procedural generators of BIG-Bench-Hard-style tasks, with scripted rationales.

BIG-bench produced several of the tasks that ended up in BIG-Bench Hard (BBH) with small
procedural generators.  This package re-implements such generators in the same spirit,
from scratch and with our own vocabularies, so that arbitrarily many fresh examples can be
drawn in BBH's exact ``{"input", "target"}`` text format, together with a scripted
step-by-step rationale in the style of BBH's 3-shot chain-of-thought exemplars.  No BBH
text is contained here.

Tasks (registered as ``synthetic_<bbh name>``) and their difficulty knobs (defaults):

=====================================================  ==============================================
``synthetic_boolean_expressions``                      ``min_operands=2, max_operands=4, max_nots=3``
``synthetic_multistep_arithmetic_two``                 ``n_groups=2, group_size=4, max_abs=9``
``synthetic_object_counting``                          ``min_items=2, max_items=10, max_quantity=5``
``synthetic_word_sorting``                             ``min_words=2, max_words=20``
``synthetic_dyck_languages``                           ``min_length=2, max_length=30, max_depth=8,
                                                       max_close=3`` (``length=L`` is accepted by
                                                       ``generate`` as min_length=max_length=L)
``synthetic_tracking_shuffled_objects_three_objects``  ``n_objects=3, n_swaps=3``
``synthetic_tracking_shuffled_objects_five_objects``   ``n_objects=5, n_swaps=5``
``synthetic_tracking_shuffled_objects_seven_objects``  ``n_objects=7, n_swaps=7``
``synthetic_web_of_lies``                              ``n_people=5``
``synthetic_navigate``                                 ``min_steps=3, max_steps=8, max_distance=10,
                                                       face_forward_prob=0.5``
=====================================================  ==============================================

Each task offers ``generate(n, seed, **knobs)`` (distinct, deterministic examples),
``rationale(example, verbosity="short"|"long", wrong=False)`` (reasoning that ends with
``So the answer is <answer>.``) and ``fewshot_prompt(k, seed, verbosity)``.  Few-shot
exemplars are drawn from a hash-reserved 1/16 of the input space that ``generate()``
never emits, so exemplars and generated examples can never coincide (see ``base``).

Example::

    from cotgap.tasks.synthetic import get
    task = get("synthetic_navigate")
    ex = task.generate(5, seed=0)[0]
    print(ex["input"], ex["target"], task.rationale(ex))
"""

from __future__ import annotations

from .base import SyntheticTask, is_reserved
from .boolean_expressions import BooleanExpressions
from .dyck_languages import DyckLanguages
from .multistep_arithmetic import MultistepArithmetic
from .navigate import Navigate
from .object_counting import ObjectCounting
from .tracking_shuffled_objects import TrackingShuffledObjects
from .web_of_lies import WebOfLies
from .word_sorting import WordSorting

__all__ = ["TASKS", "SyntheticTask", "get", "is_reserved"]

TASKS: dict[str, SyntheticTask] = {
    task.name: task
    for task in (
        BooleanExpressions(),
        MultistepArithmetic(),
        ObjectCounting(),
        WordSorting(),
        DyckLanguages(),
        TrackingShuffledObjects(3),
        TrackingShuffledObjects(5),
        TrackingShuffledObjects(7),
        WebOfLies(),
        Navigate(),
    )
}


def get(name: str) -> SyntheticTask:
    """The registered task called ``name`` (e.g. ``"synthetic_navigate"``)."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown synthetic task {name!r}; known tasks: {sorted(TASKS)}") from None
