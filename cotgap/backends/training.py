"""Student fine-tuning: transformers ``Trainer`` + peft, computing what LLaMA-Factory computes.

The seed paper trained with LLaMA-Factory; cotgap's defaults reproduce that trainer step for step
(``bench/llamafactory_parity.py`` runs both): examples are tokenised as LLaMA-Factory's supervised
processor does (:mod:`cotgap.backends.sft_tokens`: the template's end of turn trained, exemplar
answers trained unless ``mask_history``, ``cutoff_len`` truncation), and the loss is the mean
over every trained token of the global batch (transformers' ``num_items_in_batch``, across
gradient accumulation and processes). The settings and presets live in :mod:`cotgap.training_config`.

**The loss, and how a strategy changes it.** :class:`WeightedTrainer` computes each example's
summed token loss ``s_i`` and token count ``n_i`` and returns

- ``loss_average: token`` (default): ``sum_i w_i * s_i / N``, N = trained tokens of the global batch;
- ``loss_average: example``: ``sum_i w_i * (s_i / n_i) / B``, B = examples of the micro-batch
  (the Trainer then averages the micro-batches of an update).

``w_i`` are absolute per-example multipliers (1 = as plain SFT; they are not renormalised within a
batch, so they act at any batch size): the ``weight`` column of the examples by default, or what
``example_weights(index, weight, losses)`` returns — the documented extension point: pass a
module-level function as the trainer keyword ``weight_fn`` (``ctx.train_student(records,
trainer_kwargs={"weight_fn": f})``), or override the method in a subclass;
``on_example_losses(index, losses)`` sees every example's mean token loss of the global batch
after the weights are taken. Other hooks: extra ``callbacks``, a ``trainer_cls``
of the strategy's own, the dtype the merged model is saved in (``save_dtype`` via ``trainer_kwargs``).

What it runs: a :class:`cotgap.backends.train_job.TrainJob` (base model, examples tokenised once,
config, output folder, trainer hooks), built once by the caller (:func:`train_sft` builds one
from its arguments). Where (``training.launcher``, :func:`run_job`): in this process, or in worker
processes started by ``accelerate launch`` (``cotgap.backends.launch``), which run the same
:func:`train_here`. Long trainings save checkpoints in the work folder ``<out_dir>.work/`` and a
killed one resumes from the last (the job's checkpoint service, ``cotgap.backends.checkpoints``).
Callbacks and trainer keyword objects that define ``checkpoint_state() -> dict`` and
``load_checkpoint_state(dict)`` have that state saved with every checkpoint, restored on resume,
and (under the launcher) copied back into the caller's objects after training.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import types
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cotgap.backends import runtime, tracking, train_job
from cotgap.backends.train_job import TrainJob, example_messages  # noqa: F401  (re-exported)
from cotgap.backends.train_result import TrainResult, work_dir  # noqa: F401  (re-exported)
from cotgap.training_config import (  # noqa: F401  (re-exported: the training section's home is training_config)
    EXECUTION_FIELDS,
    LAUNCH_FIELDS,
    LAUNCHERS,
    SCHEDULERS,
    TrainConfig,
)


def tokenize(tokenizer, examples: list[dict], cfg: TrainConfig) -> tuple[list[dict], dict]:
    """Examples -> input ids and labels (:func:`cotgap.backends.sft_tokens.encode` at ``cfg``'s
    cutoff), and what the cutoff did, per ``source``: ``{"prompt_truncated", "response_truncated",
    "dropped"}`` (counts of examples). A training tokenises once, when its job is built
    (:func:`cotgap.backends.train_job.encode`, which this calls)."""
    tokens = train_job.encode(tokenizer, examples, cfg)
    return tokens.rows, tokens.truncation


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
        if any("weight" in b for b in batch):
            out["weight"] = torch.tensor([b.get("weight", 1.0) for b in batch], dtype=torch.float32)
        return out


def token_losses(logits, labels):
    """Each example's summed token cross-entropy over its trained tokens (float32) and their count."""
    import torch.nn.functional as F

    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    tok = F.cross_entropy(shift_logits.transpose(1, 2), shift_labels, ignore_index=-100, reduction="none")
    mask = (shift_labels != -100).to(tok.dtype)
    return (tok * mask).sum(1), mask.sum(1)


def per_example_loss(logits, labels):
    """Mean token cross-entropy of each example (trained tokens only)."""
    sums, counts = token_losses(logits, labels)
    return sums / counts.clamp(min=1.0)


def gather_example_losses(trainer, index, losses):
    """``index`` and ``losses`` of the whole global batch, on every process (as they are in one
    process), so that state a trainer keeps from them (e.g. per-example loss averages) is the same everywhere. In a
    single process, or without a Trainer, they come back unchanged."""
    acc = getattr(trainer, "accelerator", None)
    if index is None or acc is None or acc.num_processes < 2:
        return index, losses
    index = acc.gather(acc.pad_across_processes(index, pad_index=-1))
    losses = acc.gather(acc.pad_across_processes(losses, pad_index=0))
    keep = index >= 0
    return index[keep], losses[keep]


