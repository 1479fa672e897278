"""The plugin manager: built-in strategies first, then setuptools entry points (group ``cotgap``).

Follows simonw/llm: the built-ins in ``plugins/`` (package ``cotgap_plugins``) are ordinary
plugin modules registered by name; third-party packages declare
``[project.entry-points.cotgap] name = "module"`` (a module with hooks), or ``"module:Class"`` /
``"module:instance"`` (a ``cotgap.Strategy`` subclass or object). A module's
``register_strategies(register)`` hook may ``register(MyStrategy())``; each strategy object is then
a plugin of its own, ``<plugin>:<strategy>``, whose methods are the hooks. Strategies are objects
only: ``register("name", ...)`` with module-level hooks checking the name (the module-function
style) was removed, and a plugin still doing it fails to load with a one-line reason.
``COTGAP_LOAD_PLUGINS`` (comma list) is an allow-list of entry-point distributions/names to load;
set it empty to load none of them. A plugin that fails to import or to validate is recorded and
shown by ``cotgap plugins``, never a crash.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from cotgap import hookspecs
from cotgap.strategy import HOOK_METHODS
from cotgap.strategy import Strategy as StrategyBase


class StrategyPluginManager(pluggy.PluginManager):
    """pluggy's manager, where every hook method of a strategy object is a hook implementation,
    decorated or not: a subclass's override replaces the base method, marker and all, and must
    not silently stop being a hook."""

    def parse_hookimpl_opts(self, plugin, name: str):
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and isinstance(plugin, StrategyBase) and name in HOOK_METHODS:
            return {
                "wrapper": False,
                "hookwrapper": False,
                "optionalhook": False,
                "tryfirst": False,
                "trylast": False,
                "specname": None,
            }
        return opts


pm = StrategyPluginManager("cotgap")
pm.add_hookspecs(hookspecs)

#: name -> one-line reason, for plugins that could not be loaded (import or hook validation).
load_failures: dict[str, str] = {}
#: strategy name -> the plugin that failed to load it (a strategy object whose hooks failed validation).
failed_strategies: dict[str, str] = {}
#: strategy name -> the plugins that registered it, for names registered more than once.
conflicts: dict[str, list[str]] = {}

_loaded = False


@dataclass
class StrategyInfo:
    """What the host knows of a registered strategy: the strategy object, and where it came from."""

    name: str
    plugin_name: str  # the plugin whose hooks run it: "<plugin>:<name>" for an object a module registered
    impl: StrategyBase
    description: str = ""
    defaults: dict = field(default_factory=dict)
    default_teachers: list = field(default_factory=list)  # used when the user names no teacher

    def validate_params(self, given: dict):
        """The user's ``strategy_params`` checked against the strategy's typed ``Params``."""
        return self.impl.validate_params(given)

    def identity(self) -> dict:
        """Which code the strategy is (``cotgap.strategy_identity``)."""
        from cotgap.strategy_identity import identity

        return identity(self.impl)

    @property
    def plugin(self) -> str:
        """The plugin as users know it (its entry point / module name)."""
        return self.plugin_name.partition(":")[0]


def _register(obj, name: str) -> bool:
    """Register a plugin object; a validation failure is recorded, not raised."""
    if pm.get_plugin(name) is not None or pm.is_registered(obj):
        return True
    try:
        pm.register(obj, name=name)
        return True
    except Exception as exc:  # pluggy's PluginValidationError: a hookimpl with a wrong signature
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
        load_failures[name] = _signature_mismatch(obj, exc) or (
            f"{type(exc).__name__}: " + " ".join(str(exc).split())
        )  # pluggy's is multi-line
        if isinstance(obj, StrategyBase) and obj.name:
            failed_strategies[obj.name] = name
        return False


def _signature_mismatch(obj, exc) -> str | None:
    """A strategy's hook method whose parameter names differ from the hook's, in words: which
    method of which class, and the parameters the hook expects (pluggy passes arguments by name).
    None when that is not what went wrong."""
    import inspect

    if not isinstance(obj, StrategyBase):
        return None
    for name in HOOK_METHODS:
        method, spec = getattr(obj, name, None), getattr(hookspecs, name, None)
        if not callable(method) or spec is None:
            continue
        expected = [p for p in inspect.signature(spec).parameters if p != "strategy"]
        got = list(inspect.signature(method).parameters)
        if set(got) - set(expected):
            return (
                f"{type(obj).__name__}.{name}({', '.join(got)}) does not match the hook {name}("
                f"{', '.join(expected)}): pluggy passes arguments by name, so its parameters must be named "
                f"{', '.join(expected)}"
            )
    return None


def _as_plugin(obj):
    """A module stays a module; a Strategy subclass is instantiated; an instance is itself."""
    if isinstance(obj, type) and issubclass(obj, StrategyBase):
        return obj()
    return obj


def _register_module(name: str, module_path: str) -> None:
    try:
        if ":" in module_path:  # "module:attribute" (an entry point naming a class or object)
            mod, _, attr = module_path.partition(":")
            obj = _as_plugin(getattr(importlib.import_module(mod), attr))
        else:
            obj = importlib.import_module(module_path)
    except Exception as exc:  # a broken plugin must not break cotgap
        load_failures[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return
    if isinstance(obj, StrategyBase) and not obj.name:
        load_failures[name] = f"{type(obj).__name__} has no name"
        return
    _register(obj, name)


def load_plugins() -> None:
    """Load built-ins, then entry points (honouring ``COTGAP_LOAD_PLUGINS``). Idempotent."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import cotgap_plugins

    for info in sorted(pkgutil.iter_modules(cotgap_plugins.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            _register_module(info.name, f"cotgap_plugins.{info.name}")
    allow = os.environ.get("COTGAP_LOAD_PLUGINS")
    allowed = None if allow is None else {p.strip() for p in allow.split(",") if p.strip()}
    for ep in entry_points(group="cotgap"):
        dist = ep.dist.name if ep.dist is not None else ""
        if allowed is not None and ep.name not in allowed and dist not in allowed:
            continue
        _register_module(ep.name, ep.value)


def strategies() -> dict[str, StrategyInfo]:
    """All registered strategies, by name."""
    load_plugins()
    found: dict[str, StrategyInfo] = {}
    owners: dict[str, list[str]] = {}

    def add(info: StrategyInfo) -> None:
        owners.setdefault(info.name, []).append(info.plugin_name)
        found.setdefault(info.name, info)

    # 1. modules register their strategies: each object becomes a plugin of its own, "<module>:<name>"
    for plugin in list(pm.get_plugins()):
        if getattr(plugin, "register_strategies", None) is not None and not isinstance(plugin, StrategyBase):
            _register_module_strategies(plugin)
    # 2. every strategy object (registered above, or straight from an entry point)
    for plugin in sorted(pm.get_plugins(), key=lambda p: pm.get_name(p) or ""):
        if isinstance(plugin, StrategyBase):
            add(_info(plugin, pm.get_name(plugin)))
    conflicts.clear()
    conflicts.update({n: sorted(ps) for n, ps in owners.items() if len(ps) > 1})
    return found


class _NotAStrategy(Exception):
    """``register(x)`` was given something other than a ``cotgap.Strategy`` instance."""


def _register_module_strategies(plugin) -> None:
    """Register the strategy objects a module plugin's ``register_strategies`` hook hands to
    ``register``. A hook that raises, or registers anything but a ``Strategy`` instance (a name, as
    the removed module-function style did), fails the whole plugin, as an import failure does: it is
    unregistered with what it had registered so far (its hooks never run) and recorded with a
    one-line reason for ``cotgap plugins`` and ``run --strategy``; other plugins load as usual."""
    plugin_name = pm.get_name(plugin)
    objects: list[str] = []

    def register(strategy, *args, **kwargs):
        if isinstance(strategy, str):
            failed_strategies[strategy] = plugin_name  # `run --strategy <it>` names this plugin and why
        if not isinstance(strategy, StrategyBase) or args or kwargs:
            raise _NotAStrategy(
                f"register({strategy!r}) names a strategy; register a cotgap.Strategy instance instead: "
                "register(MyStrategy()) (the module-function style was removed)"
                if isinstance(strategy, str)
                else f"register() takes one cotgap.Strategy instance, as register(MyStrategy()); it was given "
                f"{getattr(strategy, '__name__', type(strategy).__name__)}" + (" and more arguments" if args or kwargs else "")
            )
        full = f"{plugin_name}:{strategy.name}"
        if pm.get_plugin(full) is None and _register(strategy, full):
            objects.append(full)

    try:
        plugin.register_strategies(register=register)
    except Exception as exc:  # a broken plugin must not break cotgap
        for full in objects:
            pm.unregister(name=full)
        pm.unregister(plugin)
        why = str(exc) if isinstance(exc, _NotAStrategy) else f"{type(exc).__name__}: {exc}"
        load_failures[plugin_name] = f"register_strategies: {why}".splitlines()[0]


def failed_plugins_note(strategy: str) -> str:
    """For an unknown ``strategy``: the plugins that failed to load and why (one of them may be the
    one that provides it), or ''."""
    if not load_failures:
        return ""
    mine = {
        n: why
        for n, why in load_failures.items()
        if strategy in (n, n.partition(":")[0], n.rpartition(".")[2]) or failed_strategies.get(strategy) == n
    }
    if mine:
        name, why = next(iter(mine.items()))
        return f"; its plugin {name!r} failed to load ({why})"
    listed = "; ".join(f"{n}: {why}" for n, why in sorted(load_failures.items()))
    return f"; plugin(s) that failed to load and may provide it: {listed}"


def _info(obj: StrategyBase, plugin_name: str) -> StrategyInfo:
    return StrategyInfo(
        obj.name,
        plugin_name,
        obj,
        obj.description or (type(obj).__doc__ or "").strip().split("\n")[0],
        obj.defaults(),
        list(obj.default_teachers),
    )


def select(name: str) -> StrategyInfo:
    """The strategy the user named; refused when unknown or registered by two plugins (no winner
    is picked: which plugin loads first is an accident of the installation)."""
    from cotgap.errors import UserError

    found = strategies()
    if name not in found:
        raise UserError(
            f"unknown strategy {name!r} (available: {', '.join(sorted(found)) or 'none'})" + failed_plugins_note(name)
        )
    if name in conflicts:
        raise UserError(
            f"strategy {name!r} is registered by more than one plugin ({' and '.join(conflicts[name])}); "
            "uninstall one, or load one with COTGAP_LOAD_PLUGINS"
        )
    return found[name]


def strategy_hooks(strategy: str):
    """Hook callers that reach the plugin that registered ``strategy`` — and *observers*: plugins
    whose implementations of a hook are wrappers (``@hookimpl(wrapper=True)``), which see every
    strategy's calls (log, time, record) without replacing its result. Any other plugin's
    implementation is left out: only the selected strategy generates, filters and trains."""
    strat = strategies()[strategy]
    owner = pm.get_plugin(strat.plugin_name)

    def caller(hook: str):
        replacing = {
            id(i.plugin)
            for i in getattr(pm.hook, hook).get_hookimpls()
            if not (i.hookwrapper or i.wrapper) and i.plugin is not owner
        }
        return pm.subset_hook_caller(hook, remove_plugins=[p for p in pm.get_plugins() if id(p) in replacing])

    class _Hooks:
        check = caller("check")
        generate = caller("generate")
        filter = caller("filter")
        train = caller("train")

    return _Hooks


def describe_plugins() -> list[dict]:
    """What ``cotgap plugins`` shows: each plugin, its hooks and strategies, plus failures."""
    load_plugins()
    strats = strategies()
    rows: dict[str, dict] = {}
    for plugin in sorted(pm.get_plugins(), key=lambda p: pm.get_name(p) or ""):
        name = pm.get_name(plugin)
        hooks = {h.name for h in pm.get_hookcallers(plugin) or []}
        mine = {s.name for s in strats.values() if s.plugin_name == name}
        owner = name.partition(":")[0]
        if isinstance(plugin, StrategyBase) and owner in rows:  # a strategy object its module registered
            rows[owner]["hooks"] = sorted(set(rows[owner]["hooks"]) | hooks)
            rows[owner]["strategies"] = sorted(set(rows[owner]["strategies"]) | mine)
            continue
        module = (
            f"{type(plugin).__module__}.{type(plugin).__qualname__}"
            if isinstance(plugin, StrategyBase)
            else getattr(plugin, "__name__", repr(plugin))
        )
        rows[name] = {"name": name, "module": module, "hooks": sorted(hooks), "strategies": sorted(mine)}
    out = list(rows.values())
    for name, why in sorted(load_failures.items()):
        out.append({"name": name, "error": why, "hooks": [], "strategies": []})
    for strat, owners in sorted(conflicts.items()):
        for row in out:
            mine = [o for o in owners if o.partition(":")[0] == row["name"]]
            if mine:
                others = ", ".join(o for o in owners if o not in mine)
                row["warning"] = f"strategy {strat!r} is also registered by {others}"
    return sorted(out, key=lambda d: d["name"])
