"""Errors the CLI reports as one line with exit code 2 (bad input) instead of a traceback."""


class UserError(Exception):
    """Bad input from the user: unknown strategy/task/model, malformed config, protocol violation."""


class ProtocolError(UserError):
    """A request that would break the practical protocol (e.g. student not smaller than teacher)."""


class PluginError(Exception):
    """A plugin broke its contract (a hook returned nothing or the wrong type): the plugin's fault,
    not the user's — one line naming the plugin and the method, exit 1."""


class ServiceError(Exception):
    """A service cotgap depends on failed (an API teacher's server stayed down): one line, exit 3,
    and whatever was computed is kept so that a re-run resumes."""
