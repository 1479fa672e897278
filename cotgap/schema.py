"""Typed dataclasses as schemas: one mechanism for the run config and for strategy parameters.

A field declares its type in its annotation and its range in ``field(metadata=...)``:

- ``min`` / ``max``: inclusive bounds; ``gt`` / ``lt``: strict bounds (``epochs > 0``, ``alpha < 1``);
- ``choices``: the allowed values;
- ``not``: values refused although in range (``max_steps: 0`` trains nothing).

``build(cls, mapping, where)`` refuses unknown keys, wrong types and values out of range by their
dotted name (``training.grad_accum must be >= 1, got 0``), builds nested dataclasses, and then
runs the ``check()`` of the class and of each of its dataclass bases (``run_checks``) for rules
across fields. Everything it refuses is a
``UserError``: one line, exit 2, before any work.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from cotgap.errors import UserError

_NONE = type(None)


def defaults(cls) -> dict:
    """Every field's default value (``default_factory`` called)."""
    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory()) for f in dataclasses.fields(cls)}


def check_fields(cls, given: dict, where: str, *, suffix: str = "", unknown_message=None) -> dict:
    """``given`` checked against ``cls``'s fields; returns the checked values (ints widened to
    floats where a float is declared, nested dataclasses built). ``suffix`` follows every name in a
    refusal and ``unknown_message(unknown, known)`` words an unknown key, for callers with their own
    vocabulary (``strategy_params.items[0] of strategy NAME must be ...``)."""
    if not isinstance(given, dict):
        raise UserError(f"{where or 'config'}{suffix}: expected a mapping, got {_name(given)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(map(str, set(given) - set(fields)))
    if unknown:
        raise UserError(
            unknown_message(unknown, list(fields))
            if unknown_message
            else f"{where or 'config'}{suffix}: unknown key(s) {', '.join(unknown)} (known: {', '.join(fields) or 'none'})"
        )
    hints = typing.get_type_hints(cls)
    return {k: check_value(_join(where, k), v, hints.get(k), fields[k].metadata, suffix) for k, v in given.items()}


def build(cls, given: dict, where: str, suffix: str = ""):
    """An instance of ``cls`` from a mapping, every value checked, then ``cls.check()``. A class
    with a static ``expand(given) -> dict`` (e.g. presets filling unset fields) sees the mapping first."""
    if hasattr(cls, "expand") and isinstance(given, dict):
        given = cls.expand(given)
    obj = cls(**check_fields(cls, given, where, suffix=suffix))
    run_checks(obj)
    return obj


def run_checks(obj) -> None:
    """The rules across fields of ``obj``: the ``check()`` each class of its dataclass bases
    defines, base class first — so a subclass inherits its bases' rules without calling
    ``super().check()`` (calling it as well is harmless: a rule only reads and raises)."""
    for klass in reversed(type(obj).__mro__):
        own = klass.__dict__.get("check")
        if own is not None and dataclasses.is_dataclass(klass):
            own.__get__(obj, klass)()


def check_value(where: str, value: Any, hint: Any, meta: typing.Mapping, suffix: str = "") -> Any:
    """``value`` checked against a type hint and a field's range metadata (``suffix``: see ``check_fields``)."""
    value = _typed(where, value, hint, suffix)
    if value is None:
        return None
    where = f"{where}{suffix}"
    if "choices" in meta and value not in meta["choices"]:
        raise UserError(
            f"{where} must be one of {', '.join('null' if c is None else str(c) for c in meta['choices'])}, got {value!r}"
        )
    if "not" in meta and value in meta["not"]:
        raise UserError(f"{where} must not be {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "min" in meta and value < meta["min"]:
            raise UserError(f"{where} must be >= {meta['min']}, got {value!r}")
        if "gt" in meta and value <= meta["gt"]:
            raise UserError(f"{where} must be > {meta['gt']}, got {value!r}")
        if "max" in meta and value > meta["max"]:
            raise UserError(f"{where} must be <= {meta['max']}, got {value!r}")
        if "lt" in meta and value >= meta["lt"]:
            raise UserError(f"{where} must be < {meta['lt']}, got {value!r}")
    return value


def _typed(where: str, value: Any, hint: Any, suffix: str = "") -> Any:
    """``value`` if it has the hinted type (int widened to float, nested dataclass built)."""
    if hint is None or hint is Any:
        return value
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    if value is None:
        if _NONE in options:
            return None
        raise UserError(f"{where}{suffix} must be {_names(options)}, got null")
    for option in options:
        ok, out = _as(where, value, option, suffix)
        if ok:
            return out
    raise UserError(f"{where}{suffix} must be {_names(options)}, got {value!r}")


def _as(where: str, value: Any, option: Any, suffix: str = "") -> tuple[bool, Any]:
    """(matches, converted value) of ``value`` against one alternative of a type hint."""
    if option is _NONE:
        return False, None
    if dataclasses.is_dataclass(option):
        return isinstance(value, dict), build(option, value, where, suffix) if isinstance(value, dict) else None
    origin = typing.get_origin(option)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, None
        (item,) = typing.get_args(option)[:1] or (None,)
        return True, [_typed(f"{where}[{i}]", v, item, suffix) for i, v in enumerate(value)]
    if origin is dict:
        return isinstance(value, dict), value
    if option is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if option is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if isinstance(option, type):
        return isinstance(value, option), value
    return True, value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


_WORDS = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list",
    tuple: "a list",
    dict: "a mapping",
}


def _names(options) -> str:
    """The alternatives of a type hint in words: ``an integer or null``."""
    names = []
    for o in options:
        kind = typing.get_origin(o) or o
        if o is _NONE:
            names.append("null")
        elif dataclasses.is_dataclass(o):
            names.append("a mapping")
        else:
            names.append(_WORDS.get(kind, getattr(kind, "__name__", str(kind))))
    return " or ".join(names)


def _name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
