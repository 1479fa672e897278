"""cotgap: chain-of-thought distillation under the practical protocol (Kajitsuka et al.).

The public API for plugins is what this module exports; the built-in strategies use nothing else.
Names that need torch (``TrainResult``, ``RunContext``) load on first use, so that importing
cotgap does not import torch before the CLI has set its threads.
"""

from cotgap.errors import PluginError, ProtocolError, UserError
from cotgap.hookspecs import hookimpl
from cotgap.strategy import PlannedGeneration, Strategy

__version__ = "0.1.0"
__all__ = [
    "CAPACITY_RATIO",
    "PlannedGeneration",
    "PluginError",
    "ProtocolError",
    "Record",
    "RunContext",
    "Strategy",
    "TrainConfig",
    "TrainResult",
    "UserError",
    "gather_example_losses",
    "hookimpl",
    "human_size",
    "per_example_loss",
    "resolve_model",
    "tokenize",
    "weighted_mean",
    "weighted_trainer_class",
]

#: public names that load on first use, and the module each comes from
_LAZY = {
    "TrainResult": "cotgap.backends.train_result",
    "TrainConfig": "cotgap.training_config",
    "per_example_loss": "cotgap.backends.training",
    "weighted_trainer_class": "cotgap.backends.training",
    "gather_example_losses": "cotgap.backends.training",
    "weighted_mean": "cotgap.backends.training",
    "tokenize": "cotgap.backends.training",
    "RunContext": "cotgap.pipeline.context",
    "Record": "cotgap.records",
    "human_size": "cotgap.protocol.rules",
    "CAPACITY_RATIO": "cotgap.protocol.constants",
    "resolve_model": "cotgap.models.resolve",
}


#: exported names whose home module calls them otherwise
_RENAMED = {"resolve_model": "resolve"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module 'cotgap' has no attribute {name!r}")
