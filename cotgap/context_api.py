"""The context a strategy's hooks receive, as a typed protocol: the plugin API's one statement of it.

``RunContext`` (the core's, ``cotgap.pipeline.context``) and ``cotgap.testing.FakeContext`` (the
testing kit's) both implement it; ``tests/test_context_api.py`` checks that each has every member.
A plugin that uses only these members runs the same under the core and under the testing kit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

#: The members of the protocol (what the test compares), in the order the docs list them.
MEMBERS = (
    "params",
    "teachers",
    "student",
    "log",
    "generate_rationales",
    "train_student",
    "train_model",
    "training_config",
    "stage",
    "record",
    "workdir",
    "artifact_dir",
)


@runtime_checkable
class StrategyContext(Protocol):
    """What ``check``, ``generate`` and ``train`` get as ``ctx`` (``filter`` gets a narrower view)."""

    params: Any  # the strategy's validated parameters (its Params' defaults updated with the user's)
    teachers: list  # model references (``spec``, ``kind``, ``path()``, ``n_params``)
    student: Any  # the student's model reference

    def log(self, text: str) -> None:
        """A line on the run's terminal (rich markup allowed)."""

    def generate_rationales(
        self,
        model,
        *,
        source: str | None = None,
        samples: int = 1,
        temperature: float = 0.0,
        description: str | None = None,
        max_new_tokens: int | None = None,
    ) -> list[dict]:
        """``model``'s rationales for every train question, each ``correct`` by the task's scoring."""

    def train_student(
        self, records: list[dict], *, trainer_cls=None, callbacks=(), trainer_kwargs=None, **training_overrides
    ) -> Any:
        """Fine-tune the student on ``records``: the only model evaluated as the distilled student."""

    def train_model(self, base, records: list[dict], out_dir: Path, **kwargs) -> Any:
        """Fine-tune a model other than the student (never evaluated as it)."""

    def training_config(self, **overrides) -> Any:
        """The run's ``training`` section with ``overrides``."""

    def stage(self, name: str, inputs: Any, compute) -> dict:
        """A cached step of the strategy's own, keyed by ``inputs``."""

    def record(self, key: str, value: Any) -> None:
        """Into ``report.json`` → ``strategy_records``."""

    def workdir(self, name: str) -> Path:
        """A folder of this run for the strategy's files."""

    def artifact_dir(self, name: str) -> Path:
        """A cross-run cache folder for the strategy's artefacts."""
