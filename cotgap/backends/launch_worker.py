"""One worker process of a launched training: ``accelerate launch -m cotgap.backends.launch_worker JOB``.

Reads the job the parent wrote (``cotgap.backends.launch``: a
:class:`cotgap.backends.train_job.TrainJob`, its examples already tokenised, and its checkpoint
service's key and resume point), trains with the same
:func:`cotgap.backends.training.train_here` as an in-process run, and — main process only —
writes ``result.json`` (the TrainResult and the final state of stateful callbacks / trainer
keyword objects) beside the job. A UserError or PluginError is written to ``error.json`` for the
parent to raise as it was (exit 2); anything else leaves its traceback in the launch log (exit 1).
A worker whose parent cotgap process has died exits, so that a killed run leaves no training behind.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time
from pathlib import Path

from cotgap.errors import PluginError, UserError
from cotgap.jsonio import read_json, write_json

#: seconds between checks that the parent cotgap process is alive
PARENT_POLL = 2.0


def _exit_when_parent_dies(pid: int) -> None:
    def watch():
        while True:
            time.sleep(PARENT_POLL)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(3)
            except PermissionError:  # alive, another user's (cannot happen for our parent; harmless)
                pass

    threading.Thread(target=watch, name="cotgap-parent-watch", daemon=True).start()


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run(job_path: Path) -> int:
    """Train the job at ``job_path``; the process's exit status."""
    from cotgap.backends import checkpoints, launch, runtime
    from cotgap.backends.train_job import TrainJob
    from cotgap.backends.training import train_here

    work = job_path.parent
    data = read_json(job_path)
    if data.get("parent_pid"):
        _exit_when_parent_dies(int(data["parent_pid"]))
    runtime.configure(int(os.environ.get("OMP_NUM_THREADS") or 1))
    hooks = pickle.loads((work / data["objects"]).read_bytes()) if data.get("objects") else {}
    try:
        job = TrainJob.from_json(data, hooks)
        saved = checkpoints.JobCheckpoints.from_json(job.work, data["checkpoints"], job.stateful())
        result = train_here(job, saved, progress=False, processes=int(data["processes"]), log=lambda msg: print(msg, flush=True))
    except (UserError, PluginError) as exc:
        kind = "PluginError" if isinstance(exc, PluginError) else "UserError"
        write_json(work / launch.ERROR_FILE, {"type": kind, "message": str(exc)})
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 2
    if _is_main():
        write_json(work / launch.RESULT_FILE, {"result": result.to_json(), "state": saved.final_state()})
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: accelerate launch -m cotgap.backends.launch_worker JOB.json", file=sys.stderr)
        return 2
    return run(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
