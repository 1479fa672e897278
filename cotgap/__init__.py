"""cotgap: chain-of-thought distillation under the practical protocol (Kajitsuka et al.).

The public API for plugins is what this module exports; the built-in strategies use nothing else.
Names that need torch (``TrainResult``, ``RunContext``) load on first use, so that importing
cotgap does not import torch before the CLI has set its threads.
"""

from cotgap.errors import PluginError, ProtocolError, UserError
from cotgap.hookspecs import hookimpl
from cotgap.strategy import Strategy

__version__ = "0.1.0"
__all__ = ["PluginError", "ProtocolError", "RunContext", "Strategy", "TrainResult", "UserError", "hookimpl"]


def __getattr__(name: str):
    if name == "TrainResult":
        from cotgap.backends.training import TrainResult

        return TrainResult
    if name == "RunContext":
        from cotgap.pipeline.context import RunContext

        return RunContext
    raise AttributeError(f"module 'cotgap' has no attribute {name!r}")
