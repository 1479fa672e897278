"""Functions the BBH task YAMLs reference with ``!function utils.<name>``."""

from cotgap.tasks.datasets import lm_eval_dataset as load  # noqa: F401
from cotgap.tasks.extraction import lm_eval_bbh_stops, robust_filter  # noqa: F401
