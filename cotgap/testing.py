"""``cotgap.testing``: a kit for testing strategies (as pytest ships ``pytester``).

- ``build_model`` / ``build_tokenizer``: tiny random-init Llama models with a BPE tokenizer trained
  on the fly (milliseconds to build). They generate and train fast enough for tests of the real
  pipeline (real lm-eval, real transformers Trainer + peft), and their configs give real parameter
  counts for the size rule.
- ``FakeContext``: what a strategy's methods receive, without models: canned rationales from
  ``generate_rationales``, and ``train_student`` calls recorded — for unit tests of one method.
- ``run_strategy``: a strategy object run end to end by the real core on tiny models (scripted
  teacher, transformers backend); returns the run's ``report.json``.
- ``build_runner`` / ``run_config``: the core's ``Runner`` (or its checked config) for a tiny run
  with test defaults (:data:`RUN_DEFAULTS`), for tests of the core itself.
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotgap.protocol.constants import REFERENCE_STRATEGY

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def corpus() -> list[str]:
    from cotgap.tasks import synthetic

    lines = []
    for name in ("synthetic_navigate", "synthetic_boolean_expressions", "synthetic_object_counting"):
        task = synthetic.get(name)
        for ex in task.generate(40, seed=7):
            lines.append(ex["input"])
            lines.append(task.rationale(ex))
    return lines


def build_tokenizer(path: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    return fast


def build_model(path: Path, *, hidden: int = 64, layers: int = 2, seed: int = 0, init_std: float = 0.02) -> Path:
    """``init_std`` 0.2 makes greedy decoding write varied tokens (at 0.02 it repeats a newline),
    which tests comparing two engines' texts need; vLLM's CPU attention needs hidden >= 128
    (head_dim 32)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(path)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        tie_word_embeddings=True,
        initializer_range=init_std,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(path)
    return path


@dataclass
class FakeContext:
    """A stand-in for the run context (:class:`cotgap.context_api.StrategyContext`, every member),
    for calling one strategy method in-process, without models.

    ``strategy`` (optional) validates ``params`` as the core does — its ``Params`` defaults applied,
    unknown keys and out-of-range values refused by name. ``rationales`` maps a model name to the
    records ``generate_rationales`` returns for it (default: one correct record per ``doc_id``
    0..3); ``trained`` collects what ``train_student`` / ``train_model`` were given; ``recorded``
    what ``record`` was; ``logged`` the lines of ``log``; ``root`` is where ``workdir`` and
    ``artifact_dir`` make folders (a temporary folder by default).
    """

    params: Any = field(default_factory=dict)
    teacher_names: tuple[str, ...] = ("teacher",)
    rationales: dict = field(default_factory=dict)
    trained: list = field(default_factory=list)
    recorded: dict = field(default_factory=dict)
    logged: list = field(default_factory=list)
    strategy: Any = None
    student_name: str = "student"
    root: Path | None = None

    def __post_init__(self):
        if self.strategy is not None:
            self.params = self.strategy.validate_params(dict(self.params))
        if self.root is None:
            import tempfile

            self.root = Path(tempfile.mkdtemp(prefix="cotgap-fake-"))

    def log(self, text: str) -> None:
        self.logged.append(text)

    @property
    def teachers(self) -> list:
        return [types.SimpleNamespace(spec=n, kind="fake") for n in self.teacher_names]

    @property
    def student(self):
        return types.SimpleNamespace(spec=self.student_name, kind="fake")

    def generate_rationales(self, model, *, source=None, samples=1, temperature=0.0, description=None, max_new_tokens=None):
        name = getattr(model, "spec", model)
        recs = self.rationales.get(name) or [
            {"doc_id": i, "sample": s, "response": f"{name} rationale {i}. So the answer is {i}.", "correct": True}
            for s in range(samples)
            for i in range(4)
        ]
        return [{**r, "source": source or name, "model": name} for r in recs]

    def train_student(self, records, **kwargs):
        self.trained.append({"records": list(records), **kwargs})
        return types.SimpleNamespace(examples=len(records), records=list(records), updates=1)

    def train_model(self, base, records, out_dir, **kwargs):
        self.trained.append({"base": getattr(base, "spec", base), "records": list(records), "out_dir": out_dir, **kwargs})
        return types.SimpleNamespace(examples=len(records), records=list(records), updates=1, path=str(out_dir))

    def training_config(self, **overrides):
        from dataclasses import asdict

        from cotgap.training_config import TrainConfig

        return TrainConfig(**{**asdict(TrainConfig()), **overrides})

    def stage(self, name: str, inputs, compute) -> dict:
        return compute()

    def record(self, key: str, value) -> None:
        self.recorded[key] = value

    def workdir(self, name: str) -> Path:
        p = self.root / "strategy" / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def artifact_dir(self, name: str) -> Path:
        p = self.root / "artifacts" / name
        p.mkdir(parents=True, exist_ok=True)
        return p


