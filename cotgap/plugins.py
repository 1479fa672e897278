"""The plugin manager: built-in strategies first, then setuptools entry points (group ``cotgap``).

Follows simonw/llm: the built-ins in ``plugins/`` (package ``cotgap_plugins``) are ordinary
plugin modules registered by name; third-party packages declare
``[project.entry-points.cotgap] name = "module"``. ``COTGAP_LOAD_PLUGINS`` (comma list) is an
allow-list of entry-point distributions/names to load; set it empty to load none of them.
A plugin that fails to import is recorded and shown by ``cotgap plugins``, never a crash.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from cotgap import hookspecs


pm = pluggy.PluginManager("cotgap")
pm.add_hookspecs(hookspecs)

#: name -> one-line reason, for plugins that could not be loaded.
load_failures: dict[str, str] = {}

_loaded = False


@dataclass
class Strategy:
    name: str
    plugin_name: str
    description: str = ""
    defaults: dict = field(default_factory=dict)
    default_teachers: list = field(default_factory=list)  # used when the user names no teacher


def _register_module(name: str, module_path: str) -> None:
    try:
        module = importlib.import_module(module_path)
    except Exception as exc:  # a broken plugin must not break cotgap
        load_failures[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return
    if pm.get_plugin(name) is None and not pm.is_registered(module):
        pm.register(module, name=name)


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


def strategies() -> dict[str, Strategy]:
    """All registered strategies, by name."""
    load_plugins()
    found: dict[str, Strategy] = {}
    for plugin in pm.get_plugins():
        impl = getattr(plugin, "register_strategies", None)
        if impl is None:
            continue
        plugin_name = pm.get_name(plugin)

        def register(name, description="", defaults=None, default_teachers=None, _p=plugin_name):
            found[name] = Strategy(name, _p, description, dict(defaults or {}), list(default_teachers or []))

        impl(register=register)
    return found


def strategy_hooks(strategy: str):
    """Hook callers that reach only the plugin that registered ``strategy``."""
    strat = strategies()[strategy]
    owner = pm.get_plugin(strat.plugin_name)
    others = [p for p in pm.get_plugins() if p is not owner]

    class _Hooks:
        check = pm.subset_hook_caller("check", remove_plugins=others)
        generate = pm.subset_hook_caller("generate", remove_plugins=others)
        filter = pm.subset_hook_caller("filter", remove_plugins=others)
        train = pm.subset_hook_caller("train", remove_plugins=others)

    return _Hooks


def describe_plugins() -> list[dict]:
    """What ``cotgap plugins`` shows: each plugin, its hooks and strategies, plus failures."""
    load_plugins()
    strats = strategies()
    out = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        out.append(
            {
                "name": name,
                "module": getattr(plugin, "__name__", repr(plugin)),
                "hooks": hooks,
                "strategies": sorted(s.name for s in strats.values() if s.plugin_name == name),
            }
        )
    for name, why in sorted(load_failures.items()):
        out.append({"name": name, "error": why, "hooks": [], "strategies": []})
    return sorted(out, key=lambda d: d["name"])
