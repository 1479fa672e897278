"""micota — Mid-CoT Teacher Assistant distillation (Ding, Wang, Zhu, Tao, Jiang, Zhou 2025,
"MiCoTA: Bridging the Learnability Gap with Intermediate CoT and Teacher Assistants",
arXiv:2507.01887, code: github.com/OPPO-PersonalAI/MiCoTA).

The method: a small student learns long chain-of-thought badly from a large teacher (the
"learnability gap"), so a *teacher assistant* (TA) of intermediate size writes *intermediate-
length* CoT, and the student is fine-tuned on the TA's correct rationales. The TA is a DARE-TIES
weight merge (made with mergekit) of a long-CoT model and a short-CoT model of the same
architecture and size; the paper reports TA rationales of roughly half the teacher's length.

Stages here:

- generate: (1) every teacher writes one greedy CoT per *train* question (the long CoT); (2) the
  long-CoT parent: ``long_parent`` if given, else the short parent fine-tuned (LoRA by default) on
  the teachers' *correct* long CoT and saved in the merge's ``dtype``; (3) the TA = mergekit
  ``dare_ties`` merge of the two parents (YAML config written to the run dir,
  ``strategy/micota/ta_merge.yml``, and next to the merged model); (4) the TA writes CoT for the
  train split; (5) optionally the short and the long parent too, only to measure lengths.
  Rationale lengths are recorded in *tokens of the student's tokenizer*
  (``strategy_records.rationale_tokens``: teacher, TA, the measured parents, and TA/teacher
  ratio). Sources returned: each teacher (``<teacher spec>``) and the TA
  (``TA:dare_ties(<short>,<long>)``), so the report shows both; the parents are not sources.
- filter: each source's correct rationales (the task's own answer extraction).
- train: SFT of the student on the **TA's** kept rationales only — that is the method; the
  teachers' kept data appears in the report (it made the long parent) but is not trained on.

Size rule: student < TA < every model teacher (``ctx.require_smaller``; the scripted teacher is
exempt as everywhere). The TA has the short parent's architecture, so the rule is checked from
configs before any work, and again on the merged model.

Caching: the long parent and the TA are built once per set of inputs under
``$COTGAP_CACHE/micota/`` (default ``~/.cache/cotgap/micota``): ``long-<key>/`` keyed by the short
parent, the exact training examples, the training config and the dtype it is saved in;
``ta-<key>/`` keyed by the merge config with model identities, the seed and the mergekit version.
Each step is also a ``ctx.stage`` of the run (``stages/strategy.micota.*.json``), so the run
records what it used and whether it was built or reused; another run with the same inputs reuses
both folders, and the TA's generations then hit the generation cache too.

Choices the paper leaves open, each a parameter (``strategy_params``) with its default:

- ``short_parent`` ("qwen2.5-coder-0.5b-instruct"): the short-CoT parent and the TA's size.
  Default setting: teacher qwen2.5-coder-1.5b-instruct > TA (0.5B) > student smollm2-135m.
- ``long_parent`` (null): a long-CoT model of the short parent's architecture and size. null:
  made by fine-tuning the short parent on the teachers' correct long CoT (the paper takes an
  existing long-CoT model; at this scale none exists, so we make one).
- ``long_parent_lora`` ({"method": "lora", "epochs": 1.0, "per_device_batch_size": 1, "grad_accum": 2,
  "learning_rate": 3e-4, "mask_history": true, "lora_r": 16, "lora_alpha": 32}): overrides of the
  run's ``training`` section (any TrainConfig field) for
  making the long parent. One epoch at a global batch of 2 makes as many optimizer updates as the
  run's default 2 epochs at batch 4 for half the compute; 1 example per step keeps the peak memory
  of the 0.5B parent's long 3-shot examples under 12 GB; only the long CoT is trained, not the
  exemplars' short answers (``mask_history``: with them the parent kept the short format); lr 3e-4
  and LoRA r16/alpha32 (the recipe as measured) are what made it write long CoT
  (docs/strategies.md, "Measurements behind the defaults", "MiCoTA with a teacher that writes long CoT").
- ``long_parent_shots`` (null): exemplars in the long parent's training prompts; null = the task's
  few-shot count — the prompt the parents and the TA generate from (trained on the bare question,
  the long parent kept the exemplars' short format).
- ``max_new_tokens`` (512): generation budget of the TA and the measured parents.
- ``base_model`` (null): mergekit ``base_model``, the origin of the task vectors. null: the
  short parent itself, so the one task vector is long − short and the TA is
  ``short + weight_long · DARE(long − short)`` — in expectation the point ``weight_long`` of
  the way from the short to the long parent. A separate base (e.g. the shared pre-trained
  model) gives two task vectors, weighted ``weight_long``/``weight_short``, with TIES sign
  election between them.
- ``density`` (0.5): DARE keep probability of delta entries, in (0, 1] (kept ones rescaled by 1/density).
- ``weight_long`` (0.5) / ``weight_short`` (0.5): task-vector weights; ``weight_short`` is
  only used when ``base_model`` is set (the short parent is otherwise the base).
- ``normalize`` (null): mergekit's ``normalize``. null: false with one task vector (true would
  divide ``weight_long`` away), true with two.
- ``int8_mask`` (true): mergekit setting (memory only).
- ``dtype`` ("float32"; or "bfloat16", "float16"): mergekit's compute and output dtype, and the
  dtype the made long parent is saved in, whatever precision it trained in (bf16 on a GPU or on a
  CPU that has it; the same code on every device). Not bfloat16 by default: a long parent made by
  LoRA on a few dozen rationales differs from the short parent by less than bfloat16's resolution
  in most entries, so a bfloat16 merge, or a bfloat16 copy of the long parent, rounds most of the
  task vector away (docs/strategies.md, "Measurements behind the defaults").
- ``merge_seed`` (null → the run's ``seed``): seed of DARE's random dropping; the merge is
  deterministic for a seed and equals ``mergekit-yaml <ta_merge.yml> OUT --random-seed <seed>``.
- ``ta_samples`` (1) / ``ta_temperature`` (0.0): TA rationales per train question; greedy by
  default like the paper's data generation; >1 samples needs a temperature > 0.
- ``measure_short_parent`` (true): also generate the short parent's rationales, only to
  report their token length next to the teacher's and the TA's.
- ``measure_long_parent`` (true): the same for the long parent, so that the report shows whether
  the TA's length lies strictly between its parents' (``micota.ta_intermediate`` and one terminal
  line; see ``ta_intermediate``). One more pass of a TA-sized model over the train split.

Default teacher (no ``--teacher``): ``scripted:long``, the synthetic tasks' reference teacher
writing long step-by-step CoT (labelled "not a language model" in every report): no zoo model
writes long CoT at this size.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from cotgap import PlannedGeneration, ProtocolError, Strategy, UserError, hookimpl

NAME = "micota"
TA_PREFIX = "TA:"
CACHE_VERSION = 1
DEFAULT_TEACHERS = ("scripted:long",)
#: making the long parent: 15 updates of one example each (the same 15 updates as one epoch of the
#: 30 default rationales at a global batch of 2, at half the compute: one 0.5B update on a ~750-token
#: 3-shot long-CoT example is ~18 s of CPU in float32, bench/micota_budget.py), at 3x the paper's
#: learning rate, only the long CoT trained (mask_history: the 3 exemplars' short-CoT answers trained
#: too kept the short format: 82.9 tokens vs the short parent's 86.8), LoRA r16/alpha32 as when the
#: recipe was measured (docs/strategies.md)
LONG_PARENT_TRAINING = {
    "method": "lora",
    "epochs": 1.0,
    "per_device_batch_size": 1,
    "grad_accum": 1,
    "max_steps": 15,
    "learning_rate": 3e-4,
    "mask_history": True,
    "lora_r": 16,
    "lora_alpha": 32,
}


class MiCoTA(Strategy):
    """MiCoTA (Ding et al. 2025). ``filter`` is the base class's (each source's correct records);
    ``train`` uses the teacher assistant's kept rationales only."""

    name = NAME
    description = "MiCoTA: student learns from a DARE-TIES merged teacher assistant's intermediate-length CoT (Ding et al. 2025)"
    #: a long-CoT teacher: the scripted reference teacher's long step-by-step CoT (labelled as such in
    #: every report; no zoo model writes long CoT at this size, see docs/strategies.md)
    default_teachers = DEFAULT_TEACHERS

    @dataclass
    class Params:
        """The teachers write one greedy rationale each (no ``samples`` / ``temperature``: the TA's
        are ``ta_samples`` / ``ta_temperature``); every rule is a field's range or ``check``, run
        once by the core."""

        short_parent: str = "qwen2.5-coder-0.5b-instruct"
        long_parent: str | None = None
        long_parent_lora: dict = field(default_factory=lambda: dict(LONG_PARENT_TRAINING))
        long_parent_shots: int | None = field(default=None, metadata={"min": 0})
        base_model: str | None = None
        density: float = field(default=0.5, metadata={"gt": 0.0, "max": 1.0})  # DARE keeps a fraction > 0
        weight_long: float = 0.5
        weight_short: float = 0.5
        normalize: bool | None = None
        int8_mask: bool = True
        dtype: str = field(default="float32", metadata={"choices": ("float32", "bfloat16", "float16")})
        merge_seed: int | None = None
        ta_samples: int = field(default=1, metadata={"min": 1})
        ta_temperature: float = field(default=0.0, metadata={"min": 0.0})
        max_new_tokens: int | None = field(default=512, metadata={"min": 1})
        measure_short_parent: bool = True
        measure_long_parent: bool = True

        def check(self) -> None:
            """The TA's sampling rule (the base class's, on the ``ta_`` fields), a short parent, and
            ``long_parent_lora`` keys that are training settings."""
            Strategy.Params.sampling_rule(self.ta_samples, self.ta_temperature, ("ta_samples", "ta_temperature"))
            if not self.short_parent:
                raise UserError("short_parent is required")
            from cotgap import TrainConfig

            known = {f.name for f in fields(TrainConfig)}
            unknown = sorted(set(self.long_parent_lora) - known)
            if unknown:
                raise UserError(f"unknown long_parent_lora key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")

        def merge_seed_for(self, run_seed: int) -> int:
            """DARE's seed: ``merge_seed``, or the run's ``seed`` when it is null."""
            return int(run_seed if self.merge_seed is None else self.merge_seed)

    def check(self, ctx):
        """Refuse before the baseline: student < TA < teacher violated, unmergeable parents."""
        for ref in _models(ctx, ctx.params):
            if ref is not None:
                ctx.will_need(ref)  # a zoo parent is converted in the background while the baseline runs

    def generate(self, ctx):
        return generate_with_ta(ctx)

    plan_note = "the teacher assistant's generations (a model merged during the run) are not planned as a generation job"

    def planned_generations(self, params, teachers):
        """Every teacher, greedy, and the short parent when it is measured; the teacher assistant
        (merged during the run) has no name before it exists (``plan_note``)."""
        needs = [PlannedGeneration(t) for t in teachers]
        if params.measure_short_parent:
            needs.append(PlannedGeneration(params.short_parent))
        return needs

    def train(self, ctx, data):
        records = [r for name, recs in data.items() if name.startswith(TA_PREFIX) for r in recs]
        if not records:
            raise UserError(
                "micota: the teacher assistant got no train question right, so there is nothing to "
                "train the student on (try a larger --limit, a stronger long parent, or a higher "
                "weight_long)"
            )
        return ctx.train_student(records)


