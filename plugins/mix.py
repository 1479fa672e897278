"""mix — Mix Distillation (Li, Yue, Xu, Jiang, Niu, Lin, Ramasubramanian, Poovendran 2025,
"Small Models Struggle to Learn from Strong Reasoners", arXiv:2502.12143,
project page small-model-gap.github.io).

The paper's finding (the "small model learnability gap"): students of <= 3B parameters learn
less from long CoT, or from a much larger teacher, than from short CoT or a smaller teacher.
Its remedy: train on a *mix* that is mostly the easy-to-learn data with a minority of the
strong reasoner's data. Two variants, both at a 1:4 ratio (strong : easy):

- **Mix-Long**: long-CoT rationales (a reasoning model) mixed with short-CoT rationales;
- **Mix-Large**: rationales of a large model mixed with rationales of a smaller model.

Here the two data sources are exactly two teachers (any other number is refused before any work
starts, ``check`` hook). **Their roles are named, never positional**: ``strategy_params {strong:
<teacher>, easy: <teacher>}`` (either alone names the other teacher too; a name is a teacher's spec
as given to ``--teacher``). With no role named, the teacher with more parameters (at least
``CAPACITY_RATIO`` = 1.25x more) is the strong one — the Mix-Large reading; a pair that cannot be
told apart so (one size class, a scripted or API teacher without a size) and every ``mix-long``
run (long vs short CoT is not a size) must name the roles, and is otherwise refused in one line.
With no ``--teacher`` the strategy's default teachers are the zoo's Qwen2.5-Coder 1.5B
(strong/large, by size) and 0.5B (easy/small): Mix-Large in effect.

Stages:

- generate: each teacher writes one greedy CoT rationale per *train* question (task's few-shot
  CoT prompt via lm-eval). Sources are named ``"<teacher spec> [<role>]"`` with roles
  long/short (preset ``mix-long``), large/small (``mix-large``) or strong/easy (no preset).
- filter: each source keeps its OWN correct rationales (the task's answer extraction). The
  mix never restricts a teacher to the questions both teachers solved.
- train: the mixed set is drawn from the two kept sets (below), written to
  ``strategy/mix/mixed.jsonl`` (exactly the records passed to training) and the student is
  fine-tuned on it.

Mixing (the paper gives the ratio, not the procedure). With target size ``N``,
``n_strong = round(ratio * N)`` rationales are drawn from the strong teacher's correct ones and
``n_easy = N - n_strong`` from the easy teacher's correct ones, without replacement, with a
seeded ``random.Random``. A question solved by only one teacher is eligible for that teacher's
draw like any other (its rationale can only come from that teacher); a question solved by both
contributes (by default) at most one rationale, from whichever teacher's draw reached it first —
the strong draw is made first, then the easy draw prefers questions the strong draw did not
take (``distinct_questions``). If a teacher has fewer correct rationales than its share, all of
them are taken and ``ctx.record("shortfall", ...)`` says so; ``shortfall`` decides what the
other teacher does then.

Training budget: by default the ordinary ``training`` config (the same batching, hence the same
number of optimizer updates, as ``plain`` on a data set of the same size). The paper's own runs
used 5 examples per device x 4 accumulation steps on several GPUs (a global batch of 5 x 4 x
processes), which gives mix far fewer updates than its baselines; ``published_batching: true``
reproduces that (per device 5, accumulation 4, on however many processes the run trains with),
records the global batch and ``unequal_updates``.

Choices the paper leaves open, each a parameter (``strategy_params``) with its default:

- ``ratio`` (0.2): share of the mixed set drawn from the strong (long/large) teacher; 0.2 is the
  paper's 1:4. A float in [0, 1] or a string ``"a:b"`` (strong:easy).
- ``strong`` / ``easy`` (null): the teacher (spec as given) in each role; see above.
- ``preset`` (null): ``"mix-long"`` (strong = the long-CoT teacher, easy = the short-CoT one; the
  roles must be named) or ``"mix-large"`` (strong = the larger model, easy = the smaller); both
  fix the ratio at 1:4 (any other ``ratio`` is refused) and label the roles
  (long/short, large/small); the preset is recorded in the report. null: roles "strong"/"easy",
  ratio as given.
- ``size`` ("short"): the target size N of the mixed set. ``"short"``: as many rationales as the
  easy (short/small) teacher kept, i.e. the data set the easy-only baseline would train on;
  ``"all"``: the number of distinct questions solved by at least one teacher; an int: exactly that.
- ``distinct_questions`` (true): the easy draw first takes questions the strong draw did not
  take, and only then (if it needs more) questions already covered; false: the two draws are
  independent and a question may appear once per teacher.
- ``shortfall`` ("keep"): when a teacher has fewer correct rationales than its share:
  ``"keep"`` — it gives all it has and the other teacher still gives its planned share (smaller
  set, ratio off target); ``"ratio"`` — the other teacher's share is cut so the ratio holds
  (largest set <= N that both can supply); ``"fill"`` — the other teacher makes up the
  difference where it can (size holds, ratio off target).
- ``seed`` (null -> the run's ``seed``): seed of the sampling.
- ``published_batching`` (false): train with 5 examples per device x 4 accumulation steps (x the
  run's processes) instead of the run's ``training`` batching; the number of optimizer updates
  then differs from ``plain`` and the report carries ``unequal_updates`` (declared by ``Mix.unequal_updates``).

Fixed choices (no parameter): the strong teacher's share is ``round(ratio * N)`` (Python's
round-half-to-even), the rest is the easy teacher's; the strong draw is made first; each
teacher gives one greedy rationale per question (as in the paper's data); the mixed set is
shuffled (seeded) before training; the easy-teacher-only and strong-teacher-only questions are
never dropped for lack of the other teacher's answer.

In a sweep, each mix cell is also compared, at its own optimizer updates, with ``plain`` trained
on each of its teachers alone (``compare_each_teacher_alone``; Li et al. compare the mix with
each teacher's data alone, not with the two pooled).

Recorded (``report.json`` -> ``strategy_records``): ``mix.params`` (resolved parameters and
preset, with the teachers' roles and how they were decided), ``mix.available`` (correct rationales per source),
``mix.examples_per_source``, ``mix.ratio`` (target and achieved), ``mix.shortfall`` (when a
teacher ran short), ``mix.training`` (per-device batch, accumulation, processes, global batch and
optimizer updates, plus what ``plain``'s batching would have done) and ``mix.batching`` (both in words); the
report's ``unequal_updates`` (declared by ``Mix.unequal_updates``) when ``published_batching`` is on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction

from cotgap import CAPACITY_RATIO, PlannedGeneration, Strategy, UserError, hookimpl, human_size, resolve_model

NAME = "mix"
PRESETS = {
    "mix-long": {
        "ratio": 0.2,
        "roles": ("long", "short"),
        "doc": "Mix-Long: the strong teacher writes long CoT, the easy one short CoT; 1:4 long:short",
    },
    "mix-large": {
        "ratio": 0.2,
        "roles": ("large", "small"),
        "doc": "Mix-Large: the strong teacher is the larger model, the easy one the smaller; 1:4 large:small",
    },
}
DEFAULT_ROLES = ("strong", "easy")
#: The two role parameters, in the order the sources are drawn (strong first).
ROLE_KEYS = ("strong", "easy")
#: With no ``--teacher``: Mix-Large on the embedded zoo (the larger model is the strong one, by size).
DEFAULT_TEACHERS = ("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct")
#: The paper's batching: examples per device and gradient-accumulation steps (global batch:
#: their product times the processes), at its own epochs (a sweep's budget, max_steps, is lifted).
PUBLISHED_PER_DEVICE_BATCH = 5
PUBLISHED_GRAD_ACCUM = 4


class Mix(Strategy):
    """Mix Distillation (Li et al. 2025). ``filter`` is the base class's (each source's correct
    records); ``generate`` labels the two teachers' roles; ``train`` mixes and trains."""

    name = NAME
    description = (
        "Mix Distillation: 1:4 mix of a long-CoT/large teacher's and a "
        "short-CoT/small teacher's correct rationales (Li et al. 2025)"
    )
    default_teachers = DEFAULT_TEACHERS
    compare_each_teacher_alone = True

    @dataclass
    class Params:
        """The teachers write one greedy rationale each (a fixed choice: no ``samples`` /
        ``temperature``); every rule is a field's range or ``check``, run once by the core. The
        values the mix uses are derived here: ``share`` (the ratio as a number), ``roles``,
        ``ratio_fraction`` and ``seed_for``."""

        strong: str | None = None
        easy: str | None = None
        ratio: float | str = 0.2  # a share in [0, 1] or "a:b" (strong:easy); see ``share``
        preset: str | None = field(default=None, metadata={"choices": (None, *PRESETS)})
        size: str | int = "short"
        distinct_questions: bool = True
        shortfall: str = field(default="keep", metadata={"choices": ("keep", "ratio", "fill")})
        seed: int | None = None
        published_batching: bool = False

        def check(self) -> None:
            """A readable ratio, the preset's ratio if a preset is set, and a known size."""
            ratio = parse_ratio(self.ratio)
            if self.preset is not None and abs(ratio - PRESETS[self.preset]["ratio"]) > 1e-9:
                raise UserError(f"preset {self.preset} fixes ratio 1:4 (0.2); drop ratio={self.ratio!r} or set preset: null")
            if not (self.size in ("short", "all") or (isinstance(self.size, int) and self.size >= 0)):
                raise UserError(f"size must be 'short', 'all' or a non-negative integer, got {self.size!r}")

        @property
        def share(self) -> float:
            """The strong teacher's share of the mixed set in [0, 1] (``"1:4"`` -> 0.2)."""
            return PRESETS[self.preset]["ratio"] if self.preset else parse_ratio(self.ratio)

        @property
        def ratio_fraction(self) -> str:
            """The share as the paper writes it, strong:easy (0.2 -> ``"1:4"``)."""
            frac = Fraction(self.share).limit_denominator(100)
            return f"{frac.numerator}:{frac.denominator - frac.numerator}"

        @property
        def roles(self) -> list[str]:
            """The two sources' role labels, strong first (the preset's, else strong/easy)."""
            return list(PRESETS[self.preset]["roles"] if self.preset else DEFAULT_ROLES)

        def seed_for(self, run_seed: int) -> int:
            """The sampling seed: ``seed``, or the run's ``seed`` when it is null."""
            return int(run_seed if self.seed is None else self.seed)

    def check(self, ctx):
        _check_teachers(ctx)
        assign_roles(ctx.teachers, ctx.params)

    def generate(self, ctx):
        return generate_sources(ctx)

    def planned_generations(self, params, teachers):
        """Every teacher, greedy, one sample (``generate_sources``)."""
        return [PlannedGeneration(t) for t in teachers]

    def unequal_updates(self, params):
        """The paper's batching is a declared exception to equal updates."""
        if params.published_batching:
            return (
                f"published_batching: the paper's {PUBLISHED_PER_DEVICE_BATCH} per device x {PUBLISHED_GRAD_ACCUM} "
                "accumulation steps — not the same number of optimizer updates as plain on the same data; "
                "compare with care"
            )
        return None

    def train(self, ctx, data):
        return train_mix(ctx, data)


