"""cotgap: chain-of-thought distillation under the practical protocol (Kajitsuka et al.)."""

__version__ = "0.1.0"
