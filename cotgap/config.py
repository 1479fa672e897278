"""Run configuration: everything the ``cotgap run`` flags hold, loadable from a YAML file.

Precedence: built-in defaults < config file < command-line flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cotgap.backends.training import TrainConfig
from cotgap.errors import UserError
from cotgap.protocol.constants import REFERENCE_STRATEGY, RUN_SEED, SYNTHETIC_N

DEFAULT_TASK = "synthetic_object_counting"
DEFAULT_STUDENT = "smollm2-135m-instruct"
DEFAULT_TEACHERS = ("qwen2.5-coder-1.5b-instruct",)


@dataclass
class GenerationConfig:
    max_new_tokens: int | None = None  # None: the task YAML's max_gen_toks
    backend: str = "auto"  # auto | vllm | hf
    # vLLM engine settings per model name (or "default"): see cotgap/backends/engines.py
    engines: dict = field(default_factory=dict)
    # in-process vLLM answers this many requests per call while generating rationales, and the
    # request ledger persists them after each call (what a kill can lose; the API and
    # transformers backends persist every answer as it arrives)
    ledger_chunk: int = 256
    # transformers backend, rationale generation: requests per batch. 1 keeps each output
    # independent of which requests share its batch (padding shifts near-tie greedy choices), so a
    # resumed generation equals an uninterrupted one; larger is faster and gives that up
    hf_batch_size: int = 1

    def engine_args(self, spec: str) -> dict:
        """The resolved ``vllm.LLM`` arguments for the model the user named ``spec``."""
        from cotgap.backends import engines

        return engines.for_model(engines.parse(self.engines), spec)

    def stage_inputs(self) -> dict:
        """What of this section changes generated text (for stage keys): not parallel sizes,
        memory limits or the ledger's chunk size."""
        from cotgap.backends import engines

        parsed = engines.parse(self.engines)
        names = sorted(set(parsed) | {engines.DEFAULT_KEY})
        return {"max_new_tokens": self.max_new_tokens, "backend": self.backend, "hf_batch_size": self.hf_batch_size,
                "engines": {n: engines.output_key(engines.for_model(parsed, n)) for n in names}}


@dataclass
class RunConfig:
    strategy: str = REFERENCE_STRATEGY
    task: str = DEFAULT_TASK
    student: str = DEFAULT_STUDENT
    # Empty: the strategy's own default teachers if it registered some, else DEFAULT_TEACHERS.
    teachers: list[str] = field(default_factory=list)
    out: str | None = None
    limit: int | None = None
    seed: int = RUN_SEED
    data_dir: str | None = None
    include_path: list[str] = field(default_factory=list)
    synthetic_n: int = SYNTHETIC_N
    scoring: str = "robust"
    threads: int | None = None
    train_shots: int = 0  # few-shot exemplars in the *training* prompt (0: question only)
    bootstrap_iters: int = 10000
    ablation: str | None = None
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    strategy_params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_NESTED = {"generation": GenerationConfig, "training": TrainConfig}


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise UserError(f"config {where}: expected a mapping, got {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise UserError(f"config {where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(names)})")
    kwargs = {}
    for k, v in data.items():
        if k in _NESTED and cls is RunConfig:
            kwargs[k] = _build(_NESTED[k], v or {}, f"{where}.{k}")
        else:
            kwargs[k] = v
    return cls(**kwargs)


def load(path: str | None, overrides: dict) -> RunConfig:
    data: dict = {}
    if path:
        p = Path(path)
        if not p.exists():
            raise UserError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise UserError(f"config file {path} is not valid YAML: {first}") from None
        if not isinstance(data, dict):
            raise UserError(f"config file {path}: top level must be a mapping")
        if "teacher" in data:  # singular accepted for convenience
            t = data.pop("teacher")
            data["teachers"] = t if isinstance(t, list) else [t]
    for k, v in overrides.items():
        if v is None or v == () or v == []:
            continue
        data[k] = list(v) if isinstance(v, tuple) else v
    cfg = _build(RunConfig, data, path or "flags")
    _validate(cfg)
    return cfg


def _validate(cfg: RunConfig) -> None:
    from cotgap.backends import engines
    from cotgap.models import api

    if isinstance(cfg.teachers, (str, dict)):
        cfg.teachers = [cfg.teachers]
    if not isinstance(cfg.teachers, list):
        raise UserError(f"teachers must be a list of model names, got {cfg.teachers!r}")
    # an API teacher (a mapping, or openai:<model>@<url>) becomes its canonical spec string
    cfg.teachers = [api.parse(t).spec() if api.is_api_spec(t) else t for t in cfg.teachers]
    if not all(isinstance(t, str) and t for t in cfg.teachers):
        raise UserError(f"teachers must be model names, got {cfg.teachers!r}")
    engines.parse(cfg.generation.engines)
    for name in ("ledger_chunk", "hf_batch_size"):
        value = getattr(cfg.generation, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"generation.{name} must be a positive integer, got {value!r}")
    if cfg.limit is not None and (not isinstance(cfg.limit, int) or cfg.limit < 1):
        raise UserError(f"limit must be a positive integer, got {cfg.limit!r}")
    if cfg.scoring not in ("robust", "strict"):
        raise UserError(f"scoring must be 'robust' or 'strict', got {cfg.scoring!r}")
    if not isinstance(cfg.strategy_params, dict):
        raise UserError("strategy_params must be a mapping")
    if cfg.training.method not in ("lora", "full"):
        raise UserError(f"training.method must be 'lora' or 'full', got {cfg.training.method!r}")