@hookimpl
def register_strategies(register):
    register(MiCoTA())


# -- helpers ------------------------------------------------------------------------------------
def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cache_root(ctx) -> Path:
    return ctx.artifact_dir("micota")


def _name(ref) -> str:
    if ref.kind != "local":
        return ref.spec
    p = Path(ref.spec)  # a trained model's folder is ".../<run>/model": keep the informative part
    return f"{p.parent.name}-{p.name}" if p.name == "model" else p.name


def check_sizes(ctx, ta, *, what: str = "teacher assistant") -> dict:
    """Size rule for the TA: student < TA < every (model) teacher. Returns the counts."""
    sizes = {"student": ctx.student.n_params, "ta": ta.n_params, "teachers": {}}
    try:
        ctx.require_smaller(ctx.student, ta)
    except ProtocolError:
        raise ProtocolError(
            f"micota: the {what} {ta.spec} ({sizes['ta']:,} parameters) is not larger than the student "
            f"{ctx.student.spec} ({sizes['student']:,}); MiCoTA requires student < TA < teacher"
        ) from None
    for t in ctx.teachers:
        if t.kind == "scripted":
            sizes["teachers"][t.spec] = None  # not a model: exempt, as in the core rule
            continue
        try:
            ctx.require_smaller(ta, t)
        except ProtocolError:
            raise ProtocolError(
                f"micota: the {what} {ta.spec} ({sizes['ta']:,} parameters) is not smaller than the teacher "
                f"{t.spec} ({t.n_params:,}); MiCoTA requires student < TA < teacher"
            ) from None
        sizes["teachers"][t.spec] = t.n_params
    return sizes