@hookimpl
def register_strategies(register):
    register(Mix())


# -- parameters ---------------------------------------------------------------------------------
def parse_ratio(value) -> float:
    """0.2, "0.2" or "1:4" -> share of the strong teacher in [0, 1]."""
    try:
        if isinstance(value, str) and ":" in value:
            a, b = (float(x) for x in value.split(":"))
            if a < 0 or b < 0 or a + b <= 0:
                raise ValueError
            r = a / (a + b)
        else:
            r = float(value)
    except (TypeError, ValueError):
        raise UserError(f"ratio must be a number in [0, 1] or 'a:b', got {value!r}") from None
    if not 0.0 <= r <= 1.0:
        raise UserError(f"ratio must be in [0, 1], got {value!r}")
    return r


def _check_teachers(ctx) -> None:
    if len(ctx.teachers) != 2:
        raise UserError(
            f"mix needs exactly 2 teachers (a strong: long-CoT/large one and an easy: short-CoT/small one), "
            f"got {len(ctx.teachers)}"
        )


def _matches(ref, name: str) -> bool:
    """Whether the teacher ``ref`` is the one the user named ``name`` (its spec, as given or resolved)."""
    if name == ref.spec:
        return True
    try:
        return resolve_model(name).spec == ref.spec
    except UserError:
        return False


