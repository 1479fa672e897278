"""Functions the synthetic task YAMLs reference with ``!function utils.<name>``."""

from cotgap.tasks.datasets import lm_eval_dataset as load  # noqa: F401
from cotgap.tasks.extraction import lm_eval_bbh_stops, robust_filter  # noqa: F401
from cotgap.tasks.fewshot import synthetic_fewshot
from cotgap.tasks.synthetic import TASKS

# One zero-argument exemplar function per task, as lm-eval's fewshot_config.samples expects.
for _name in TASKS:
    globals()[f"fewshot_{_name}"] = (lambda n: lambda: synthetic_fewshot(n))(_name)