def weighted_mean(trainer, losses, weight):
    """``sum(w * l) / sum(w)`` over the global batch (weights renormalised within the batch). Each
    process's share is scaled by the weight of the whole batch, so that the average of the
    processes' gradients (what DDP applies) is the gradient of the global weighted mean."""
    weight = weight.to(losses.dtype)
    total = weight.sum()
    acc = getattr(trainer, "accelerator", None)
    if acc is not None and acc.num_processes > 1:
        total = acc.reduce(total.detach().clone(), reduction="sum") / acc.num_processes
    return (losses * weight).sum() / total.clamp(min=1e-8)


def average_loss(trainer, sums, counts, weight, num_items_in_batch, mode: str):
    """The batch loss from per-example summed token losses (module docstring). ``token``: divided by
    the global batch's trained tokens, times the processes (DDP averages their gradients), as the
    Trainer does for a model's own loss; ``example``: the weighted mean of example means over
    this micro-batch (the Trainer divides by the accumulation steps)."""
    weight = weight.to(sums.dtype)
    if mode == "example":
        return (weight * sums / counts.clamp(min=1.0)).sum() / float(len(sums))
    total = num_items_in_batch if num_items_in_batch is not None else counts.sum()
    loss = (weight * sums).sum() / total
    acc = getattr(trainer, "accelerator", None)
    if num_items_in_batch is not None and acc is not None and trainer.args.average_tokens_across_devices:
        loss = loss * acc.num_processes
    return loss


@functools.cache
def _trainer_base():
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Trainer whose loss is the (weighted) token or example average of the rationale losses
        (module docstring); ``loss_average`` comes from the training config."""

        def __init__(self, *args, save_dtype: str | None = None, loss_average: str = "token", weight_fn=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.save_dtype = save_dtype  # read by train_here when it saves the merged model (saved_dtype)
            self.loss_average = loss_average
            self.weight_fn = weight_fn  # a plugin's example_weights without a subclass (module docstring)
            # token: normalised by num_items_in_batch, which the Trainer counts only for models that
            # take loss kwargs (this loss is computed here, for any model); example: a micro-batch
            # mean, which the Trainer divides by the accumulation steps
            self.model_accepts_loss_kwargs = loss_average == "token"
            self.loss_is_scaled_for_ga = loss_average == "token"

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            weight = inputs.pop("weight", None)
            index = inputs.pop("example_index", None)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            sums, counts = token_losses(outputs.logits, labels)
            means = sums / counts.clamp(min=1.0)
            w = self.example_weights(index, weight, means.detach())
            w = torch.ones_like(sums) if w is None else w.to(device=sums.device, dtype=sums.dtype)
            if model.training and type(self).on_example_losses is not WeightedTrainer.on_example_losses:
                self.on_example_losses(*gather_example_losses(self, index, means.detach()))
            loss = average_loss(self, sums, counts, w, num_items_in_batch, self.loss_average)
            return (loss, outputs) if return_outputs else loss

        def example_weights(self, index, weight, losses):
            """Per-example loss multipliers for this micro-batch (None: all 1). Default: the
            examples' ``weight`` column. Override to reweight (``losses``: each example's mean
            token loss now, before this batch is learnt from). With ``weight_fn`` (a trainer keyword:
            a module-level function, so the accelerate launcher can send it to its workers) it is
            ``weight_fn(index, weight, losses)``."""
            if self.weight_fn is not None:
                return self.weight_fn(index, weight, losses)
            return weight

        def on_example_losses(self, index, losses) -> None:
            """Hook for subclasses (e.g. loss-aware reweighting): the global batch's mean token losses."""

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
    """The torch dtype ``train_here`` casts the merged model to before saving it: ``requested`` (a
    floating torch dtype name, e.g. "float32") if given, else bfloat16 when training ran in bf16
    (half the disk, the precision it computed in), else None (no cast: the float32 it trained in).
    A model that is merged further (a parent of a merge) requests the merge's dtype, because its
    fine-tuning delta can be below bfloat16's resolution."""
    import torch

    if requested is None:
        return torch.bfloat16 if bf16 else None
    dtype = getattr(torch, str(requested), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"save_dtype must name a floating torch dtype (float32, bfloat16, float16), got {requested!r}")
    return dtype