def _named(teachers, name: str, role: str) -> int:
    """Index of the teacher named for ``role``; one line naming the teachers when none is."""
    hits = [i for i, t in enumerate(teachers) if _matches(t, name)]
    if len(hits) != 1:
        raise UserError(f"mix: {role}: {name!r} is not one of this run's teachers ({', '.join(t.spec for t in teachers)})")
    return hits[0]


def _size(ref) -> int | None:
    """A teacher's parameter count, None where it has none (scripted) or it cannot be read."""
    try:
        return int(ref.n_params)
    except UserError:
        return None


def _by_size(teachers) -> tuple[list[int], str]:
    """(strong index, easy index) by parameter count when they differ by CAPACITY_RATIO or more;
    otherwise the one-line refusal."""
    sizes = [_size(t) for t in teachers]
    a, b = (t.spec for t in teachers)
    if None not in sizes and max(sizes) >= CAPACITY_RATIO * min(sizes):
        strong = sizes.index(max(sizes))
        return [strong, 1 - strong], "parameters"
    shown = ", ".join(f"{t.spec} {human_size(n) if n else 'size unknown'}" for t, n in zip(teachers, sizes))
    raise UserError(
        f"mix: cannot tell the strong teacher from the easy one ({shown}): name them, e.g. "
        f"strategy_params {{strong: {a}, easy: {b}}}"
    )


