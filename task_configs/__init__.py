"""cotgap's built-in lm-eval task YAMLs (this folder is passed to lm-eval's TaskManager)."""
