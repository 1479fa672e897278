"""``cotgap.Strategy``: a strategy is an object whose methods are the hooks.

An instance of a ``Strategy`` subclass is registered with the plugin manager as a pluggy plugin
(pluggy accepts objects); its ``generate``, ``filter``, ``train`` and ``check`` methods are the
hook implementations, called by the host only on the selected strategy's object — so no method
takes a ``strategy`` argument or checks a name. Every one of those methods is a hook whether or
not it is decorated (``plugins.StrategyPluginManager`` sees to it), so an override cannot be lost
to a forgotten ``@hookimpl``.

The base class *is* the plain strategy of the practical protocol: one greedy rationale per train
question per teacher; each source's correct records; SFT on everything kept. A subclass overrides
only what it changes, and declares its parameters once, as a dataclass ``Params`` (defaults,
types, and ranges in ``field(metadata={"min": ..., "max": ...})``; rules across fields in its
``check()``; ``class Params(Strategy.Params)`` inherits ``samples`` / ``temperature`` and their
rule); the core validates the user's ``strategy_params`` against it once, before any work. A
complete third-party strategy in ten lines is tests/fixtures/cotgap_shortest_plugin (shown in
the README's "Writing a strategy plugin").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from cotgap import schema
from cotgap.errors import UserError

#: The methods of a Strategy that are hook implementations.
HOOK_METHODS = ("check", "generate", "filter", "train")


@dataclass(frozen=True)
class PlannedGeneration:
    """One ``ctx.generate_rationales`` call a strategy's ``generate`` will make, declared before
    anything runs (``Strategy.planned_generations``) so that a sweep's dry run plans it."""

    model: str  # the spec as the grid (or the strategy's parameters) wrote it
    samples: int = 1
    temperature: float = 0.0
    description: str | None = None  # an instruction replacing the task's (None: the task's own prompt)
    exact: bool = True  # False: an approximation of what the strategy will ask for

    def sampling(self) -> dict:
        """The settings of this call that enter the generation cache key."""
        return {"samples": self.samples, "temperature": self.temperature, "description": self.description}


