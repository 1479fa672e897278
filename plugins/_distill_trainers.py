"""TRL's distillation trainers, subclassed only to count what they compute (the compute ledger).

Each subclass calls TRL's own method and then counts from its inputs or outputs; no loss, sampling
or update is changed. Counts (``Counts``) are per training and go to the run's compute ledger:

- ``student_tokens_sampled``: completion tokens the student generated (up to and with its EOS);
- ``teacher_tokens_generated``: completion tokens the teacher generated during training (GKD's
  sequence-level KD);
- ``teacher_tokens_scored``: tokens whose teacher distribution entered the loss (the completion
  tokens of every micro-batch, student samples or teacher rationales);
- ``teacher_forward_tokens``: every token the teacher's forward passes read (prompts included);
- ``tokens_trained``: tokens the student's loss covered (the same positions as the teacher scored).

``CountsCheckpoint`` saves the counts with each checkpoint, so a resumed training reports the counts
of the whole training, not only of the part run after the resume.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

COUNTED = (
    "student_tokens_sampled",
    "teacher_tokens_generated",
    "teacher_tokens_scored",
    "teacher_forward_tokens",
    "tokens_trained",
)
LEDGER_FILE = "cotgap_compute.json"


class Counts:
    """Token counters of one training; ``samples`` keeps the first few student samples (ids) so
    a test can score them with the teacher itself."""

    def __init__(self, keep_samples: int = 0):
        self.values = dict.fromkeys(COUNTED, 0)
        self.keep_samples = keep_samples
        self.samples: list[dict] = []

    def add(self, **counts) -> None:
        for k, v in counts.items():
            self.values[k] += int(v)

    def keep(self, input_ids, attention_mask, completion_mask) -> None:
        """Store (prompt + sample ids, mask of the sampled tokens) of a batch, up to ``keep_samples``."""
        for ids, att, comp in zip(input_ids.tolist(), attention_mask.tolist(), completion_mask.tolist()):
            if len(self.samples) < self.keep_samples:
                self.samples.append({"input_ids": ids, "attention_mask": att, "completion_mask": comp})

    def state(self) -> dict:
        return dict(self.values)

    def load(self, state: dict) -> None:
        self.values.update({k: int(v) for k, v in state.items() if k in self.values})


@functools.cache
def _callback_base():
    from transformers import TrainerCallback

    class CountsCheckpoint(TrainerCallback):
        """Writes the counts into each checkpoint folder the Trainer saves."""

        def __init__(self, counts: Counts):
            self.counts = counts

        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                (folder / LEDGER_FILE).write_text(json.dumps(self.counts.state()))

    return CountsCheckpoint


def counts_checkpoint(counts: Counts):
    return _callback_base()(counts)


def restore(counts: Counts, checkpoint: Path | None) -> None:
    """The counts saved with ``checkpoint`` (a resumed training), if any."""
    f = Path(checkpoint) / LEDGER_FILE if checkpoint else None
    if f is not None and f.is_file():
        counts.load(json.loads(f.read_text()))


@functools.cache
def onpolicy_trainer_class():
    """``trl.DistillationTrainer`` counting its student samples and teacher-scored tokens."""
    from trl import DistillationTrainer

    class CountingDistillationTrainer(DistillationTrainer):
        def __init__(self, *args, counts: Counts, **kwargs):
            super().__init__(*args, **kwargs)
            self.counts = counts

        def _generate_and_score_completions(self, inputs):
            import torch

            out = super()._generate_and_score_completions(inputs)
            if self.model.training:
                mask = out["completion_mask"]
                self.counts.add(student_tokens_sampled=mask.sum().item())
                self.counts.keep(
                    torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1),
                    torch.cat([out["prompt_mask"], mask], dim=1),
                    torch.cat([torch.zeros_like(out["prompt_mask"]), mask], dim=1),
                )
            return out

        def _compute_loss(self, unwrapped_student, inputs, num_items_in_batch):
            out = super()._compute_loss(unwrapped_student, inputs, num_items_in_batch)
            if unwrapped_student.training:
                mask = inputs["completion_mask"] if "tool_mask" not in inputs else inputs["completion_mask"] * inputs["tool_mask"]
                scored = int(mask.sum().item())
                read = int(inputs["prompt_mask"].sum().item() + inputs["completion_mask"].sum().item())
                self.counts.add(teacher_tokens_scored=scored, tokens_trained=scored, teacher_forward_tokens=read)
            return out

    return CountingDistillationTrainer


@functools.cache
def gkd_trainer_class():
    """``trl.experimental.gkd.GKDTrainer`` counting samples (student's or, for sequence-level KD,
    the teacher's) and the tokens its teacher scores."""
    from trl.experimental.gkd import GKDTrainer

    class CountingGKDTrainer(GKDTrainer):
        def __init__(self, *args, counts: Counts, **kwargs):
            super().__init__(*args, **kwargs)
            self.counts = counts

        def generate_on_policy_outputs(self, model, inputs, generation_config):
            ids, attention, labels = GKDTrainer.generate_on_policy_outputs(model, inputs, generation_config)
            sampled = int((labels != -100).sum().item())
            teacher = self.accelerator.unwrap_model(self.teacher_model)
            if model is teacher or model is self.teacher_model:
                self.counts.add(teacher_tokens_generated=sampled)
            else:
                self.counts.add(student_tokens_sampled=sampled)
                self.counts.keep(ids, attention, (labels != -100).long())
            return ids, attention, labels

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            if model.training:
                scored = int((inputs["labels"][:, 1:] != -100).sum().item())
                read = int(inputs["attention_mask"].sum().item())
                self.counts.add(teacher_tokens_scored=scored, tokens_trained=scored, teacher_forward_tokens=read)
            return out

    return CountingGKDTrainer
