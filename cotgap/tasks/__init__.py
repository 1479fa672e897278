"""Tasks: lm-eval task YAMLs (``task_configs/`` plus ``--include-path``), their datasets and splits."""
