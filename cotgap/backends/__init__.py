"""Backends behind small interfaces: generation (vLLM, else transformers), evaluation (lm-eval),
training (transformers Trainer + peft)."""
