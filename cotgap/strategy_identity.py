"""A strategy's identity: which code it is, so that results follow the code.

A run's generate, filter and train stages are keyed by the strategy's identity as well as its
name and parameters: editing a strategy's code (or upgrading its package) recomputes those stages
on the next run — and nothing else: the baseline is the student's alone, and teacher generations
stay in the shared cache, keyed by model and prompt. The identity is

- ``distribution`` / ``version``: the installed package the strategy's code comes from (for the
  built-ins, cotgap's own);
- ``code``: a sha256 over the source of the module defining the strategy's class, of the modules
  defining its other classes (a subclass of another plugin's strategy), and of the modules of the
  same top-level package those import (e.g. a private helper module), found by reading their
  ``import`` statements (``ast``; nothing is executed). cotgap's own core modules are not part of
  it: what the core computes is keyed by the stage inputs themselves.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import inspect
import sys
from pathlib import Path

#: top-level packages whose modules are the core, not a strategy's code
CORE_PACKAGES = ("cotgap",)


def identity(obj) -> dict:
    """``{"distribution", "version", "code"}`` of a strategy object (module docstring)."""
    modules = _strategy_modules(type(obj))
    dist, version = _distribution(type(obj).__module__)
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0" + modules[name] + b"\0")
    return {"distribution": dist, "version": version, "code": digest.hexdigest()[:16]}


def _strategy_modules(cls) -> dict[str, bytes]:
    """Module name -> source bytes, for the class's modules and what they import from their package."""
    todo = [c.__module__ for c in cls.__mro__ if c.__module__.split(".")[0] not in (*CORE_PACKAGES, "builtins")]
    found: dict[str, bytes] = {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        source = _source(name)
        if source is None:
            continue
        found[name] = source
        top = name.split(".")[0]
        todo.extend(m for m in _imports(source, name) if m.split(".")[0] == top and m not in found)
    return found


def _source(module: str) -> bytes | None:
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if path is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError, AttributeError):  # a name imported from a module, not a module
            return None
        path = spec.origin if spec is not None else None
    if not path or not str(path).endswith(".py"):
        return None
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _imports(source: bytes, module: str) -> list[str]:
    """Absolute names of the modules ``source`` imports (relative imports resolved)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    package = module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out += [base] + [f"{base}.{a.name}" for a in node.names]
    return [m for m in out if m]


def _distribution(module: str) -> tuple[str | None, str | None]:
    """The installed distribution providing ``module``'s top-level package, and its version."""
    top = module.split(".")[0]
    names = _packages_distributions().get(top) or []
    if not names and top == "cotgap_plugins":
        names = ["cotgap"]
    for dist in names:
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, None


@functools.cache
def _packages_distributions() -> dict:
    return importlib.metadata.packages_distributions()


def describe(obj) -> str:
    """``name (distribution version, code <digest>)`` for logs."""
    ident = identity(obj)
    where = f"{ident['distribution']} {ident['version']}" if ident["distribution"] else inspect.getmodule(obj).__name__
    return f"{obj.name} ({where}, code {ident['code']})"