def assign_roles(teachers, p) -> tuple[list, str]:
    """The two teachers as (strong, easy) and how that was decided ("named" or "parameters").

    Never by position: ``strong`` / ``easy`` name them (one names the other too); with neither, the
    larger model is the strong one (Mix-Large) where sizes tell them apart; mix-long needs names."""
    named = {k: _named(teachers, getattr(p, k), k) for k in ROLE_KEYS if getattr(p, k) is not None}
    if len(named) == 2 and named["strong"] == named["easy"]:
        raise UserError(f"mix: strong and easy name the same teacher ({p.strong!r}); give one teacher each")
    if named:
        strong = named["strong"] if "strong" in named else 1 - named["easy"]
        return [teachers[strong], teachers[1 - strong]], "named"
    if p.preset == "mix-long":
        a, b = (t.spec for t in teachers)
        raise UserError(
            f"mix: preset mix-long needs the roles named (long vs short CoT is not a size): "
            f"strategy_params {{strong: <long-CoT teacher>, easy: <short-CoT teacher>}}, e.g. "
            f"{{strong: {a}, easy: {b}}}"
        )
    order, how = _by_size(teachers)
    return [teachers[i] for i in order], how


def source_names(p, ordered) -> tuple[str, str]:
    """The sources' names, ``"<spec> [<role>]"``, strong first."""
    strong, easy = ordered
    return f"{strong.spec} [{p.roles[0]}]", f"{easy.spec} [{p.roles[1]}]"


# -- the mix ------------------------------------------------------------------------------------
def _draw(records: list[dict], k: int, rng: random.Random, avoid: set) -> list[dict]:
    """``k`` records without replacement, preferring questions not in ``avoid`` and not yet drawn."""
    if k <= 0:
        return []
    order = list(records)
    rng.shuffle(order)
    picked, seen, rest = [], set(), []
    for r in order:  # first pass: new questions only
        if len(picked) < k and r["doc_id"] not in avoid and r["doc_id"] not in seen:
            picked.append(r)
            seen.add(r["doc_id"])
        else:
            rest.append(r)
    for r in rest:  # then anything left, in the same shuffled order
        if len(picked) >= k:
            break
        picked.append(r)
    return picked


