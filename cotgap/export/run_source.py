"""Open a run directory for export: check it is one run's verified chain with the needed stage
finished, and read what the records and the card need (nothing is recomputed or written)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cotgap.errors import UserError
from cotgap.jsonio import read_json
from cotgap.rundir import RUN_FILE, RunDir

#: The stage whose outputs each export reads.
STAGE_OF = {"generations": "generate", "kept": "filter", "training": "train"}


@dataclass
class RunInfo:
    path: Path
    key: str  # the run's identity key (config hash), as run.json holds it
    config: dict
    manifest: dict
    stages: dict = field(default_factory=dict)  # stage name -> its record

    @property
    def strategy_records(self) -> dict:
        merged: dict = {}
        for s in ("generate", "filter", "train"):
            merged.update((self.stages.get(s) or {}).get("strategy_records") or {})
        return merged


def open_run(run_dir: str | Path, what: str) -> RunInfo:
    """The run at ``run_dir``, refused in one line when it is not a run directory, or the stage
    ``what`` reads has not finished or cannot be trusted (its record, the stages it consumed, or
    their files do not match). Stages it does not read (e.g. an evaluation being re-run) do not matter."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    run = RunDir(path, create=False)
    identity = run.identity()
    if identity is None:
        raise UserError(f"{run_dir} is not a cotgap run directory (no {RUN_FILE})")
    stage = STAGE_OF[what]
    _check_chain(run, stage, identity.get("key"), what)
    try:
        config, manifest = read_json(run / "config.json"), read_json(run / "manifest.json")
    except (OSError, ValueError):
        raise UserError(f"run {run.path}: config.json or manifest.json is missing or corrupt") from None
    stages = {p.stem: run.record(p.stem) for p in sorted((run.path / "stages").glob("*.json"))}
    return RunInfo(path=run.path, key=identity["key"], config=config, manifest=manifest, stages=stages)


def _check_chain(run: RunDir, stage: str, key: str | None, what: str) -> None:
    """``stage`` and every stage it consumed, transitively: finished, of this run's config, files as recorded."""
    why = run.problem(stage)
    if why == "not run":
        raise UserError(
            f"run {run.path}: its {stage} stage has not finished, so there are no {what} records to "
            "export; finish the run first (re-run the same command)"
        )
    rec = run.record(stage) or {}
    if why is None and rec.get("run") != key:
        why = "it belongs to another config"
    if why is not None:
        raise UserError(f"run {run.path}: stage {stage} cannot be trusted ({why}); re-run it with the same config to recompute")
    for upstream in rec.get("consumes") or {}:
        _check_chain(run, upstream, key, what)
