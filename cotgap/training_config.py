"""The ``training`` section of a run config: what the student's fine-tuning computes and how it runs.

The defaults are the seed paper's LoRA setting as LLaMA-Factory (the trainer the paper used)
applies it, and ``preset`` names the paper's two settings (Kajitsuka et al., Tables 1-2):

- ``paper-full``: full fine-tuning, 2 per device, accumulation 1, lr 1e-5, 2 epochs, cosine, no
  warmup, bf16 where there is a GPU, cutoff 8,192 tokens (the paper's 0.5B-7B students);
- ``paper-lora``: LoRA on all linear layers with LLaMA-Factory's default rank 8, alpha 16 and
  dropout 0 (the paper sets only ``lora_target: all``), 1 per device, lr 1e-4, warmup 0.03,
  2 epochs, cosine, cutoff 8,192 (the paper's 14B / 32B students). These are the field defaults.

A preset fills the fields the config does not set; fields set beside it win. Seeds: the paper
states none, so LLaMA-Factory's default seed 42 trained it; ``seed`` is that seed here
(``TRAIN_SEED``), and a grid's ``seeds:`` replicates set it per cell.

Batch semantics as researchers write them: ``per_device_batch_size`` examples on each of the
processes (one in process; ``num_processes`` under the accelerate launcher), ``grad_accum``
micro-batches per optimizer update; the global batch is their product (:meth:`TrainConfig.global_batch`).
The loss is the mean over every trained token of the global batch (``loss_average: token``,
transformers' and LLaMA-Factory's semantics) unless ``loss_average: example`` (the mean of each
example's token mean). How examples become tokens: :mod:`cotgap.backends.sft_tokens`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from cotgap.errors import UserError
from cotgap.protocol.constants import TRAIN_SEED

#: transformers' ``lr_scheduler_type`` values that need no extra arguments
SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "warmup_stable_decay",
)
#: ``training.launcher``: this process, or worker processes started by ``accelerate launch``
LAUNCHERS = ("inprocess", "accelerate")
#: fields that say how the training runs (launch, checkpoints, trackers), not what it computes:
#: left out of run and stage keys (like generation's parallel sizes)
EXECUTION_FIELDS = (
    "launcher",
    "num_processes",
    "config_file",
    "main_process_port",
    "save_steps",
    "save_total_limit",
    "report_to",
)
#: the budget stops a grid's ``budget`` sets (cotgap.pipeline.budgets); 0 = no stop
BUDGET_FIELDS = ("stop_teacher_tokens", "stop_seconds")
#: fields that only the accelerate launcher reads
LAUNCH_FIELDS = ("num_processes", "config_file", "main_process_port")
#: ``training.loss_average``: mean over the global batch's tokens (the paper's trainer), or of each example's mean
LOSS_AVERAGES = ("token", "example")
#: the learning rate when none is given, per method
DEFAULT_LR = {"lora": 1e-4, "full": 1e-5}
#: The seed paper's training settings (Tables 1-2), as LLaMA-Factory applied them.
PRESETS = {
    "paper-full": {
        "method": "full",
        "per_device_batch_size": 2,
        "grad_accum": 1,
        "learning_rate": 1e-5,
        "epochs": 2.0,
        "scheduler": "cosine",
        "warmup_ratio": 0.0,
        "bf16": "auto",
        "max_length": 8192,
    },
    "paper-lora": {
        "method": "lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "per_device_batch_size": 1,
        "grad_accum": 1,
        "learning_rate": 1e-4,
        "warmup_ratio": 0.03,
        "epochs": 2.0,
        "scheduler": "cosine",
        "max_length": 8192,
    },
}
#: keys that used to exist, with what replaced them (refused by name, with the way forward)
RENAMED = {
    "batch_size": "training.batch_size is now training.per_device_batch_size (examples on each process; the "
    "global batch is per_device_batch_size x grad_accum x processes)"
}


@dataclass
class TrainConfig:
    """The ``training`` section; types and ranges are checked by ``cotgap.schema`` before any work."""

    preset: str | None = field(default=None, metadata={"choices": tuple(PRESETS)})
    method: str = field(default="lora", metadata={"choices": ("lora", "full")})
    lora_r: int = field(default=8, metadata={"min": 1})
    lora_alpha: int = field(default=16, metadata={"min": 1})
    lora_dropout: float = field(default=0.0, metadata={"min": 0.0, "max": 0.99})
    learning_rate: float | None = field(default=None, metadata={"gt": 0.0})  # None: DEFAULT_LR[method]
    epochs: float = field(default=2.0, metadata={"gt": 0.0})
    per_device_batch_size: int = field(default=1, metadata={"min": 1})
    grad_accum: int = field(default=1, metadata={"min": 1})
    scheduler: str = field(default="cosine", metadata={"choices": SCHEDULERS})
    warmup_ratio: float = field(default=0.03, metadata={"min": 0.0, "max": 1.0})
    # LLaMA-Factory's cutoff_len: what of an example is trained (cotgap.backends.sft_tokens)
    max_length: int = field(default=8192, metadata={"min": 8})
    overlength: str = field(default="truncate", metadata={"choices": ("truncate", "drop")})
    # few-shot training prompts: train only the last assistant turn (LLaMA-Factory's mask_history)
    mask_history: bool = False
    loss_average: str = field(default="token", metadata={"choices": LOSS_AVERAGES})
    # "auto": bf16 on a GPU, float32 on a CPU whatever its instruction set (same numbers on any CPU)
    bf16: str | bool = field(default="auto", metadata={"choices": ("auto", True, False)})
    seed: int = field(default=TRAIN_SEED, metadata={"min": 0})
    # >0 fixes the number of optimizer updates (equal-budget comparisons); -1: epochs decide
    max_steps: int = field(default=-1, metadata={"min": -1, "not": (0,)})
    # >0: the student's training stops at the first update at which it has spent this many teacher
    # tokens (generated + scored during training; cotgap.pipeline.budgets), or this many seconds
    stop_teacher_tokens: int = field(default=0, metadata={"min": 0})
    stop_seconds: float = field(default=0.0, metadata={"min": 0.0})
    # -- how it runs (docs/scale.md, "Training at scale"); not part of run or stage keys ----------
    launcher: str = field(default="inprocess", metadata={"choices": LAUNCHERS})
    # accelerate only. None: the config file's num_processes, else every GPU here
    num_processes: int | None = field(default=None, metadata={"min": 1})
    # a packaged config (cpu, ddp, fsdp, zero3) or a path; None: ddp with a GPU, cpu without
    config_file: str | None = None
    main_process_port: int | None = field(default=None, metadata={"min": 1, "max": 65535})  # None: a free port
    # experiment trackers (cotgap.backends.tracking): a name, a list of names, or "none"
    report_to: str | list = "none"
    # checkpoint every N optimizer updates; 0: automatic (cotgap.backends.checkpoints); -1: never
    save_steps: int = field(default=0, metadata={"min": -1})
    save_total_limit: int = field(default=1, metadata={"min": 1})  # checkpoints kept (the newest)

    @staticmethod
    def expand(given: dict) -> dict:
        """The section as given, with its ``preset``'s values under the fields it sets itself
        (``cotgap.schema`` calls this before checking). Renamed keys are refused with their new name."""
        for old, message in RENAMED.items():
            if old in given:
                raise UserError(message)
        preset = given.get("preset")
        if preset is None or preset not in PRESETS:
            return given  # an unknown preset is refused by name by the field check
        return {**PRESETS[preset], **given}

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
        # an unset budget stop is left out, so the keys of runs from before it existed stay the same
        return {k: v for k, v in asdict(self).items() if k not in EXECUTION_FIELDS and not (k in BUDGET_FIELDS and not v)}

    def lr(self) -> float:
        return float(self.learning_rate) if self.learning_rate is not None else DEFAULT_LR[self.method]

    def use_bf16(self) -> bool:
        """bf16 training: on a GPU by default; on a CPU only when asked (``bf16: true``), so that
        the same config computes the same numbers on CPUs with and without bf16 support."""
        if self.bf16 == "auto":
            from cotgap.backends import runtime

            return runtime.has_cuda()
        return bool(self.bf16)

    def processes(self) -> int:
        """Training processes, where known before launch (in process: 1; the launcher: its
        configured count, else 1 until it runs)."""
        if self.launcher == "inprocess":
            return 1
        from cotgap.backends import launch

        return launch.check(self) or 1

    def global_batch(self, processes: int | None = None) -> int:
        """Examples per optimizer update: per device x grad_accum x processes."""
        return self.per_device_batch_size * self.grad_accum * (processes or self.processes())

    def updates(self, n_examples: int, processes: int | None = None) -> int:
        """Optimizer updates this config performs on ``n_examples`` (what the Trainer computes:
        ceil(batches per epoch / grad_accum) per epoch, batches of per-device x processes)."""
        if self.max_steps and self.max_steps > 0:
            return self.max_steps
        batches = math.ceil(n_examples / (self.per_device_batch_size * (processes or self.processes())))
        per_epoch = max(1, math.ceil(batches / self.grad_accum))
        return math.ceil(per_epoch * self.epochs)

    def description(self, processes: int | None = None) -> dict:
        """The batch and loss semantics as recorded in ``report.json`` (``training.semantics``)."""
        n = processes or self.processes()
        return {
            "preset": self.preset,
            "per_device_batch_size": self.per_device_batch_size,
            "grad_accum": self.grad_accum,
            "processes": n,
            "global_batch": self.global_batch(n),
            "loss_average": self.loss_average,
            "cutoff_len": self.max_length,
            "overlength": self.overlength,
            "mask_history": self.mask_history,
            "bf16": self.use_bf16(),
            "seed": self.seed,
        }