def plan_counts(n_target: int, ratio: float, avail_strong: int, avail_easy: int, shortfall: str) -> tuple[int, int]:
    """How many rationales each teacher gives (see the module docstring's ``shortfall``)."""
    want_s = round(ratio * n_target)
    want_e = n_target - want_s
    take_s, take_e = min(want_s, avail_strong), min(want_e, avail_easy)
    if take_s == want_s and take_e == want_e:
        return take_s, take_e
    if shortfall == "fill":
        take_e = min(avail_easy, n_target - take_s)
        take_s = min(avail_strong, n_target - take_e)
    elif shortfall == "ratio":
        for m in range(n_target, -1, -1):
            s = round(ratio * m)
            if s <= avail_strong and m - s <= avail_easy:
                return s, m - s
    return take_s, take_e


def mix_records(
    strong: list[dict], easy: list[dict], *, ratio: float, size="short", distinct_questions=True, shortfall="keep", seed: int = 0
) -> tuple[list[dict], dict]:
    """The mixed training set from each teacher's own correct rationales, and what happened."""
    strong = [r for r in strong if r.get("correct", True)]
    easy = [r for r in easy if r.get("correct", True)]
    if size == "short":
        n_target = len(easy)
    elif size == "all":
        n_target = len({r["doc_id"] for r in strong} | {r["doc_id"] for r in easy})
    else:
        n_target = int(size)
    want_s = round(ratio * n_target)
    n_s, n_e = plan_counts(n_target, ratio, len(strong), len(easy), shortfall)
    rng = random.Random(f"cotgap-mix:{seed}")
    picked_s = _draw(strong, n_s, rng, set())
    avoid = {r["doc_id"] for r in picked_s} if distinct_questions else set()
    picked_e = _draw(easy, n_e, rng, avoid)
    mixed = picked_s + picked_e
    rng.shuffle(mixed)
    total = len(mixed)
    both = {r["doc_id"] for r in strong} & {r["doc_id"] for r in easy}
    info = {
        "target_size": n_target,
        "wanted": {"strong": want_s, "easy": n_target - want_s},
        "taken": {"strong": len(picked_s), "easy": len(picked_e)},
        "available": {"strong": len(strong), "easy": len(easy)},
        "ratio_target": ratio,
        "ratio_achieved": (len(picked_s) / total) if total else None,
        "questions": len({r["doc_id"] for r in mixed}),
        "questions_solved_by_both": len(both),
        "questions_in_both_draws": len({r["doc_id"] for r in picked_s} & {r["doc_id"] for r in picked_e}),
        "shortfall": {
            role: {"wanted": w, "available": a}
            for role, w, a in (("strong", want_s, len(strong)), ("easy", n_target - want_s, len(easy)))
            if a < w
        },
    }
    return mixed, info


# -- the strategy's steps --------------------------------------------------------------------------
def generate_sources(ctx) -> dict:
    _check_teachers(ctx)
    p = ctx.params
    ordered, how = assign_roles(ctx.teachers, p)
    names = source_names(p, ordered)
    ctx.record(
        "mix.params",
        {
            "ratio": p.share,
            "ratio_fraction": p.ratio_fraction,
            "preset": p.preset,
            "size": p.size,
            "distinct_questions": p.distinct_questions,
            "shortfall": p.shortfall,
            "seed": p.seed_for(ctx.config.seed),
            "published_batching": p.published_batching,
            "preset_doc": PRESETS[p.preset]["doc"] if p.preset else None,
            "roles": {names[0]: p.roles[0], names[1]: p.roles[1]},
            "roles_by": how,
            "strong": ordered[0].spec,
            "easy": ordered[1].spec,
        },
    )
    return {name: ctx.generate_rationales(t, source=name) for name, t in zip(names, ordered)}


