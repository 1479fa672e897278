"""Run configuration: everything the ``cotgap run`` flags hold, loadable from a YAML file.

Precedence: built-in defaults < config file < command-line flags.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cotgap import schema
from cotgap.errors import UserError
from cotgap.protocol.constants import ABLATIONS, ALPHA, FEWSHOT_K, REFERENCE_STRATEGY, RUN_SEED, SYNTHETIC_N, SYNTHETIC_N_MAX
from cotgap.training_config import TrainConfig

DEFAULT_TASK = "synthetic_object_counting"
DEFAULT_STUDENT = "smollm2-135m-instruct"
DEFAULT_TEACHERS = ("qwen2.5-coder-1.5b-instruct",)

#: The embedded default: what ``cotgap run`` (or ``--strategy plain``) runs when no config file,
#: task, student or teacher names the experiment: a whole experiment that runs offline in minutes
#: on a CPU; its measured verdicts and how it was chosen: docs/embedded-default.md. Naming any part
#: of the experiment, or another strategy (each has its
#: own documented default run), drops all of it: the field defaults below (the paper's LoRA setting
#: as LLaMA-Factory applies it, cotgap/training_config.py) apply then.
EMBEDDED_DEFAULT = {
    "task": "synthetic_web_of_lies",
    "student": DEFAULT_STUDENT,
    "teachers": ["scripted"],
    # 250 seeded examples -> 150 train / 100 test; full fine-tuning, 60 updates of one example;
    # measured in float32 and with bf16 forced, at two seeds (docs/embedded-default.md)
    "synthetic_n": 250,
    # trained on the 3-shot prompt it is evaluated with, only the question's rationale trained
    # (the exemplars' answers are the same in every example): trained on the bare question, this
    # student met the exemplars first at evaluation and its verdict changed with seed and dtype
    "train_shots": 3,
    "training": {"method": "full", "learning_rate": 1e-4, "max_steps": 60, "mask_history": True},
}


def embedded_default_applies(config_file: str | None, overrides: dict) -> bool:
    """True when nothing names the experiment (see EMBEDDED_DEFAULT)."""
    named = any(overrides.get(k) for k in ("task", "student", "teachers"))
    strategy = overrides.get("strategy") or REFERENCE_STRATEGY
    return config_file is None and not named and strategy == REFERENCE_STRATEGY


@dataclass
class GenerationConfig:
    max_new_tokens: int | None = field(default=None, metadata={"min": 1})  # None: the task YAML's max_gen_toks
    backend: str = field(default="auto", metadata={"choices": ("auto", "vllm", "hf")})
    # vLLM engine settings per model name (or "default"): see cotgap/backends/engines.py
    engines: dict = field(default_factory=dict)
    # in-process vLLM answers this many requests per call while generating rationales, and the
    # request ledger persists them after each call (what a kill can lose; the API and
    # transformers backends persist every answer as it arrives)
    ledger_chunk: int = field(default=256, metadata={"min": 1})
    # transformers backend, rationale generation: requests per batch. 1 keeps each output
    # independent of which requests share its batch (padding shifts near-tie greedy choices), so a
    # resumed generation equals an uninterrupted one; larger is faster and gives that up
    hf_batch_size: int = field(default=1, metadata={"min": 1})
    # rationale generation budget per teacher: {model name as given: max new tokens}; a long-CoT
    # teacher needs room to reach its answer (a cut rationale has none and is not kept)
    budgets: dict = field(default_factory=dict)
    # a reasoning model's separate reasoning (API reasoning_content): trained with the reply, or dropped
    reasoning: str = field(default="include", metadata={"choices": ("include", "drop")})

    def check(self) -> None:
        """Budgets are positive token counts (``cotgap.schema`` calls this)."""
        for name, n in self.budgets.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise UserError(f"generation.budgets.{name} must be a positive number of tokens, got {n!r}")

    def budget_for(self, spec: str) -> int | None:
        """The generation budget for the teacher named ``spec``: its own, else ``max_new_tokens``
        (None: the task YAML's ``max_gen_toks``)."""
        return self.budgets.get(spec, self.max_new_tokens)

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
        return {
            "max_new_tokens": self.max_new_tokens,
            "backend": self.backend,
            "hf_batch_size": self.hf_batch_size,
            "engines": {n: engines.output_key(engines.for_model(parsed, n)) for n in names},
            **({"budgets": dict(sorted(self.budgets.items()))} if self.budgets else {}),
            **({"reasoning": self.reasoning} if self.reasoning != "include" else {}),
        }


@dataclass
class RunConfig:
    """A run's whole configuration; ``cotgap.schema`` checks every field's type and range."""

    strategy: str = field(default=REFERENCE_STRATEGY, metadata={"not": ("",)})
    task: str = field(default=DEFAULT_TASK, metadata={"not": ("",)})
    student: str = field(default=DEFAULT_STUDENT, metadata={"not": ("",)})
    # Empty: the strategy's own default teachers if it registered some, else DEFAULT_TEACHERS.
    # Items: model names, or API teachers as mappings (cotgap.models.api).
    teachers: list = field(default_factory=list)
    out: str | None = field(default=None, metadata={"not": ("",)})
    limit: int | None = field(default=None, metadata={"min": 1})
    seed: int = field(default=RUN_SEED, metadata={"min": 0})
    data_dir: str | None = field(default=None, metadata={"not": ("",)})
    include_path: list[str] = field(default_factory=list)
    # synthetic tasks: examples generated, at least 5 so both 3:2 splits hold two or more
    synthetic_n: int = field(default=SYNTHETIC_N, metadata={"min": 5, "max": SYNTHETIC_N_MAX})
    scoring: str = field(default="robust", metadata={"choices": ("robust", "strict")})
    threads: int | None = field(default=None, metadata={"min": 1})
    # few-shot exemplars in the *training* prompt (0: question only)
    train_shots: int = field(default=0, metadata={"min": 0, "max": FEWSHOT_K})
    bootstrap_iters: int = field(default=10000, metadata={"min": 100})
    # level of McNemar's exact test that decides the run's verdict (report only: no stage uses it)
    alpha: float = field(default=ALPHA, metadata={"gt": 0, "lt": 1})
    ablation: str | None = field(default=None, metadata={"choices": ABLATIONS})
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    strategy_params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load(path: str | None, overrides: dict, *, base: dict | None = None) -> RunConfig:
    """The run config: defaults < ``base`` (the embedded default, when it applies) < the YAML file
    at ``path`` < ``overrides`` (the flags), every value checked before any work."""
    data = copy.deepcopy(base or {})
    data.update(read_file(path) if path else {})
    for k, v in overrides.items():
        if v is None or v == () or v == []:
            continue
        data[k] = list(v) if isinstance(v, tuple) else v
    cfg = schema.build(RunConfig, normalised(data), "")
    _validate(cfg)
    return cfg


def read_file(path: str) -> dict:
    """A config file's top-level mapping; anything unreadable is a one-line refusal."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {path} " + ("is not a file" if p.exists() else "does not exist"))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"config file {path} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"config file {path} is not valid YAML: {first}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path}: top level must be a mapping")
    return data


def normalised(data: dict) -> dict:
    """Conveniences of the file form: ``teacher:`` for one teacher, and a single teacher or include
    path given as a scalar rather than a list."""
    data = dict(data)
    if "teacher" in data:
        data["teachers"] = data.pop("teacher")
    for key in ("teachers", "include_path"):
        if isinstance(data.get(key), (str, dict)):
            data[key] = [data[key]]
    return data


def _validate(cfg: RunConfig) -> None:
    """Rules the field schema cannot state: teacher entries and engine settings."""
    from cotgap.backends import engines, tracking
    from cotgap.models import api

    if not all(isinstance(t, (str, dict)) and t for t in cfg.teachers):
        raise UserError(f"teachers must be model names or API teacher mappings, got {cfg.teachers!r}")
    # an API teacher (a mapping, or openai:<model>@<url>) becomes its canonical spec string
    cfg.teachers = [api.parse(t).spec() if api.is_api_spec(t) else t for t in cfg.teachers]
    if not all(isinstance(t, str) and t for t in cfg.teachers):
        raise UserError(f"teachers must be model names, got {cfg.teachers!r}")
    engines.parse(cfg.generation.engines)
    tracking.check(cfg.training.report_to)
    for path in cfg.include_path:
        _existing_dir(path, "include_path")
    if cfg.data_dir is not None:
        _existing_dir(cfg.data_dir, "data_dir")


def _existing_dir(path: str, what: str) -> None:
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{what} {path} does not exist")
    if not p.is_dir():
        raise UserError(f"{what} {path} is a file; a folder is needed")
    if not os.access(p, os.R_OK | os.X_OK):
        raise UserError(f"{what} {path} cannot be read (permission denied)")