class Strategy:
    """Base class of strategy objects; behaves as the plain strategy."""

    name: str = ""
    description: str = ""
    #: teachers used when the user names none (e.g. a strategy that needs two)
    default_teachers: tuple[str, ...] = ()
    #: in a sweep, compare each of this strategy's multi-teacher cells, at its optimizer updates, with
    #: the reference strategy trained on each of its teachers alone (a strategy whose claim is
    #: about combining teachers' data is judged against each teacher's data alone)
    compare_each_teacher_alone: bool = False

    @dataclass
    class Params:
        """The base parameters: rationales per question and teacher, and their sampling temperature.

        A subclass's ``Params`` that derives from this one (``class Params(Strategy.Params)``, an
        ordinary dataclass subclass) inherits both fields and this class's ``check``; one that does
        not declares its parameters from scratch (the base ``generate`` is then greedy, one sample)."""

        samples: int = field(default=1, metadata={"min": 1})
        temperature: float = field(default=0.0, metadata={"min": 0.0})

        def check(self) -> None:
            """Rules across fields: several greedy samples would be identical."""
            self.sampling_rule(self.samples, self.temperature)

        @staticmethod
        def sampling_rule(samples: int, temperature: float, names: tuple[str, str] = ("samples", "temperature")) -> None:
            """The one statement of "more than one sample needs a temperature > 0", for any pair of
            fields (``names``: how the user wrote them, e.g. ``("ta_samples", "ta_temperature")``)."""
            if samples > 1 and temperature <= 0:
                raise UserError(f"{names[0]} > 1 needs {names[1]} > 0 (greedy samples are identical)")

    # -- hooks (the host calls these only on the selected strategy's object) --------------------
    def check(self, ctx) -> None:
        """Refuse a run before any work (raise ``UserError``). The base class has nothing to refuse
        (its parameters' rules are ``Params.check``, run when they are validated)."""

    def generate(self, ctx) -> dict:
        """``{source: records}``: each teacher's rationales for the train split."""
        samples, temperature = _sampling(ctx.params)
        return {t.spec: ctx.generate_rationales(t, samples=samples, temperature=temperature) for t in ctx.teachers}

    def filter(self, ctx, source, records) -> list[dict]:
        """ONE source's records to train on: by default those its teacher got right."""
        return [r for r in records if r["correct"]]

    def train(self, ctx, data):
        """SFT of the student on every kept record of every source."""
        return ctx.train_student([r for recs in data.values() for r in recs])

    # -- budgets ----------------------------------------------------------------------------------
    def unequal_updates(self, params) -> str | None:
        """A declared exception to equal-updates comparisons: why, with these parameters, the
        strategy trains at a budget of its own rather than its reference's (e.g. a paper's own
        batching), or None. The core records it with the run's updates (``report.json`` →
        ``unequal_updates``), flags it on the terminal and in sweeps, and warns in cross-run reports."""
        return None

    # -- planning (``cotgap sweep --dry-run``) -----------------------------------------------------
    #: a note the plan shows for every cell of this strategy (e.g. generations it cannot declare)
    plan_note: str = ""

    def planned_generations(self, params: dict, teachers: list[str]) -> list[PlannedGeneration] | None:
        """The ``generate_rationales`` calls ``generate`` will make with these parameters and
        teachers, or None when they cannot be told before running (the plan then approximates: one
        call per teacher with the parameters' ``samples`` / ``temperature``). The base class's
        ``generate`` makes one call per teacher; a strategy overriding ``generate`` overrides this too."""
        if type(self).generate is not Strategy.generate:
            return None
        samples, temperature = _sampling(params)
        return [PlannedGeneration(t, samples, temperature) for t in teachers]

    # -- parameters -------------------------------------------------------------------------------
    @classmethod
    def defaults(cls) -> dict:
        return schema.defaults(cls.Params)

    @classmethod
    def validate_params(cls, given: dict) -> Params:
        """The user's ``strategy_params`` checked against ``Params`` (``cotgap.schema``, the
        mechanism the run config uses): unknown keys, wrong types and values out of range are
        refused by name, then every ``check()`` along the ``Params`` class's bases runs once, base
        class first (``schema.run_checks``: a subclass's ``check`` need not call ``super()``).
        Returns the validated :class:`Params` — ``ctx.params.k``, or ``ctx.params["k"]``."""
        if not isinstance(given, (dict, Params)):
            raise UserError(f"strategy_params of strategy {cls.name} must be a mapping")
        # already validated (e.g. handed on by a sweep): checked again, what the user set kept
        explicit = given.given if isinstance(given, Params) else None
        given = given.asdict() if isinstance(given, Params) else given
        checked = schema.check_fields(
            cls.Params,
            given,
            "strategy_params",
            suffix=f" of strategy {cls.name}",
            unknown_message=lambda unknown, known: (
                f"unknown parameter(s) for strategy {cls.name}: "
                f"{', '.join(unknown)} (known: {', '.join(sorted(known)) or 'none'})"
            ),
        )
        obj = cls.Params(**checked)
        try:
            schema.run_checks(obj)
        except UserError as exc:
            raise UserError(f"strategy_params of strategy {cls.name}: {exc}") from None
        return Params(obj, given=checked if explicit is None else explicit)


def _sampling(params) -> tuple[int, float]:
    """(samples, temperature) of validated parameters: their fields where the strategy's ``Params``
    declares them (e.g. inherited from ``Strategy.Params``), else one greedy sample."""
    get = params.get if isinstance(params, Mapping) else lambda k, d: getattr(params, k, d)
    return int(get("samples", 1)), float(get("temperature", 0.0))


class Params(Mapping):
    """A strategy's validated parameters, as the hooks receive them (``ctx.params``): the strategy's
    ``Params`` dataclass instance (attributes: ``ctx.params.k``), read-only, also readable as a
    mapping (``ctx.params["k"]``, ``dict(ctx.params)``, what the manifest records). ``given`` names
    the parameters the user set explicitly (the others are defaults)."""

    __slots__ = ("_obj", "given")

    def __init__(self, obj, *, given=()):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "given", frozenset(given))

    def __getattr__(self, name):
        return getattr(object.__getattribute__(self, "_obj"), name)

    def __setattr__(self, name, value):
        raise AttributeError("strategy parameters are read-only (validated once, before any work)")

    def __getitem__(self, key):
        if key not in self._names():
            raise KeyError(key)
        return getattr(self._obj, key)

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self._obj))

    def asdict(self) -> dict:
        return {k: self[k] for k in self}

    def __repr__(self) -> str:
        return f"Params({self.asdict()!r}, given={sorted(self.given)!r})"
