"""Write task_configs/synthetic/*.yaml from the synthetic generators (run after adding a generator)."""

from pathlib import Path

import yaml

from cotgap.tasks import synthetic

HERE = Path(__file__).resolve().parent.parent / "task_configs" / "synthetic"
UTILS = '''"""Functions the synthetic task YAMLs reference with ``!function utils.<name>``."""

from cotgap.tasks.datasets import lm_eval_dataset as load  # noqa: F401
from cotgap.tasks.extraction import lm_eval_bbh_stops, robust_filter  # noqa: F401
from cotgap.tasks.fewshot import synthetic_fewshot
from cotgap.tasks.synthetic import TASKS

# One zero-argument exemplar function per task, as lm-eval's fewshot_config.samples expects.
for _name in TASKS:
    globals()[f"fewshot_{_name}"] = (lambda n: lambda: synthetic_fewshot(n))(_name)
'''


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    (HERE / "utils.py").write_text(UTILS)
    for name, task in sorted(synthetic.TASKS.items()):
        body = (
            f"task: {name}\n"
            "include: _synthetic_template_yaml\n"
            f"description: {yaml.safe_dump(task.description + chr(10) + chr(10), width=1000).strip()}\n"
            "fewshot_config:\n"
            "  sampler: first_n\n"
            f"  samples: !function utils.fewshot_{name}\n"
            "metadata:\n"
            "  version: 1.0\n"
            f"  cotgap_source: {name}\n"
            f"  cotgap_answer_type: {task.answer_type}\n"
        )
        (HERE / f"{name}.yaml").write_text(body)
        print("wrote", name)


if __name__ == "__main__":
    main()
