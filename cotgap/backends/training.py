"""Student fine-tuning: transformers ``Trainer`` + peft.

Defaults follow Kajitsuka et al.: LoRA r=16 on all linear layers (lr 1e-4) or full fine-tuning
(lr 1e-5), 2 epochs, cosine schedule, 3% warmup, bf16 where the hardware supports it. The loss
covers only the rationale tokens: prompt tokens are masked with -100.

Strategies customise training without touching this module's callers: per-example ``weights``
(a ``weight`` column the weighted trainer multiplies into each example's loss), extra
``callbacks``, their own ``trainer_cls`` (a ``Trainer`` subclass, e.g. MIND's), or the dtype the
merged model is saved in (the weighted trainer's ``save_dtype`` keyword, via ``trainer_kwargs``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cotgap.backends import runtime
from cotgap.protocol.constants import RUN_SEED

#: transformers' ``lr_scheduler_type`` values that need no extra arguments
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay")


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

    def lr(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 1e-4 if self.method == "lora" else 1e-5

    def use_bf16(self) -> bool:
        if self.bf16 == "auto":
            return runtime.has_cuda() or runtime.cpu_supports_bf16()
        return bool(self.bf16)

    def updates(self, n_examples: int) -> int:
        """Optimizer updates this config performs on ``n_examples`` (what the Trainer will do)."""
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


def tokenize(tokenizer, examples: list[dict], max_length: int) -> list[dict]:
    """``{"prompt", "completion"[, "weight"]}`` -> input ids with prompt tokens masked out."""
    rows = []
    eos = tokenizer.eos_token or ""
    for i, ex in enumerate(examples):
        p_ids = tokenizer(ex["prompt"], add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(ex["completion"] + eos, add_special_tokens=False)["input_ids"]
        ids = (p_ids + c_ids)[:max_length]
        labels = ([-100] * len(p_ids) + c_ids)[:max_length]
        row = {"input_ids": ids, "labels": labels, "example_index": i}
        if "weight" in ex:
            row["weight"] = float(ex["weight"])
        rows.append(row)
    return rows


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
            self.on_example_losses(index, losses.detach())
            if weight is None:
                loss = losses.mean()
            else:
                loss = (losses * weight.to(losses.dtype)).sum() / weight.sum().clamp(min=1e-8)
            return (loss, outputs) if return_outputs else loss

        def on_example_losses(self, index, losses) -> None:
            """Hook for subclasses (e.g. loss-aware reweighting)."""

    return WeightedTrainer


def weighted_trainer_class():
    return _trainer_base()


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


def training_arguments(cfg: TrainConfig, work_dir: Path, n_rows: int, *, bf16: bool, progress: bool):
    """transformers ``TrainingArguments`` for ``cfg`` (no checkpoints, no trackers, seeded)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr(),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=math.ceil(cfg.warmup_ratio * cfg.updates(n_rows)),
        bf16=bf16,
        use_cpu=not runtime.has_cuda(),
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=not progress,
    )


def train_sft(base_path: str, examples: list[dict], out_dir: str | Path, cfg: TrainConfig, *,
              trainer_cls=None, callbacks=(), trainer_kwargs: dict | None = None, model: Any = None,
              tokenizer: Any = None, progress: bool = True) -> TrainResult:
    """Fine-tune ``base_path`` on prompt -> completion pairs and write a merged model to ``out_dir``."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    torch.manual_seed(cfg.seed)
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(base_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    bf16 = cfg.use_bf16()
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

    rows = tokenize(tokenizer, examples, cfg.max_length)
    dataset = Dataset.from_list(rows)
    work = out_dir.parent / (out_dir.name + ".work")
    args = training_arguments(cfg, work, len(rows), bf16=bf16, progress=progress)
    cls = trainer_cls or weighted_trainer_class()
    trainer = cls(model=model, args=args, train_dataset=dataset, data_collator=Collator(tokenizer.pad_token_id),
                  callbacks=list(callbacks), **(trainer_kwargs or {}))
    trainer.train()
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
        examples=len(examples),
        loss_history=history,
    )
    (staging / "train.json").write_text(json.dumps({"config": asdict(cfg), **result.to_json()}, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return result
