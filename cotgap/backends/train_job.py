"""One training described once: :class:`TrainJob`, run in this process or by the launcher.

The context (``RunContext.train_student`` / ``train_model``) builds the job once: the base model,
the examples, the training config, the output folder and the trainer hooks (a trainer class,
callbacks, trainer keyword arguments), with the examples **tokenised here, once**
(:func:`encode`). Everything after reads the job: :func:`cotgap.backends.training.run_job` runs
it here or hands it to :mod:`cotgap.backends.launch` (``job.json`` from :meth:`TrainJob.to_json`
plus the pickled hooks), the workers rebuild it with :meth:`TrainJob.from_json`, its checkpoints
are a service of it (:meth:`TrainJob.checkpoints`), and the student's stored training set
(:mod:`cotgap.pipeline.trained_set`) takes its per-example tokenisation facts from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cotgap.backends import sft_tokens
from cotgap.backends.train_result import work_dir
from cotgap.errors import UserError
from cotgap.training_config import TrainConfig


def example_messages(ex: dict) -> list[dict]:
    """An example's chat turns: its ``messages``, or a one-turn chat built from ``prompt`` /
    ``completion`` (examples written by hand or by older code)."""
    if ex.get("messages"):
        return ex["messages"]
    return [{"role": "user", "content": ex["prompt"]}, {"role": "assistant", "content": ex["completion"]}]


@dataclass
class Tokenised:
    """Examples tokenised at a training config's cutoff: ``rows`` (input ids, labels, the example's
    index and static weight: what the Trainer gets), ``truncation`` (what the cutoff did, counts
    per ``source``) and ``cuts`` (per example: [prompt tokens cut, response tokens cut], or None
    for an example left out)."""

    rows: list[dict]
    truncation: dict
    cuts: list


def encode(tokenizer, examples: list[dict], cfg: TrainConfig) -> Tokenised:
    """Examples -> :class:`Tokenised` (:func:`cotgap.backends.sft_tokens.encode` at ``cfg``'s cutoff):
    the one tokenisation of a training's examples."""
    rows, cuts = [], []
    counts: dict[str, dict[str, int]] = {"prompt_truncated": {}, "response_truncated": {}, "dropped": {}}

    def count(kind: str, source: str) -> None:
        counts[kind][source] = counts[kind].get(source, 0) + 1

    for i, ex in enumerate(examples):
        enc = sft_tokens.encode(
            tokenizer, example_messages(ex), cutoff_len=cfg.max_length, overlength=cfg.overlength, mask_history=cfg.mask_history
        )
        source = str(ex.get("source"))
        if enc is None or not any(t != sft_tokens.IGNORE_INDEX for t in enc.labels):
            count("dropped", source)
            cuts.append(None)
            continue
        if enc.source_cut:
            count("prompt_truncated", source)
        if enc.target_cut:
            count("response_truncated", source)
        cuts.append([enc.source_cut, enc.target_cut])
        row = {"input_ids": enc.input_ids, "labels": enc.labels, "example_index": i}
        if "weight" in ex and ex["weight"] is not None:
            row["weight"] = float(ex["weight"])
        rows.append(row)
    return Tokenised(rows, counts, cuts)


@dataclass
class TrainJob:
    """A training: fine-tune ``base_path`` on ``examples`` (tokenised: ``tokens``) with ``cfg``
    (seed, batch, loss, launcher, checkpoints) into ``out_dir``, with the trainer hooks. Built once
    (:meth:`build`); serialisable to the launcher's workers (:meth:`to_json` and :meth:`hooks`)."""

    base_path: str
    examples: list[dict]
    out_dir: Path
    cfg: TrainConfig
    tokens: Tokenised
    trainer_cls: Any = None
    callbacks: list = field(default_factory=list)
    trainer_kwargs: dict = field(default_factory=dict)
    tokenizer: Any = field(default=None, repr=False, compare=False)  # in process only: the one already loaded

    def __post_init__(self):
        self.out_dir = Path(self.out_dir)
        self.callbacks = list(self.callbacks)
        self.trainer_kwargs = dict(self.trainer_kwargs or {})
        if not self.tokens.rows:
            raise UserError(
                f"no training example fits training.max_length = {self.cfg.max_length} tokens (with overlength: "
                f"{self.cfg.overlength}): raise training.max_length"
            )

    @classmethod
    def build(
        cls,
        base_path: str,
        examples: list[dict],
        out_dir: str | Path,
        cfg: TrainConfig,
        *,
        tokenizer: Any = None,
        trainer_cls=None,
        callbacks=(),
        trainer_kwargs: dict | None = None,
    ) -> TrainJob:
        """The job, its examples tokenised with ``tokenizer`` (the base model's when None)."""
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(base_path)
        return cls(
            base_path=str(base_path),
            examples=list(examples),
            out_dir=Path(out_dir),
            cfg=cfg,
            tokens=encode(tokenizer, examples, cfg),
            trainer_cls=trainer_cls,
            callbacks=list(callbacks),
            trainer_kwargs=dict(trainer_kwargs or {}),
            tokenizer=tokenizer,
        )

    @property
    def rows(self) -> list[dict]:
        return self.tokens.rows

    @property
    def work(self) -> Path:
        """The work folder beside ``out_dir``: checkpoints, the launcher's job and log."""
        return work_dir(self.out_dir)

    def checkpoints(self, launch: dict, log=print):
        """The job's checkpoint service for a run described by ``launch`` (launcher, processes,
        accelerate config), its resume point found (checkpoints of other inputs discarded)."""
        from cotgap.backends import checkpoints

        key = checkpoints.inputs_key(
            self.base_path, self.examples, self.cfg, self.trainer_cls, self.callbacks, self.trainer_kwargs, launch
        )
        return checkpoints.JobCheckpoints.open(self.work, key, self.stateful(), log)

    def stateful(self) -> dict:
        """The hooks that carry state across checkpoints (``checkpoint_state`` / ``load_checkpoint_state``)."""
        from cotgap.backends import checkpoints

        return checkpoints.stateful_objects(self.callbacks, self.trainer_kwargs)

    # -- to the launcher's workers and back ---------------------------------------------------------
    def to_json(self) -> dict:
        """The job's data (the hooks travel apart, :meth:`hooks`)."""
        return {
            "base_path": self.base_path,
            "examples": self.examples,
            "out_dir": str(self.out_dir),
            "config": asdict(self.cfg),
            "tokens": asdict(self.tokens),
        }

    def hooks(self) -> dict:
        return {"trainer_cls": self.trainer_cls, "callbacks": self.callbacks, "trainer_kwargs": self.trainer_kwargs}

    @classmethod
    def from_json(cls, data: dict, hooks: dict | None = None) -> TrainJob:
        hooks = hooks or {}
        return cls(
            base_path=data["base_path"],
            examples=data["examples"],
            out_dir=Path(data["out_dir"]),
            cfg=TrainConfig(**data["config"]),
            tokens=Tokenised(**data["tokens"]),
            trainer_cls=hooks.get("trainer_cls"),
            callbacks=hooks.get("callbacks", []),
            trainer_kwargs=hooks.get("trainer_kwargs", {}),
        )
