"""Functions the math task YAMLs reference with ``!function utils.<name>``."""

from cotgap.tasks.datasets import lm_eval_dataset as load  # noqa: F401
from cotgap.tasks.math_answers import gsm8k_robust_filter, math_robust_filter, math_strict_filter  # noqa: F401
