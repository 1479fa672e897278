"""The protocol's numbers and names, in one place (Kajitsuka et al., "Revisiting the Capacity Gap
in CoT Distillation from a Practical Perspective"). Every module that needs one imports it from
here, so a default cannot drift between the config, the CLI and the reports."""

from __future__ import annotations

# Splits: train:test 3:2, shuffled with a fixed seed.
SPLIT_SEED = 1234
TRAIN_FRACTION = 0.6
# Synthetic tasks: examples generated per task (3:2 -> 30 train / 20 test).
SYNTHETIC_N = 50
# ... and at most this many (a documented ceiling: 100k examples take ~2 s and ~50 MB to generate;
# far above any benchmark's size, far below what exhausts a machine's memory).
SYNTHETIC_N_MAX = 100_000
# Few-shot CoT prompts: exemplars per prompt and the seed that picks them.
FEWSHOT_K = 3
FEWSHOT_SEED = 1234

# Task selection: worth distilling when mean teacher few-shot accuracy exceeds the students'
# by more than this many points.
SELECTION_THRESHOLD = 30.0
# Teacher advice: where distilled results tie within noise, prefer the teacher yielding at least
# this many times more correct training questions (each question counted once).
KEPT_RATIO = 1.3

# Verdicts: McNemar's exact test on the paired test items decides helped / hurt at this level
# (two-sided); a cross-run report applies Holm's correction across its cells at the same level.
ALPHA = 0.05
# Noise margins of the cross-run report: this many standard errors of a difference of two
# accuracies at the test-set size (1.96: a two-sided 95 % band).
NOISE_Z = 1.96
# ... and, where the test-set size is unknown and no margin is given, this many points.
FALLBACK_NOISE_MARGIN = 1.0
# Teacher capacity: parameter counts (or mean CoT lengths) within this factor of each other are the
# same capacity on that measure (a 1.5B and a 1.78B model are one size class; 0.5B and 1.5B are not).
CAPACITY_RATIO = 1.25

# The strategy every other one is compared against, and the default of `cotgap run`.
REFERENCE_STRATEGY = "plain"

# Named ablations of the protocol; only these may break a rule, and their outputs are labelled.
CROSS_TEACHER_FILTER = "cross-teacher-filter"
ABLATIONS = (CROSS_TEACHER_FILTER,)

# Seed for sampling when a run names none (the split keeps SPLIT_SEED).
RUN_SEED = 1234
# Seed for training when a run names none: the paper states none, so LLaMA-Factory's default
# (42) trained its students.
TRAIN_SEED = 42

# Generation budgets: a source whose rationales stop at the generation budget without a correct
# answer more often than this share is flagged (its long CoT is being cut; raise its budget).
BUDGET_HIT_SHARE = 0.05
