"""What a training produces, and where it works: shared by the in-process trainer
(:mod:`cotgap.backends.training`) and the accelerate launcher (:mod:`cotgap.backends.launch`),
which runs the trainer in worker processes and reads this result back — so neither imports the other
for it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


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


def work_dir(out_dir: str | Path) -> Path:
    """The training's work folder beside ``out_dir``: checkpoints, the launcher's job and log. It
    survives a kill (a re-run resumes from it) and is removed after success."""
    out_dir = Path(out_dir)
    return out_dir.parent / (out_dir.name + ".work")