SHAPE_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
)


def _shape(ctx, ref) -> dict:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(ref.path(log=ctx.log)).to_dict()
    return {k: cfg.get(k) for k in SHAPE_KEYS}


def _same_shape(ctx, short, other, role: str) -> None:
    """Merging needs one architecture and size (compared on the configs, not on parameter counts:
    a zoo model's count is the pinned tied-embedding one, its converted folder may be untied)."""
    a, b = _shape(ctx, short), _shape(ctx, other)
    if a != b:
        diff = ", ".join(f"{k} {a[k]} vs {b[k]}" for k in SHAPE_KEYS if a[k] != b[k])
        raise UserError(
            f"micota: {role} {other.spec} must have the short parent's architecture and size to be "
            f"merged with it ({short.spec}): {diff}"
        )


def token_stats(records: list[dict], tokenizer) -> dict:
    def n_tok(r):
        return len(tokenizer(r["response"].strip(), add_special_tokens=False)["input_ids"])

    def summary(rs):
        if not rs:
            return {"n": 0}
        toks = [n_tok(r) for r in rs]
        return {"n": len(toks), "mean": round(statistics.mean(toks), 1), "median": statistics.median(toks)}

    return {"all": summary(records), "correct": summary([r for r in records if r.get("correct")])}


def _ratio(a: dict, b: dict, part: str):
    x, y = a[part].get("mean"), b[part].get("mean")
    return round(x / y, 3) if x is not None and y else None


