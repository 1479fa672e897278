"""Checkpoints of a student training, and resuming a killed one from the last of them: a service
of the training job (:class:`JobCheckpoints`, from ``TrainJob.checkpoints``).

A training saves Trainer checkpoints (weights, optimizer, scheduler, RNG states, trainer state)
in its work folder ``<out_dir>.work/`` every ``training.save_steps`` optimizer updates — by default
(``save_steps: 0``) only a training of more than :data:`AUTO_MIN_UPDATES` updates, every
:data:`AUTO_EVERY` — keeping the newest ``training.save_total_limit``. No checkpoint is saved at
the last update: the finished model is written to ``out_dir`` right after.

A checkpoint is only ever resumed by the same job: ``checkpoint.json`` beside the checkpoints holds
the key of the training's inputs (base model, examples, training settings, launch, trainer class,
callbacks and trainer keyword arguments) and the last update saved; checkpoints of another key,
or with no record, are deleted. A checkpoint counts as complete when its ``trainer_state.json``
(the Trainer writes it last) parses and names its own update; a newer incomplete one (killed while
being saved) is deleted and the complete one before it resumed.

Objects among the callbacks and trainer keyword arguments that define ``checkpoint_state()``
(a JSON-able dict) and ``load_checkpoint_state(dict)`` have that state saved into every
checkpoint (``cotgap_state.json``, written before the Trainer's own files) and restored before a
resumed training starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from cotgap.jsonio import key_of, read_json, write_json

#: ``save_steps: 0`` (automatic): a training of more than this many optimizer updates checkpoints…
AUTO_MIN_UPDATES = 1000
#: …every this many updates (a kill loses at most this much work)
AUTO_EVERY = 500
PREFIX = "checkpoint-"  # the Trainer's folder names: checkpoint-<update>
RECORD = "checkpoint.json"  # {"key", "update"}: whose checkpoints these are, the last saved
STATE = "cotgap_state.json"  # the checkpoint_state() of stateful callbacks / trainer keyword objects
TRAINER_STATE = "trainer_state.json"


def save_every(cfg, updates: int) -> int:
    """Updates between checkpoints for a training of ``updates`` updates (0: no checkpoints)."""
    if cfg.save_steps > 0:
        return cfg.save_steps
    if cfg.save_steps == 0 and updates > AUTO_MIN_UPDATES:
        return AUTO_EVERY
    return 0


# -- the key of a job ---------------------------------------------------------------------------
def inputs_key(base_path: str, examples: list[dict], cfg, trainer_cls, callbacks, trainer_kwargs, launch: dict) -> str:
    """What a checkpoint depends on: resuming one made from anything else would silently combine two
    trainings. ``launch`` names how it runs (launcher, processes, accelerate config): checkpoints
    hold per-process RNG (and sharded optimizer) states."""
    data = json.dumps(examples, sort_keys=True, default=str).encode()
    return key_of(
        {
            "base": _model_identity(base_path),
            "examples": hashlib.sha256(data).hexdigest(),
            "training": cfg.stage_inputs(),
            "launch": launch,
            "trainer": describe(trainer_cls),
            "callbacks": describe(list(callbacks)),
            "trainer_kwargs": describe(dict(trainer_kwargs or {})),
        }
    )


def _model_identity(path: str) -> Any:
    """The base model folder's files by name, size and modification time (cheap on 15 GB)."""
    p = Path(path)
    if not p.is_dir():
        return str(path)
    return [str(p.resolve())] + sorted([f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in p.iterdir() if f.is_file())


def describe(v: Any, depth: int = 0) -> Any:
    """A JSON-able description of ``v`` for a key: plain data as is, classes and functions by name,
    other objects by class and (two levels deep) their attributes; tensors and modules by class."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, dict):
        return {str(k): describe(x, depth) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [describe(x, depth) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted(repr(describe(x, depth)) for x in v)
    if isinstance(v, type) or (callable(v) and hasattr(v, "__qualname__")):
        return f"{getattr(v, '__module__', '')}:{v.__qualname__}"
    name = f"{type(v).__module__}:{type(v).__qualname__}"
    state = getattr(v, "__dict__", None)
    if state is None or depth >= 2 or type(v).__module__.split(".")[0] in ("torch", "numpy"):
        return name
    return {"type": name, "state": describe(state, depth + 1)}


# -- finding the checkpoint to resume -----------------------------------------------------------
def _update_of(path: Path) -> int:
    try:
        return int(path.name[len(PREFIX) :])
    except ValueError:
        return -1


def complete(path: Path) -> bool:
    """The Trainer finished saving ``path``: its trainer state (written last) parses and names it."""
    try:
        return int(read_json(path / TRAINER_STATE).get("global_step", -1)) == _update_of(path)
    except (OSError, ValueError, AttributeError):
        return False


def resume_point(work: Path, key: str, log=print) -> Path | None:
    """The checkpoint in ``work`` to resume a training of inputs ``key`` from, or None; checkpoints
    of other inputs and incomplete ones are deleted (one line says so)."""
    work = Path(work)
    found = sorted((p for p in work.glob(PREFIX + "*") if p.is_dir() and _update_of(p) >= 0), key=_update_of)
    if not found:
        return None
    try:
        record = read_json(work / RECORD)
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get("key") != key:
        for p in found:
            shutil.rmtree(p, ignore_errors=True)
        log(f"  [yellow]discarded {len(found)} checkpoint(s) in {work}: made from other inputs[/yellow]")
        return None
    while found and not complete(found[-1]):
        shutil.rmtree(found.pop(), ignore_errors=True)  # killed while being saved
    if not found:
        return None
    log(f"  resuming the training from {found[-1].name} ({work})")
    return found[-1]


# -- state of callbacks and trainer keyword objects ---------------------------------------------
def stateful_objects(callbacks, trainer_kwargs) -> dict[str, Any]:
    """The callbacks and trainer keyword values with ``checkpoint_state``/``load_checkpoint_state``,
    by position (the same in every process and in a resumed run of the same key)."""
    named = {f"callbacks[{i}]": cb for i, cb in enumerate(callbacks)}
    named.update({f"trainer_kwargs.{k}": v for k, v in (trainer_kwargs or {}).items()})
    return {
        k: v
        for k, v in named.items()
        if not isinstance(v, type)
        and callable(getattr(v, "checkpoint_state", None))
        and callable(getattr(v, "load_checkpoint_state", None))
    }


def state_of(objects: dict[str, Any]) -> dict:
    return {name: obj.checkpoint_state() for name, obj in objects.items()}


def load_into(data: dict, objects: dict[str, Any]) -> None:
    for name, obj in objects.items():
        if name in data:
            obj.load_checkpoint_state(data[name])


def restore(checkpoint: Path, objects: dict[str, Any], log=print) -> int:
    """Load the saved state of ``objects`` from ``checkpoint``; returns its update."""
    if objects:
        if (checkpoint / STATE).is_file():
            load_into(read_json(checkpoint / STATE), objects)
        else:
            log(f"  [yellow]{checkpoint.name} holds no state of {', '.join(objects)}: they start afresh[/yellow]")
    return _update_of(checkpoint)


def recorder(work: Path, key: str, objects: dict[str, Any]):
    """The ``TrainerCallback`` that stores ``objects``' state in each checkpoint, records each
    saved checkpoint with the job's ``key``, and skips the Trainer's checkpoint at the last update."""
    from transformers import TrainerCallback

    class CheckpointRecorder(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_save = False  # the finished model is written next: no checkpoint needed
            if control.should_save and objects and state.is_world_process_zero:
                write_json(work / f"{PREFIX}{state.global_step}" / STATE, state_of(objects))

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                write_json(work / RECORD, {"key": key, "update": state.global_step})

    return CheckpointRecorder()


# -- the service a training job uses ------------------------------------------------------------
class JobCheckpoints:
    """One job's checkpoints: its work folder, the key of its inputs, the stateful hooks whose
    state travels with each checkpoint, and the checkpoint it resumes from (None: from the start).
    Built by :meth:`cotgap.backends.train_job.TrainJob.checkpoints` (the resume point is found
    there, once: in the parent process under the launcher), rebuilt by each worker from
    :meth:`to_json`."""

    def __init__(self, work: Path, key: str, objects: dict[str, Any], resume_from: Path | None = None):
        self.work = Path(work)
        self.key = key
        self.objects = objects
        self.resume_from = Path(resume_from) if resume_from else None

    @classmethod
    def open(cls, work: Path, key: str, objects: dict[str, Any], log=print) -> JobCheckpoints:
        return cls(work, key, objects, resume_point(work, key, log))

    def to_json(self) -> dict:
        return {"key": self.key, "resume_from": str(self.resume_from) if self.resume_from else None}

    @classmethod
    def from_json(cls, work: Path, data: dict, objects: dict[str, Any]) -> JobCheckpoints:
        return cls(work, data["key"], objects, data.get("resume_from"))

    def attach(self, trainer, every: int) -> None:
        """Save a checkpoint every ``every`` updates (0: none), recorded with the job's key."""
        if every:
            trainer.add_callback(recorder(self.work, self.key, self.objects))

    def restore(self, log=print) -> int | None:
        """Load the hooks' state from the resume point; its update (None: starting afresh)."""
        return restore(self.resume_from, self.objects, log) if self.resume_from is not None else None

    def final_state(self) -> dict:
        """The hooks' state after training (the launcher's main worker sends it to the parent)."""
        return state_of(self.objects)

    def load_final(self, data: dict) -> None:
        """The main worker's final hook state, into the parent's objects."""
        load_into(data or {}, self.objects)

    def clear(self) -> None:
        """The training finished: its work folder is no longer needed."""
        shutil.rmtree(self.work, ignore_errors=True)