@contextlib.contextmanager
def registered(plugin, name: str | None = None, *, isolated: bool = True):
    """``plugin`` registered for the duration, under ``name`` (default ``testing:<strategy name>``).

    A strategy object is isolated from installed copies: any other plugin providing a strategy of
    the same name (e.g. the author's own package, pip-installed) is taken out while it is
    registered and put back after — unless ``isolated=False`` (a test of two plugins registering
    one name). Any other plugin (a module of observers: pluggy wrappers) needs a ``name``."""
    from cotgap import plugins
    from cotgap.strategy import Strategy

    plugins.load_plugins()
    if name is None:
        if not isinstance(plugin, Strategy):
            raise TypeError(f"registered({plugin!r}) needs a name: it is not a cotgap.Strategy")
        name = f"testing:{plugin.name}"
    hidden = _hide_copies(plugin.name) if isolated and isinstance(plugin, Strategy) else []
    plugins.pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        if plugins.pm.get_plugin(name) is not None:  # a module plugin whose hook failed is unregistered by the host
            plugins.pm.unregister(name=name)
        for plugin_name, owner in hidden:
            plugins.pm.unblock(plugin_name)
            if plugins.pm.get_plugin(plugin_name) is None:
                plugins.pm.register(owner, name=plugin_name)


def _hide_copies(strategy_name: str) -> list:
    """Block every plugin now providing ``strategy_name`` (blocked: a module's hook cannot register
    it again); the (name, plugin) pairs to put back."""
    from cotgap import plugins

    hidden = []
    for info in plugins.strategies().values():
        owner = plugins.pm.get_plugin(info.plugin_name)
        if info.name == strategy_name and owner is not None:
            hidden.append((info.plugin_name, owner))
            plugins.pm.set_blocked(info.plugin_name)
    return hidden


#: What a test run needs unless it says otherwise: the scripted teacher (no model), the synthetic
#: navigate task, 4 questions, one epoch, transformers generation (no engine start-up).
RUN_DEFAULTS = {
    "strategy": REFERENCE_STRATEGY,
    "teachers": ["scripted"],
    "task": "synthetic_navigate",
    "limit": 4,
    "training": {"epochs": 1},
    "generation": {"backend": "hf"},
}


def run_config(tmp_path: Path, student, **overrides):
    """A checked run config (``cotgap.config.load``) for a run under ``tmp_path / "run"``:
    :data:`RUN_DEFAULTS`, then ``overrides`` (a mapping such as ``training`` is merged key by key)."""
    import copy

    from cotgap import config

    merged = {**copy.deepcopy(RUN_DEFAULTS), "student": str(student), "out": str(Path(tmp_path) / "run")}
    for key, value in overrides.items():
        base = merged.get(key)
        merged[key] = {**base, **value} if isinstance(base, dict) and isinstance(value, dict) else value
    return config.load(None, merged)


def build_runner(tmp_path: Path, student, *, log=None, generation_cache=None, **overrides):
    """The core's ``Runner`` for a :func:`run_config` run, not yet prepared (``.prepare()`` runs the
    checks before any work, ``.execute()`` the stages): a quiet console, the generation cache in
    ``tmp_path / "generations"`` unless ``generation_cache`` names one, ``log`` collecting the
    run's lines if given. What a test of the core needs beyond ``run_strategy``: the prepared
    runner's context, a check that refuses, a stage driven by hand."""
    from rich.console import Console

    from cotgap.pipeline.runner import Runner

    cfg = run_config(tmp_path, student, **overrides)
    cache = str(generation_cache or Path(tmp_path) / "generations")
    return Runner(cfg, Console(quiet=True), log=log, generation_cache=cache)


def run_strategy(
    strategy,
    tmp_path: Path,
    *,
    task: str = "synthetic_navigate",
    limit: int = 6,
    teachers=("scripted",),
    strategy_params: dict | None = None,
    student: Path | None = None,
) -> dict:
    """Run a strategy object end to end through the real core on a tiny student; the report.
    The strategy is registered for the run only, isolated from an installed copy of it."""
    tmp_path = Path(tmp_path)
    student = student or build_model(tmp_path / "tiny-student", hidden=64, layers=2)
    with registered(strategy):
        runner = build_runner(
            tmp_path,
            student,
            strategy=strategy.name,
            teachers=list(teachers),
            task=task,
            limit=limit,
            strategy_params=dict(strategy_params or {}),
        )
        return runner.prepare().execute()