def training_arguments(
    cfg: TrainConfig, work: Path, n_rows: int, *, bf16: bool, progress: bool, processes: int = 1, save_every: int = 0
):
    """transformers ``TrainingArguments`` for ``cfg`` (seeded; trackers as ``report_to`` names them):
    ``per_device_batch_size`` on each of ``processes``. Checkpoints every ``save_every`` updates
    (0: none), the newest ``save_total_limit`` kept."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr(),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=math.ceil(cfg.warmup_ratio * cfg.updates(n_rows, processes)),
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


def train_sft(
    base_path: str,
    examples: list[dict],
    out_dir: str | Path,
    cfg: TrainConfig,
    *,
    trainer_cls=None,
    callbacks=(),
    trainer_kwargs: dict | None = None,
    model: Any = None,
    tokenizer: Any = None,
    progress: bool = True,
    log=print,
) -> TrainResult:
    """Fine-tune ``base_path`` on prompt -> completion pairs and write a merged model to ``out_dir``:
    the :class:`TrainJob` of these arguments, built and run (:func:`run_job`)."""
    job = TrainJob.build(
        base_path,
        examples,
        out_dir,
        cfg,
        tokenizer=tokenizer,
        trainer_cls=trainer_cls,
        callbacks=callbacks,
        trainer_kwargs=trainer_kwargs,
    )
    return run_job(job, model=model, progress=progress, log=log)


def run_job(job: TrainJob, *, model: Any = None, progress: bool = True, log=print) -> TrainResult:
    """Run ``job`` here or (``training.launcher: accelerate``) in worker processes; it resumes from
    the checkpoint a killed run of the same inputs left in its work folder."""
    if job.cfg.launcher == "accelerate":
        from cotgap.backends import launch

        if model is not None:
            raise ValueError("run_job: a model object cannot be sent to worker processes (pass its path)")
        return launch.run_job(job, log=log)
    saved = job.checkpoints({"launcher": "inprocess"}, log)
    result = train_here(job, saved, model=model, progress=progress, log=log)
    saved.clear()
    return result


def _load_model(base_path: str, cfg: TrainConfig, model: Any):
    """The model to train: ``base_path`` in float32 (or ``model``), wrapped in LoRA adapters for
    ``method: lora``."""
    import torch
    from transformers import AutoModelForCausalLM

    if model is None:
        # safetensors only, hub ids included (local folders are also checked before any work:
        # cotgap.models.folder_check): no pickle is ever unpickled
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32, use_safetensors=True)
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules="all-linear",
                task_type="CAUSAL_LM",
            ),
        )
    elif cfg.method != "full":
        raise ValueError(f"unknown training method {cfg.method!r} (lora, full)")
    return model


def train_here(job: TrainJob, saved, *, model: Any = None, progress: bool = True, processes: int = 1, log=print) -> TrainResult:
    """Train ``job`` in this process — alone, or as one of ``processes`` started by the launcher —
    with its checkpoint service ``saved`` (a :class:`cotgap.backends.checkpoints.JobCheckpoints`:
    resume point, checkpoint recorder). Only the main process writes ``out_dir`` (atomically); the
    work folder is left to the caller."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer

    from cotgap.backends import checkpoints

    cfg, rows = job.cfg, job.rows
    torch.manual_seed(cfg.seed)
    tokenizer = job.tokenizer or AutoTokenizer.from_pretrained(job.base_path)  # saved with the model; pads the batches
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    bf16 = cfg.use_bf16()
    every = checkpoints.save_every(cfg, cfg.updates(len(rows), processes))
    # the arguments before the model: under DeepSpeed ZeRO-3 they make from_pretrained load it sharded
    args = training_arguments(cfg, job.work, len(rows), bf16=bf16, progress=progress, processes=processes, save_every=every)
    model = _load_model(job.base_path, cfg, model)
    cls = job.trainer_cls or weighted_trainer_class()
    kwargs = dict(job.trainer_kwargs)
    if issubclass(cls, weighted_trainer_class()):
        kwargs.setdefault("loss_average", cfg.loss_average)
    trainer = cls(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        data_collator=Collator(tokenizer.pad_token_id),
        callbacks=list(job.callbacks),
        **kwargs,
    )
    saved.attach(trainer, every)
    resumed = saved.restore(log)
    trainer.train(resume_from_checkpoint=str(saved.resume_from) if saved.resume_from is not None else None)
    handle = trainer if processes == 1 else _gathered(trainer, cfg, job.base_path, job.work)
    if handle is None:  # not the main process: it has nothing to write
        return TrainResult(
            path=str(job.out_dir / "model"), adapter_path=None, updates=int(trainer.state.global_step), examples=len(rows)
        )
    run = {"launcher": cfg.launcher, "processes": processes, "checkpoint_every": every, "resumed_from_update": resumed}
    return _write_outputs(handle, cfg, tokenizer, job.out_dir, bf16, rows, job.tokens.truncation, run)


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

        base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32, use_safetensors=True)
        model = PeftModel.from_pretrained(base, str(final))
    else:
        model = AutoModelForCausalLM.from_pretrained(str(final), dtype=torch.float32, use_safetensors=True)
    return types.SimpleNamespace(model=model, state=trainer.state)


def _write_outputs(
    trainer, cfg: TrainConfig, tokenizer, out_dir: Path, bf16: bool, rows: list, truncation: dict, run: dict
) -> TrainResult:
    """The merged model (and LoRA adapter) and ``train.json`` into ``out_dir``, atomically: written
    to a staging folder, then renamed into place."""

    history = [
        {"step": h["step"], "loss": h["loss"], "lr": h.get("learning_rate")} for h in trainer.state.log_history if "loss" in h
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
        extra={
            "truncation": {"max_length": cfg.max_length, "overlength": cfg.overlength, **truncation},
            "semantics": cfg.description(run.get("processes") or 1),
        },
    )
    result.extra["run"] = run
    (staging / "train.json").write_text(json.dumps({"config": asdict(cfg), **result.to_json()}, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    return result
