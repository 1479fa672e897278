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

#: name -> one-line reason, for plugins that could not be loaded (import or hook validation).
load_failures: dict[str, str] = {}
#: strategy name -> the plugins that registered it, for names registered more than once.
conflicts: dict[str, list[str]] = {}

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
        try:
            pm.register(module, name=name)
        except Exception as exc:  # pluggy's PluginValidationError: a hookimpl with a wrong signature
            if pm.get_plugin(name) is not None:
                pm.unregister(name=name)
            load_failures[name] = f"{type(exc).__name__}: " + " ".join(str(exc).split())  # pluggy's is multi-line


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
    owners: dict[str, list[str]] = {}
    for plugin in sorted(pm.get_plugins(), key=lambda p: pm.get_name(p) or ""):
        impl = getattr(plugin, "register_strategies", None)
        if impl is None:
            continue
        plugin_name = pm.get_name(plugin)

        def register(name, description="", defaults=None, default_teachers=None, _p=plugin_name):
            owners.setdefault(name, []).append(_p)
            found.setdefault(name, Strategy(name, _p, description, dict(defaults or {}), list(default_teachers or [])))

        impl(register=register)
    conflicts.clear()
    conflicts.update({n: sorted(ps) for n, ps in owners.items() if len(ps) > 1})
    return found


def select(name: str) -> Strategy:
    """The strategy the user named; refused when unknown or registered by two plugins (no winner
    is picked: which plugin loads first is an accident of the installation)."""
    from cotgap.errors import UserError

    found = strategies()
    if name not in found:
        raise UserError(f"unknown strategy {name!r} (available: {', '.join(sorted(found)) or 'none'})")
    if name in conflicts:
        raise UserError(f"strategy {name!r} is registered by more than one plugin ({' and '.join(conflicts[name])}); "
                        "uninstall one, or load one with COTGAP_LOAD_PLUGINS")
    return found[name]


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
    for strat, owners in sorted(conflicts.items()):
        for row in out:
            if row["name"] in owners:
                row["warning"] = f"strategy {strat!r} is also registered by {', '.join(o for o in owners if o != row['name'])}"
    return sorted(out, key=lambda d: d["name"])
