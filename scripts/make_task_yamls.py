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


# Generation budget per task where the template's 384 tokens is far more than a correct CoT needs.
# Measured: Qwen2.5-Coder-1.5B-Instruct's object-counting rationales are 47-124 tokens, while a
# student that loops runs to the cap; 256 keeps 2x headroom and cuts evaluation time by a third.
MAX_GEN_TOKS = {"synthetic_object_counting": 256}


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
        if name in MAX_GEN_TOKS:  # lm-eval replaces the whole mapping, so repeat the template's keys
            body += (
                "generation_kwargs:\n"
                f"  max_gen_toks: {MAX_GEN_TOKS[name]}\n"
                '  until: ["\\nQ:", "\\n\\n\\n"]\n'
                "  do_sample: false\n"
                "  temperature: 0.0\n"
            )
        (HERE / f"{name}.yaml").write_text(body)
        print("wrote", name)


if __name__ == "__main__":
    main()
