"""Experiment tracking: ``training.report_to`` names the trackers (tensorboard, wandb, mlflow).

The training curves go through the Trainer's own integrations (transformers' callbacks, as any
Trainer user gets them); when the run ends, its results — baseline and distilled accuracy, the
exact test's p-value, wins and losses, and the verdict — are logged to the same trackers, so one
dashboard shows both. The run name is the run directory's name; TensorBoard writes under
``<run>/logs/tensorboard/`` (wandb and mlflow use their own configuration: ``WANDB_PROJECT``,
``MLFLOW_TRACKING_URI`` …). Tracking never changes results: it is not part of run or stage keys.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

from cotgap.errors import UserError

TRACKERS = ("tensorboard", "wandb", "mlflow")
#: the package each tracker needs (what an install hint names)
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
#: where the run directory's name reaches the Trainer (also in launcher worker processes)
RUN_NAME_ENV = "COTGAP_RUN_NAME"


def names(report_to) -> list[str]:
    """``report_to`` (a name, a list of names, "none" or empty) as a list of tracker names."""
    if report_to in (None, "", "none", [], ["none"]):
        return []
    return [report_to] if isinstance(report_to, str) else list(report_to)


def check(report_to) -> None:
    """Unknown or uninstalled trackers are refused before any work, in one line."""
    for name in names(report_to):
        if name not in TRACKERS:
            raise UserError(f"training.report_to: unknown tracker {name!r} (known: {', '.join(TRACKERS)}, none)")
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise UserError(f"training.report_to: {name} is not installed (pip install {PACKAGES[name]})")


def tensorboard_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "logs" / "tensorboard"


@contextlib.contextmanager
def training_environment(report_to, run_dir: Path):
    """While the student trains: the run name and TensorBoard's folder, as the Trainer's
    integrations read them (environment variables reach launcher workers too)."""
    if not names(report_to):
        yield
        return
    from cotgap.backends import runtime

    with runtime.environment({RUN_NAME_ENV: Path(run_dir).name, "TENSORBOARD_LOGGING_DIR": str(tensorboard_dir(run_dir))}):
        yield


def results(report: dict) -> dict[str, float]:
    """The run's end results as tracker scalars."""
    d = report.get("difference") or {}
    out = {
        "cotgap/baseline_accuracy": report["baseline"]["accuracy"],
        "cotgap/distilled_accuracy": report["distilled"]["accuracy"],
        "cotgap/difference": d.get("diff"),
        "cotgap/p_value": d.get("p_value"),
        "cotgap/wins": d.get("wins"),
        "cotgap/losses": d.get("losses"),
    }
    return {k: float(v) for k, v in out.items() if v is not None}


def log_results(report_to, run_dir: Path, report: dict) -> None:
    """Log the end results and the verdict to every tracker in ``report_to``."""
    scalars, verdict, name = results(report), str(report.get("verdict")), Path(run_dir).name
    for tracker in names(report_to):
        if tracker == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            with SummaryWriter(log_dir=str(tensorboard_dir(run_dir) / "results")) as writer:
                for k, v in scalars.items():
                    writer.add_scalar(k, v, 0)
                writer.add_text("cotgap/verdict", verdict, 0)
        elif tracker == "wandb":
            import wandb

            run = wandb.init(name=name, job_type="cotgap-results", reinit=True)
            run.log(scalars)
            run.summary["verdict"] = verdict
            run.finish()
        elif tracker == "mlflow":
            import mlflow

            with mlflow.start_run(run_name=name):
                mlflow.log_metrics({k.replace("/", "_"): v for k, v in scalars.items()})
                mlflow.set_tag("verdict", verdict)
