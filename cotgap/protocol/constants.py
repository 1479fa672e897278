"""The protocol's numbers and names, in one place (Kajitsuka et al., "Revisiting the Capacity Gap
in CoT Distillation from a Practical Perspective"). Every module that needs one imports it from
here, so a default cannot drift between the config, the CLI and the reports."""

from __future__ import annotations

# Splits: train:test 3:2, shuffled with a fixed seed.
SPLIT_SEED = 1234
TRAIN_FRACTION = 0.6
# Synthetic tasks: examples generated per task (3:2 -> 30 train / 20 test).
SYNTHETIC_N = 50
# Few-shot CoT prompts: exemplars per prompt and the seed that picks them.
FEWSHOT_K = 3
FEWSHOT_SEED = 1234

# Task selection: worth distilling when mean teacher few-shot accuracy exceeds the students'
# by more than this many points.
SELECTION_THRESHOLD = 30.0
# Teacher advice: on a tie, prefer the teacher yielding at least this many times more correct
# training examples.
KEPT_RATIO = 1.3

# The strategy every other one is compared against, and the default of `cotgap run`.
REFERENCE_STRATEGY = "plain"

# Named ablations of the protocol; only these may break a rule, and their outputs are labelled.
CROSS_TEACHER_FILTER = "cross-teacher-filter"
ABLATIONS = (CROSS_TEACHER_FILTER,)

# Seed for training and sampling when a run names none (the split keeps SPLIT_SEED).
RUN_SEED = 1234