def _cached_stage(ctx, name: str, inputs: dict, folder: Path, what: str, make) -> dict:
    """``ctx.stage`` for a step whose artefact lives in the cross-run cache ``folder``: reused when
    another run built it (``micota.json`` marks it finished), else ``make()`` builds it; rebuilt if
    it vanished. (``make``'s info must not use ``key``/``seconds``: the stage record owns them.)"""

    def build() -> dict:
        done = folder / "micota.json"
        if done.exists():
            ctx.log(f"  micota: {what} reused from cache {folder}")
            return {**json.loads(done.read_text()), "cache": "reused"}
        info = make()
        done.write_text(json.dumps({**info, "inputs": inputs}, indent=2))
        return {**info, "cache": "built"}

    rec = ctx.stage(name, inputs, build)
    if not (Path(rec["path"]) / "config.json").exists():
        rec = {**rec, **build()}
    return rec


# -- the long-CoT parent --------------------------------------------------------------------------
def generation_shots(ctx) -> int:
    """The exemplars of the task's generation prompt (what the parents and the TA write from)."""
    return int(getattr(ctx.train_task().config, "num_fewshot", None) or 0)


def make_long_parent(ctx, short, records: list[dict], lora: dict, dtype: str, shots: int | None = None) -> dict:
    """Fine-tune the short parent on the teachers' correct long CoT, once per inputs (cached), and
    save it in the merge's ``dtype``: whatever precision training ran in (bf16 on a GPU or a bf16
    CPU), a float32 merge then sees the whole fine-tuning delta. Its prompts carry ``shots``
    exemplars (None: the run's ``train_shots``): trained on the prompt it will generate from (the task's few-shot prompt, whose
    exemplars are short CoT), it writes long CoT there; trained on the bare question it keeps the
    exemplars' short format (docs/strategies.md)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(short.path(log=ctx.log))
    examples = ctx.training_examples(records, tokenizer, train_shots=shots)
    # the long parent trains at its own epochs (a sweep's update budget is the student's: ctx.train_model)
    cfg = ctx.training_config(**{"max_steps": -1, **lora})
    inputs = {
        "version": CACHE_VERSION,
        "step": "long_parent",
        "short_parent": short.fingerprint,
        "examples": _key([[e["prompt"], e["completion"]] for e in examples]),
        "n": len(examples),
        "training": cfg.stage_inputs(),
        "save_dtype": dtype,
    }
    key = _key(inputs)
    folder = cache_root(ctx) / f"long-{key}"

    def make() -> dict:
        ctx.log(f"  micota: making the long-CoT parent: {short.spec} fine-tuned on {len(records)} teacher rationales")
        t0 = time.time()
        result = ctx.train_model(short, records, folder, trainer_kwargs={"save_dtype": dtype}, train_shots=shots, **lora)
        return {
            "path": result.path,
            "cache_key": key,
            "updates": result.updates,
            "examples": result.examples,
            # what the updates saw (max_steps can stop before every example was seen)
            "examples_seen": min(result.examples, result.updates * cfg.global_batch()),
            "final_loss": (result.loss_history or [{}])[-1].get("loss"),
            "build_seconds": round(time.time() - t0, 1),
        }

    return _cached_stage(ctx, "micota.long_parent", inputs, folder, "long-CoT parent", make)


# -- the teacher assistant ----------------------------------------------------------------------------
def make_ta(ctx, p, seed: int, short, long_ref, long_identity: str, base) -> dict:
    """DARE-TIES merge of the parents with mergekit at ``seed``, once per inputs (cached)."""
    from importlib.metadata import version

    from cotgap_plugins import _merge

    config = _merge.dare_ties_config(
        short_parent=short.path(log=ctx.log),
        long_parent=long_ref.path(log=ctx.log),
        base_model=base.path(log=ctx.log) if base is not None else None,
        density=p["density"],
        weight_long=p["weight_long"],
        weight_short=p["weight_short"],
        normalize=p["normalize"],
        int8_mask=bool(p["int8_mask"]),
        dtype=str(p["dtype"]),
    )
    yaml_text = _merge.to_yaml(config)
    (ctx.workdir("micota") / "ta_merge.yml").write_text(yaml_text)
    identities = {short.path(log=ctx.log): short.fingerprint, long_ref.path(log=ctx.log): long_identity}
    if base is not None:
        identities[base.path(log=ctx.log)] = base.fingerprint
    abstract = json.loads(json.dumps(config))
    abstract["base_model"] = identities[abstract["base_model"]]
    for m in abstract["models"]:
        m["model"] = identities[m["model"]]
    inputs = {
        "version": CACHE_VERSION,
        "step": "ta_merge",
        "config": abstract,
        "seed": seed,
        "mergekit": version("mergekit"),
    }
    key = _key(inputs)
    folder = cache_root(ctx) / f"ta-{key}"

    def make() -> dict:
        ctx.log(
            f"  micota: merging the teacher assistant (dare_ties, density {p['density']}, "
            f"weight_long {p['weight_long']}, seed {seed})"
        )
        ctx.release_models()
        merged = _merge.run_merge(config, folder, seed=seed, yaml_text=yaml_text)
        return {
            "path": str(folder),
            "cache_key": key,
            "merge_seconds": merged["seconds"],
            "mergekit": merged["mergekit"],
            "merge_seed": merged["seed"],
        }

    return _cached_stage(ctx, "micota.ta_merge", inputs, folder, "teacher assistant", make)


# -- the strategy's steps ---------------------------------------------------------------------------------
def _models(ctx, p: dict):
    """The parents and base, validated: models (not scripted), size rule, mergeable shapes."""
    short = ctx.resolve_model(p["short_parent"])
    long_ref = ctx.resolve_model(p["long_parent"]) if p["long_parent"] else None
    base = ctx.resolve_model(p["base_model"]) if p["base_model"] else None
    for ref, role in ((short, "short_parent"), (long_ref, "long_parent"), (base, "base_model")):
        if ref is not None and ref.kind == "scripted":
            raise UserError(f"micota: {role} must be a model, not the scripted teacher")
    # The TA has the short parent's architecture: refuse a size-rule violation before any work.
    check_sizes(ctx, short, what="teacher assistant (short parent's size)")
    if long_ref is not None:
        _same_shape(ctx, short, long_ref, "long_parent")
        if long_ref.fingerprint == short.fingerprint:
            raise UserError("micota: long_parent and short_parent are the same model; nothing to merge")
    if base is not None:
        _same_shape(ctx, short, base, "base_model")
    return short, long_ref, base


def generate_with_ta(ctx) -> dict:
    """The teachers' rationales, the long-CoT parent and the merged TA (both cached), the TA's rationales."""
    p = ctx.params
    seed = p.merge_seed_for(ctx.config.seed)
    short, long_ref, base = _models(ctx, p)  # (already checked by ``check``; cheap to repeat)

    sources = {t.spec: ctx.generate_rationales(t) for t in ctx.teachers}
    info: dict = {"short_parent": short.spec, "merge_seed": seed, "cache_dir": str(cache_root(ctx))}

    if long_ref is None:
        long_cot = [r for t in ctx.teachers for r in sources[t.spec] if r["correct"]]
        if not long_cot:
            raise UserError(
                "micota: the teacher got no train question right, so there is no long CoT to make "
                "the long-CoT parent from (set strategy_params.long_parent, or use a stronger teacher)"
            )
        shots = generation_shots(ctx) if p["long_parent_shots"] is None else int(p["long_parent_shots"])
        lp = make_long_parent(ctx, short, long_cot, dict(p["long_parent_lora"]), p["dtype"], shots)
        long_ref = ctx.resolve_model(lp["path"])
        long_identity = f"micota-long:{lp['cache_key']}"
        info["long_parent"] = {
            "made_from": short.spec,
            "examples": lp.get("examples"),
            "examples_seen": lp.get("examples_seen"),
            "updates": lp.get("updates"),
            "final_loss": lp.get("final_loss"),
            "path": lp["path"],
            "cache": lp.get("cache"),
            "training": dict(p["long_parent_lora"]),
            "train_shots": shots,
            "saved_as": p["dtype"],
        }
        long_name = "long-cot-ft"
    else:
        long_identity = long_ref.fingerprint
        info["long_parent"] = {"given": long_ref.spec}
        long_name = _name(long_ref)

    ta_rec = make_ta(ctx, p, seed, short, long_ref, long_identity, base)
    ta = ctx.resolve_model(ta_rec["path"])
    sizes = check_sizes(ctx, ta)
    ta_source = f"{TA_PREFIX}dare_ties({_name(short)},{long_name})"
    info["ta"] = {
        "source": ta_source,
        "path": ta_rec["path"],
        "n_params": sizes["ta"],
        "cache": ta_rec.get("cache"),
        "merge_seconds": ta_rec.get("merge_seconds"),
        "mergekit": ta_rec.get("mergekit"),
        "config": str(ctx.workdir("micota") / "ta_merge.yml"),
    }
    info["sizes"] = sizes
    sources[ta_source] = ctx.generate_rationales(
        ta, source=ta_source, samples=p["ta_samples"], temperature=p["ta_temperature"], max_new_tokens=p["max_new_tokens"]
    )

    parents = _measure_parents(ctx, p, short, long_ref)
    tokens = _token_record(ctx, sources, ta_source, parents)
    ctx.record("rationale_tokens", tokens)
    ctx.record("micota", info)
    verdict = ta_intermediate(tokens)
    ctx.record("micota.ta_intermediate", verdict)
    if verdict["intermediate"] is False:
        ctx.log(f"  micota: the TA is NOT intermediate: {verdict['reason']}")
    elif verdict["intermediate"]:
        ctx.log(f"  micota: the TA is intermediate: {verdict['reason']}")
    return sources


def ta_intermediate(tokens: dict) -> dict:
    """Whether the TA's rationales are strictly longer than the short parent's and strictly shorter
    than the long parent's (mean student tokens over all train questions) — what makes it a
    *teacher assistant* between its parents rather than a copy of one. ``intermediate`` is None when
    a parent's length was not measured (``measure_*_parent: false``)."""
    means = {who: (tokens.get(who) or {}).get("all", {}).get("mean") for who in ("short_parent", "ta", "long_parent")}
    out = {"measure": "mean rationale tokens (student tokenizer), all train questions", **means}
    if means["short_parent"] is None or means["long_parent"] is None:
        missing = [w for w in ("short_parent", "long_parent") if means[w] is None]
        return {**out, "intermediate": None, "reason": f"not measured: {', '.join(missing)} (measure_* off)"}
    lo, ta, hi = means["short_parent"], means["ta"], means["long_parent"]
    ok = ta is not None and lo < ta < hi
    where = "between" if ok else ("not above the short parent's" if ta is None or ta <= lo else "not below the long parent's")
    return {
        **out,
        "intermediate": ok,
        "reason": f"short parent {lo} < TA {ta} < long parent {hi} tokens"
        if ok
        else f"TA {ta} tokens is {where} (short parent {lo}, long parent {hi}): the student learns from a "
        f"model no different in length from a parent",
    }


