"""Student fine-tuning: transformers ``Trainer`` + peft.

Defaults follow Kajitsuka et al.: LoRA r=16 on all linear layers (lr 1e-4) or full fine-tuning
(lr 1e-5), 2 epochs, cosine schedule, 3% warmup, bf16 where the hardware supports it. The loss
covers only the rationale tokens: prompt tokens are masked with -100.

Strategies customise training without touching this module's callers: per-example ``weights``
(a ``weight`` column the weighted trainer multiplies into each example's loss), extra
``callbacks``, their own ``trainer_cls`` (a ``Trainer`` subclass, e.g. MIND's), or the dtype the
merged model is saved in (the weighted trainer's ``save_dtype`` keyword, via ``trainer_kwargs``).

Where it runs (``training.launcher``): in this process, or in worker processes started by
``accelerate launch`` (``cotgap.backends.launch``), which run the same :func:`train_here`. Long
trainings save checkpoints in the work folder ``<out_dir>.work/`` and a killed one resumes from
the last (``cotgap.backends.checkpoints``). Callbacks and trainer keyword objects that define
``checkpoint_state() -> dict`` and ``load_checkpoint_state(dict)`` have that state saved with
every checkpoint, restored on resume, and (under the launcher) copied back into the caller's
objects after training.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cotgap.backends import runtime, tracking
from cotgap.errors import UserError
from cotgap.protocol.constants import RUN_SEED

#: transformers' ``lr_scheduler_type`` values that need no extra arguments
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay")
#: ``training.launcher``: this process, or worker processes started by ``accelerate launch``
LAUNCHERS = ("inprocess", "accelerate")
#: fields of ``TrainConfig`` that say how the training runs (launch, checkpoints), not what it
#: computes: left out of run and stage keys (like generation's parallel sizes)
EXECUTION_FIELDS = ("launcher", "num_processes", "config_file", "main_process_port", "save_steps", "save_total_limit",
                    "report_to")
#: ``training.*`` fields that only the accelerate launcher reads
LAUNCH_FIELDS = ("num_processes", "config_file", "main_process_port")


@dataclass
class TrainConfig:
    """The ``training`` section; types and ranges are checked by ``cotgap.schema`` before any work."""

    method: str = field(default="lora", metadata={"choices": ("lora", "full")})
    lora_r: int = field(default=16, metadata={"min": 1})
    lora_alpha: int = field(default=32, metadata={"min": 1})
    lora_dropout: float = field(default=0.05, metadata={"min": 0.0, "max": 0.99})
    learning_rate: float | None = field(default=None, metadata={"gt": 0.0})  # None: 1e-4 LoRA, 1e-5 full
    epochs: float = field(default=2.0, metadata={"gt": 0.0})
    batch_size: int = field(default=4, metadata={"min": 1})
    grad_accum: int = field(default=1, metadata={"min": 1})
    scheduler: str = field(default="cosine", metadata={"choices": SCHEDULERS})
    warmup_ratio: float = field(default=0.03, metadata={"min": 0.0, "max": 1.0})
    max_length: int = field(default=1024, metadata={"min": 8})
    bf16: str | bool = field(default="auto", metadata={"choices": ("auto", True, False)})
    seed: int = field(default=RUN_SEED, metadata={"min": 0})
    # >0 fixes the number of optimizer updates (equal-budget comparisons); -1: epochs decide
    max_steps: int = field(default=-1, metadata={"min": -1, "not": (0,)})
    # -- how it runs (docs/scale.md, "Training at scale"); not part of run or stage keys ----------
    launcher: str = field(default="inprocess", metadata={"choices": LAUNCHERS})
    # accelerate only. None: the config file's num_processes, else every GPU here. batch_size is
    # the global batch: each of the processes takes batch_size / num_processes examples
    num_processes: int | None = field(default=None, metadata={"min": 1})
    # a packaged config (cpu, ddp, fsdp, zero3) or a path; None: ddp with a GPU, cpu without
    config_file: str | None = None
    main_process_port: int | None = field(default=None, metadata={"min": 1, "max": 65535})  # None: a free port
    # experiment trackers (cotgap.backends.tracking): a name, a list of names, or "none"
    report_to: str | list = "none"
    # checkpoint every N optimizer updates; 0: automatic (cotgap.backends.checkpoints); -1: never
    save_steps: int = field(default=0, metadata={"min": -1})
    save_total_limit: int = field(default=1, metadata={"min": 1})  # checkpoints kept (the newest)

    def check(self) -> None:
        """Rules across fields (``cotgap.schema`` calls this): launch settings need the launcher."""
        if self.launcher == "inprocess":
            given = [k for k in LAUNCH_FIELDS if getattr(self, k) is not None]
            if given:
                raise UserError(f"training.{given[0]} is for training.launcher: accelerate (the launcher is inprocess)")
            return
        from cotgap.backends import launch

        launch.check(self)

    def stage_inputs(self) -> dict:
        """What of this section changes the trained model (for run and stage keys)."""
        return {k: v for k, v in asdict(self).items() if k not in EXECUTION_FIELDS}

    def lr(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 1e-4 if self.method == "lora" else 1e-5

    def use_bf16(self) -> bool:
        if self.bf16 == "auto":
            return runtime.has_cuda() or runtime.cpu_supports_bf16()
        return bool(self.bf16)

    def updates(self, n_examples: int) -> int:
        """Optimizer updates this config performs on ``n_examples`` (what the Trainer will do, in
        one process or in several: ``batch_size`` is the global batch)."""
        if self.max_steps and self.max_steps > 0:
            return self.max_steps
        per_epoch = math.ceil(math.ceil(n_examples / self.batch_size) / self.grad_accum)
        return math.ceil(per_epoch * self.epochs)


@dataclass
class TrainResult:
    path: str  # merged, loadable model folder
    adapter_path: str | None
    updates: int
    examples: int
    loss_history: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def fit(p_ids: list[int], c_ids: list[int], max_length: int) -> tuple[list[int], int] | None:
    """The prompt tokens that fit beside the whole completion in ``max_length``, cut from the
    prompt's *left* (the few-shot exemplars and instruction go first, the question last), and how
    many were cut. None when the completion alone does not fit: cutting the rationale's end would
    teach the student to stop before the answer and EOS, so such an example is not trained on."""
    room = max_length - len(c_ids)
    if room < 1:
        return None
    cut = max(0, len(p_ids) - room)
    return p_ids[cut:], cut


def tokenize(tokenizer, examples: list[dict], max_length: int) -> tuple[list[dict], dict]:
    """``{"prompt", "completion"[, "weight"]}`` -> input ids with prompt tokens masked out, and the
    truncation counts per ``source`` (see :func:`fit`): ``{"prompt_truncated": {...}, "dropped": {...}}``."""
    rows = []
    counts: dict[str, dict[str, int]] = {"prompt_truncated": {}, "dropped": {}}
    eos = tokenizer.eos_token or ""
    for i, ex in enumerate(examples):
        p_ids = tokenizer(ex["prompt"], add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(ex["completion"] + eos, add_special_tokens=False)["input_ids"]
        fitted = fit(p_ids, c_ids, max_length)
        source = str(ex.get("source"))
        if fitted is None:
            counts["dropped"][source] = counts["dropped"].get(source, 0) + 1
            continue
        p_ids, cut = fitted
        if cut:
            counts["prompt_truncated"][source] = counts["prompt_truncated"].get(source, 0) + 1
        row = {"input_ids": p_ids + c_ids, "labels": [-100] * len(p_ids) + c_ids, "example_index": i}
        if "weight" in ex:
            row["weight"] = float(ex["weight"])
        rows.append(row)
    return rows, counts


class Collator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict:
        import torch

        n = max(len(b["input_ids"]) for b in batch)
        out = {
            "input_ids": torch.tensor([b["input_ids"] + [self.pad_id] * (n - len(b["input_ids"])) for b in batch]),
            "labels": torch.tensor([b["labels"] + [-100] * (n - len(b["labels"])) for b in batch]),
            "attention_mask": torch.tensor([[1] * len(b["input_ids"]) + [0] * (n - len(b["input_ids"])) for b in batch]),
            "example_index": torch.tensor([b["example_index"] for b in batch]),
        }
        if "weight" in batch[0]:
            out["weight"] = torch.tensor([b["weight"] for b in batch], dtype=torch.float32)
        return out


def per_example_loss(logits, labels):
    """Mean token cross-entropy of each example (rationale tokens only)."""
    import torch.nn.functional as F

    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    tok = F.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=-100, reduction="none")
    mask = (shift_labels != -100).float()
    return (tok * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def gather_example_losses(trainer, index, losses):
    """``index`` and ``losses`` of the whole global batch, on every process (as they are in one
    process), so that state a trainer keeps from them (MIND's EMAs) is the same everywhere. In a
    single process, or without a Trainer, they come back unchanged."""
    acc = getattr(trainer, "accelerator", None)
    if index is None or acc is None or acc.num_processes < 2:
        return index, losses
    index = acc.gather(acc.pad_across_processes(index, pad_index=-1))
    losses = acc.gather(acc.pad_across_processes(losses, pad_index=0))
    keep = index >= 0
    return index[keep], losses[keep]


def weighted_mean(trainer, losses, weight):
    """``sum(w * l) / sum(w)`` over the global batch. Each process's share is scaled by the weight
    of the whole batch, so that the average of the processes' gradients (what DDP applies) is the
    gradient of the global weighted mean; normalising per process would give every process's slice
    the same say whatever its weights."""
    weight = weight.to(losses.dtype)
    total = weight.sum()
    acc = getattr(trainer, "accelerator", None)
    if acc is not None and acc.num_processes > 1:
        total = acc.reduce(total.detach().clone(), reduction="sum") / acc.num_processes
    return (losses * weight).sum() / total.clamp(min=1e-8)


@functools.cache
def _trainer_base():
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Trainer whose loss is the (optionally weighted) mean of per-example rationale losses."""

        # Our loss is a per-batch mean: the Trainer divides it by the gradient accumulation
        # steps, so grad_accum > 1 averages over the accumulated batch instead of summing.
        loss_is_scaled_for_ga = False

        def __init__(self, *args, save_dtype: str | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.save_dtype = save_dtype  # read by train_sft when it saves the merged model (saved_dtype)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            weight = inputs.pop("weight", None)
            index = inputs.pop("example_index", None)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            losses = per_example_loss(outputs.logits, labels)
            if type(self).on_example_losses is not WeightedTrainer.on_example_losses:
                self.on_example_losses(*gather_example_losses(self, index, losses.detach()))
            loss = losses.mean() if weight is None else weighted_mean(self, losses, weight)
            return (loss, outputs) if return_outputs else loss

        def on_example_losses(self, index, losses) -> None:
            """Hook for subclasses (e.g. loss-aware reweighting): the global batch's losses."""

    # importable by name (this module's __getattr__): worker processes unpickle it and its subclasses
    WeightedTrainer.__module__, WeightedTrainer.__qualname__ = __name__, "WeightedTrainer"
    return WeightedTrainer


def weighted_trainer_class():
    """The weighted ``Trainer`` (one class per process, importable as ``cotgap.backends.training:WeightedTrainer``)."""
    return _trainer_base()


def __getattr__(name: str):
    if name == "WeightedTrainer":  # built on first use: transformers loads only then
        return _trainer_base()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def saved_dtype(requested: str | None, bf16: bool):
    """The torch dtype ``train_sft`` casts the merged model to before saving it: ``requested`` (a
    floating torch dtype name, e.g. "float32") if given, else bfloat16 when training ran in bf16
    (half the disk, the precision it computed in), else None (no cast: the float32 it trained in).
    A model that is merged further (MiCoTA's long parent) requests the merge's dtype, because its
    fine-tuning delta can be below bfloat16's resolution."""
    import torch

    if requested is None:
        return torch.bfloat16 if bf16 else None
    dtype = getattr(torch, str(requested), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"save_dtype must name a floating torch dtype (float32, bfloat16, float16), got {requested!r}")
    return dtype


def work_dir(out_dir: str | Path) -> Path:
    """The training's work folder beside ``out_dir``: checkpoints, the launcher's job and log. It
    survives a kill (a re-run resumes from it) and is removed after success."""
    out_dir = Path(out_dir)
    return out_dir.parent / (out_dir.name + ".work")


def training_arguments(cfg: TrainConfig, work_dir: Path, n_rows: int, *, bf16: bool, progress: bool,
                       processes: int = 1, save_every: int = 0):
    """transformers ``TrainingArguments`` for ``cfg`` (seeded; trackers as ``report_to`` names them). ``batch_size`` is the
    global batch: each of ``processes`` takes its share. Checkpoints every ``save_every`` updates
    (0: none), the newest ``save_total_limit`` kept."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=cfg.batch_size // processes,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr(),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=math.ceil(cfg.warmup_ratio * cfg.updates(n_rows)),
        bf16=bf16,
        use_cpu=not runtime.has_cuda(),
        logging_steps=1,
        save_strategy="steps" if save_every else "no",
        save_steps=max(1, save_every),
        save_total_limit=cfg.save_total_limit,
        report_to=tracking.names(cfg.report_to),
        run_name=os.environ.get(tracking.RUN_NAME_ENV),
        seed=cfg.seed,
        data_seed=cfg.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every trainable parameter takes part in every step
        disable_tqdm=not progress,
    )


def train_sft(base_path: str, examples: list[dict], out_dir: str | Path, cfg: TrainConfig, *,
              trainer_cls=None, callbacks=(), trainer_kwargs: dict | None = None, model: Any = None,
              tokenizer: Any = None, progress: bool = True, log=print) -> TrainResult:
    """Fine-tune ``base_path`` on prompt -> completion pairs and write a merged model to ``out_dir``,
    here or (``training.launcher: accelerate``) in worker processes; resumes from the checkpoint a
    killed run of the same inputs left in the work folder."""
    from cotgap.backends import checkpoints

    if cfg.launcher == "accelerate":
        from cotgap.backends import launch

        if model is not None:
            raise ValueError("train_sft: a model object cannot be sent to worker processes (pass its path)")
        return launch.train_sft(base_path, examples, out_dir, cfg, trainer_cls=trainer_cls, callbacks=callbacks,
                                trainer_kwargs=trainer_kwargs, log=log)
    work = work_dir(out_dir)
    key = checkpoints.inputs_key(base_path, examples, cfg, trainer_cls, callbacks, trainer_kwargs,
                                 {"launcher": "inprocess"})
    resume = checkpoints.resume_point(work, key, log)
    result = train_here(base_path, examples, out_dir, cfg, trainer_cls=trainer_cls, callbacks=callbacks,
                        trainer_kwargs=trainer_kwargs, model=model, tokenizer=tokenizer, progress=progress,
                        resume_from=resume, key=key, log=log)
    shutil.rmtree(work, ignore_errors=True)
    return result


def _load_model(base_path: str, cfg: TrainConfig, model: Any):
    """The model to train: ``base_path`` in float32 (or ``model``), wrapped in LoRA adapters for
    ``method: lora``."""
    import torch
    from transformers import AutoModelForCausalLM

    if model is None:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                       target_modules="all-linear", task_type="CAUSAL_LM"),
        )
    elif cfg.method != "full":
        raise ValueError(f"unknown training method {cfg.method!r} (lora, full)")
    return model


def train_here(base_path: str, examples: list[dict], out_dir: str | Path, cfg: TrainConfig, *,
               trainer_cls=None, callbacks=(), trainer_kwargs: dict | None = None, model: Any = None,
               tokenizer: Any = None, progress: bool = True, processes: int = 1, resume_from: Path | None = None,
               key: str = "", log=print) -> TrainResult:
    """Train in this process — alone, or as one of ``processes`` started by the launcher — from
    ``resume_from`` if given. Only the main process writes ``out_dir`` (atomically); the work
    folder is left to the caller."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer

    from cotgap.backends import checkpoints

    out_dir = Path(out_dir)
    torch.manual_seed(cfg.seed)
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(base_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    bf16 = cfg.use_bf16()
    rows, truncation = tokenize(tokenizer, examples, cfg.max_length)
    if not rows:
        raise UserError(f"no training example fits training.max_length = {cfg.max_length} tokens (every rationale "
                        "alone is longer): raise training.max_length")
    work = work_dir(out_dir)
    every = checkpoints.save_every(cfg, cfg.updates(len(rows)))
    # the arguments before the model: under DeepSpeed ZeRO-3 they make from_pretrained load it sharded
    args = training_arguments(cfg, work, len(rows), bf16=bf16, progress=progress, processes=processes,
                              save_every=every)
    model = _load_model(base_path, cfg, model)
    cls = trainer_cls or weighted_trainer_class()
    trainer = cls(model=model, args=args, train_dataset=Dataset.from_list(rows),
                  data_collator=Collator(tokenizer.pad_token_id), callbacks=list(callbacks), **(trainer_kwargs or {}))
    stateful = checkpoints.stateful_objects(callbacks, trainer_kwargs)
    if every:
        trainer.add_callback(checkpoints.recorder(work, key, stateful))
    resumed = checkpoints.restore(resume_from, stateful, log) if resume_from is not None else None
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    handle = trainer if processes == 1 else _gathered(trainer, cfg, base_path, work)
    if handle is None:  # not the main process: it has nothing to write
        return TrainResult(path=str(out_dir / "model"), adapter_path=None, updates=int(trainer.state.global_step),
                           examples=len(rows))
    run = {"launcher": cfg.launcher, "processes": processes, "checkpoint_every": every, "resumed_from_update": resumed}
    return _write_outputs(handle, cfg, tokenizer, out_dir, bf16, rows, truncation, run)


def _gathered(trainer, cfg: TrainConfig, base_path: str, work: Path):
    """The trained model on the main process of a multi-process run (None on the others). Its
    weights may be sharded (FSDP, ZeRO-3): the Trainer gathers them into one saved folder, which the
    main process loads back on the CPU, to be merged and saved as in one process."""
    import torch
    from transformers import AutoModelForCausalLM

    final = work / "final"
    trainer.save_model(str(final))
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return None
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()  # this reload is the main process's alone: no ZeRO-3 sharded (collective) init
    if cfg.method == "lora":
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
        model = PeftModel.from_pretrained(base, str(final))
    else:
        model = AutoModelForCausalLM.from_pretrained(str(final), dtype=torch.float32)
    return types.SimpleNamespace(model=model, state=trainer.state)


def _write_outputs(trainer, cfg: TrainConfig, tokenizer, out_dir: Path, bf16: bool, rows: list, truncation: dict,
                   run: dict) -> TrainResult:
    """The merged model (and LoRA adapter) and ``train.json`` into ``out_dir``, atomically: written
    to a staging folder, then renamed into place."""

    history = [
        {"step": h["step"], "loss": h["loss"], "lr": h.get("learning_rate")}
        for h in trainer.state.log_history
        if "loss" in h
    ]
    staging = out_dir.parent / (out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    adapter_path = None
    if cfg.method == "lora":
        trainer.model.save_pretrained(staging / "adapter")
        adapter_path = str(out_dir / "adapter")
        merged = trainer.model.merge_and_unload()
    else:
        merged = trainer.model
    dtype = saved_dtype(getattr(trainer, "save_dtype", None), bf16)
    merged = merged.to(dtype) if dtype is not None else merged
    merged.save_pretrained(staging / "model")
    tokenizer.save_pretrained(staging / "model")
    result = TrainResult(
        path=str(out_dir / "model"),
        adapter_path=adapter_path,
        updates=int(trainer.state.global_step),
        examples=len(rows),
        loss_history=history,
        extra={"truncation": {"max_length": cfg.max_length, **truncation}},
    )
    result.extra["run"] = run
    (staging / "train.json").write_text(json.dumps({"config": asdict(cfg), **result.to_json()}, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    return result