def train_mix(ctx, data: dict):
    _check_teachers(ctx)
    p = ctx.params
    s_name, e_name = source_names(p, assign_roles(ctx.teachers, p)[0])
    missing = [n for n in (s_name, e_name) if n not in data]
    if missing:
        raise UserError(f"mix: no kept data for source(s) {', '.join(missing)}")
    mixed, info = mix_records(
        data[s_name],
        data[e_name],
        ratio=p.share,
        size=p.size,
        distinct_questions=p.distinct_questions,
        shortfall=p.shortfall,
        seed=p.seed_for(ctx.config.seed),
    )
    roles = {"strong": s_name, "easy": e_name}
    ctx.record("mix.available", {roles[k]: v for k, v in info["available"].items()})
    ctx.record("mix.examples_per_source", {roles[k]: v for k, v in info["taken"].items()})
    ctx.record(
        "mix.ratio",
        {
            "target": info["ratio_target"],
            "target_fraction": p.ratio_fraction,
            "achieved": info["ratio_achieved"],
            "target_size": info["target_size"],
            "size": len(mixed),
            "questions": info["questions"],
            "questions_solved_by_both": info["questions_solved_by_both"],
            "questions_in_both_draws": info["questions_in_both_draws"],
        },
    )
    if info["shortfall"]:
        ctx.record(
            "mix.shortfall",
            {
                "policy": p.shortfall,
                "sources": {roles[k]: v for k, v in info["shortfall"].items()},
                "note": "a teacher had fewer correct rationales than its share: all of them were taken",
            },
        )
        ctx.log(f"  mix: shortfall {info['shortfall']} (policy {p.shortfall})")
    ctx.write_jsonl(ctx.workdir(NAME) / "mixed.jsonl", mixed)
    ctx.log(
        f"  mix: {info['taken']['strong']} from {s_name} + {info['taken']['easy']} from {e_name} "
        f"(target ratio {p.share:.3g}, achieved {info['ratio_achieved']})"
    )

    overrides = published_overrides(ctx.training_config()) if p.published_batching else {}
    result = ctx.train_student(mixed, **overrides)
    _record_training(ctx, result, len(mixed), overrides, p.published_batching)
    return result


# -- the training budget ------------------------------------------------------------------------
def _processes(cfg) -> int:
    """Training processes of ``cfg`` where known before launch (1 in this process)."""
    if hasattr(cfg, "processes"):
        return int(cfg.processes())
    return int(getattr(cfg, "num_processes", None) or 1) if getattr(cfg, "launcher", "inprocess") != "inprocess" else 1


def batching(cfg, processes: int | None = None) -> dict:
    """Per-device batch, accumulation, processes (``processes``: as the training ran, else as far as
    ``cfg`` knows before launch) and the global batch, their product."""
    processes = int(processes or _processes(cfg))
    per_device = cfg.per_device_batch_size
    return {
        "per_device_batch_size": per_device,
        "grad_accum": cfg.grad_accum,
        "processes": processes,
        "global_batch": per_device * cfg.grad_accum * processes,
    }


def published_overrides(cfg) -> dict:
    """Training overrides for the paper's batching on ``cfg``'s processes: 5 per device x 4
    accumulation steps, at the run's own epochs (``max_steps`` lifted)."""
    return {"per_device_batch_size": PUBLISHED_PER_DEVICE_BATCH, "grad_accum": PUBLISHED_GRAD_ACCUM, "max_steps": -1}


def _shape(b: dict) -> str:
    """``"5 per device x 4 accumulation x 2 processes = 40"``."""
    return (
        f"{b['per_device_batch_size']} per device x {b['grad_accum']} accumulation x {b['processes']} "
        f"process{'es' if b['processes'] != 1 else ''} = {b['global_batch']}"
    )


def _record_training(ctx, result, n_examples: int, overrides: dict, published: bool) -> None:
    """``mix.training`` (both batchings and their updates) and ``mix.batching`` (both in words)."""
    plain_cfg = ctx.training_config()
    cfg = ctx.training_config(**overrides)
    ran = ((getattr(result, "extra", None) or {}).get("run") or {}).get("processes")  # as launched
    mine, plain = batching(cfg, ran), batching(plain_cfg, ran)
    plain_updates = plain_cfg.updates(n_examples)
    ctx.record(
        "mix.training",
        {
            **mine,
            "updates": result.updates,
            "examples": result.examples,
            "plain_batching": plain,
            "plain_updates": plain_updates,
            "published_batching": published,
        },
    )
    ctx.record("mix.batching", {"batching": _shape(mine), "plain_batching": _shape(plain)})