def _measure_parents(ctx, p: dict, short, long_ref) -> dict:
    """The parents' own rationales for the train split (``measure_short_parent`` /
    ``measure_long_parent``), generated only to compare their lengths with the TA's, and written to
    ``strategy/micota/<role>_generations.jsonl``; not sources, never trained on."""
    out = {}
    for role, ref in (("short_parent", short), ("long_parent", long_ref)):
        if p[f"measure_{role}"]:
            out[role] = ctx.generate_rationales(ref, source=role.replace("_", " "), max_new_tokens=p["max_new_tokens"])
            ctx.write_jsonl(ctx.workdir("micota") / f"{role}_generations.jsonl", out[role])
    return out


def _token_record(ctx, sources: dict, ta_source: str, parents: dict) -> dict:
    """``rationale_tokens``: lengths in the student's tokens of the teachers', the TA's and the
    measured parents' rationales, and the TA/teacher ratio (the paper's "about half")."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ctx.student.path(log=ctx.log))
    teacher_recs = [r for t in ctx.teachers for r in sources[t.spec]]
    tokens = {
        "tokenizer": ctx.student.spec,
        "teacher": token_stats(teacher_recs, tok),
        "ta": token_stats(sources[ta_source], tok),
    }
    if len(ctx.teachers) > 1:
        tokens["teachers"] = {t.spec: token_stats(sources[t.spec], tok) for t in ctx.teachers}
    tokens.update({role: token_stats(recs, tok) for role, recs in parents.items()})
    tokens["ta_over_teacher"] = {part: _ratio(tokens["ta"], tokens["teacher"], part) for part in ("all", "correct")}
    return tokens
