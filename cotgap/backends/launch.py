"""``training.launcher: accelerate``: the student trained by worker processes that the real
``accelerate launch`` starts (DDP, FSDP, DeepSpeed ZeRO-3, or gloo on CPUs).

The parent writes the :class:`cotgap.backends.train_job.TrainJob` into the training's work folder
``<out_dir>.work/``: ``job.json`` (its data — base model path, examples and their tokenisation,
out dir, training config — the processes, its checkpoint service's key and resume point; the
trainer class and callbacks by their ``module:qualname``) and, when there are any, ``job.pkl``
(the trainer class, callbacks and trainer keyword arguments, pickled — by reference for classes,
so each must be importable by name in a fresh process: a class defined inside a function is
refused in one line before anything starts). Every worker runs ``cotgap.backends.launch_worker``,
which trains with the same :func:`cotgap.backends.training.train_here`; only the main process
writes the merged model and ``train.json`` (atomically), and the parent reads the result back
from them. Workers' output goes to ``<out_dir>.work/launch.log`` (moved into ``out_dir`` after
success); a failed worker ends the stage with one line naming that log.

Batch semantics: ``training.per_device_batch_size`` examples on each process, ``grad_accum``
micro-batches per update; the global batch is their product with the number of processes
(``TrainConfig.global_batch``), recorded in ``report.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from cotgap.errors import PluginError, ServiceError, UserError
from cotgap.jsonio import read_json, write_json

#: the packaged accelerate configs (``training.config_file: <name>``)
CONFIG_DIR = Path(__file__).resolve().parents[1] / "accelerate_configs"
WORKER_MODULE = "cotgap.backends.launch_worker"
JOB_FILE = "job.json"
OBJECTS_FILE = "job.pkl"
LOG_FILE = "launch.log"
ERROR_FILE = "error.json"  # a worker's one-line error (UserError, PluginError): re-raised by the parent
RESULT_FILE = "result.json"  # the main process's TrainResult and the final checkpoint_state() of stateful objects
ERRORS = {"UserError": UserError, "PluginError": PluginError}


# -- the accelerate config and the processes ----------------------------------------------------
def packaged_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_path(name: str | None, *, cuda: bool | None = None) -> Path:
    """The accelerate config file: a packaged one by name, or a path; None: ``ddp`` where there is
    a GPU, ``cpu`` where there is none."""
    if name is None:
        if cuda is None:
            from cotgap.backends import runtime

            cuda = runtime.has_cuda()
        name = "ddp" if cuda else "cpu"
    packaged = CONFIG_DIR / f"{name}.yaml"
    if packaged.is_file():
        return packaged
    path = Path(name).expanduser()
    if not path.is_file():
        raise UserError(
            f"training.config_file {name!r} is neither a packaged accelerate config ({', '.join(packaged_configs())}) nor a file"
        )
    return path.resolve()


def _config(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"training.config_file {path}: not a readable YAML file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or "distributed_type" not in data:
        raise UserError(f"training.config_file {path}: not an accelerate config (no distributed_type)")
    return data


def processes(cfg, path: Path, *, gpus: int | None = None) -> int | None:
    """How many worker processes: ``training.num_processes``, else the config's ``num_processes``,
    else every GPU here (``gpus``; None: not known yet)."""
    if cfg.num_processes is not None:
        return cfg.num_processes
    n = _config(path).get("num_processes")
    if isinstance(n, int) and n > 0:
        return n
    return None if gpus is None else max(1, gpus)


def check(cfg, *, gpus: int | None = None) -> int | None:
    """Refuse launch settings that cannot work, before any work; the number of processes when known.
    ``gpus``: the GPUs here (None while the config is read: torch is not imported then)."""
    if cfg.config_file is None and gpus is None:
        return None  # ddp or cpu: known only where it runs
    path = config_path(cfg.config_file, cuda=None if gpus is None else gpus > 0)
    data = _config(path)
    n = processes(cfg, path, gpus=gpus)
    if n is None:
        return None
    if n < 2 and data.get("distributed_type") == "MULTI_GPU":
        raise UserError(
            f"training.config_file {path.stem}: DDP needs at least 2 processes, got {n} "
            "(train one process with training.launcher: inprocess)"
        )
    return n


def free_port() -> int:
    """A TCP port nobody listens on now (for the process group's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- what travels to the workers ----------------------------------------------------------------
def importable_name(obj, what: str) -> str:
    """``module:qualname`` of ``obj``'s class (or of ``obj``, a class), which a fresh process can
    import; refused in one line when it cannot (defined in a function, or in ``__main__``)."""
    cls = obj if isinstance(obj, type) else type(obj)
    name = f"{cls.__module__}:{cls.__qualname__}"
    found = None
    if "<locals>" not in cls.__qualname__ and cls.__module__ != "__main__":
        try:
            found = importlib.import_module(cls.__module__)
            for part in cls.__qualname__.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
    if found is not cls:
        why = (
            "is defined inside a function"
            if "<locals>" in cls.__qualname__
            else "is defined in the __main__ script"
            if cls.__module__ == "__main__"
            else "is not found under its name"
        )
        raise PluginError(
            f"training.launcher accelerate: the {what} {cls.__name__} ({cls.__module__}.{cls.__qualname__}) "
            f"{why}, so the worker processes cannot import it; define it at module level "
            "(or train with training.launcher: inprocess)"
        )
    return name


def write_job(work: Path, job, run: dict) -> Path:
    """``job.json`` (the job's data, ``run``: processes, checkpoints, the parent's pid; the hooks by
    their ``module:qualname``) and, for the hooks, ``job.pkl`` in ``work``; returns the job file.
    A hook a worker could not import or unpickle is refused in one line before anything is written."""
    hooks = job.hooks()
    trainer_cls, callbacks, trainer_kwargs = hooks["trainer_cls"], hooks["callbacks"], hooks["trainer_kwargs"]
    data = {
        **job.to_json(),
        **run,
        "trainer_cls": importable_name(trainer_cls, "trainer class") if trainer_cls else None,
        "callbacks": [importable_name(cb, "callback") for cb in callbacks],
        "objects": None,
    }
    if trainer_cls is not None or callbacks or trainer_kwargs:
        try:
            blob = pickle.dumps(hooks)
        except Exception as exc:  # a lambda, an open file, a local class deeper down...
            raise PluginError(
                "training.launcher accelerate: the callbacks or trainer keyword arguments cannot be "
                f"sent to the worker processes ({type(exc).__name__}: {exc})"
            ) from None
        tmp = work / (OBJECTS_FILE + ".tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, work / OBJECTS_FILE)
        data["objects"] = OBJECTS_FILE
    write_json(work / JOB_FILE, data)
    return work / JOB_FILE


def command(config: Path, n: int, port: int, job: Path, *, bf16: bool) -> list[str]:
    """The ``accelerate launch`` command line (the CLI of this interpreter's environment)."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--num_processes",
        str(n),
        "--main_process_port",
        str(port),
        "--mixed_precision",
        "bf16" if bf16 else "no",
        "-m",
        WORKER_MODULE,
        str(job),
    ]


def environment(n: int) -> dict:
    """The workers' environment: this one, the cotgap being run importable first, and this
    process's threads shared between the workers (so a CPU run does not oversubscribe)."""
    env = dict(os.environ)
    root = Path(__file__).resolve().parents[2]
    if root.name not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    threads = int(env.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    env["OMP_NUM_THREADS"] = str(max(1, threads // n))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


# -- running the job ----------------------------------------------------------------------------
def run_job(job, *, log=print):
    """:func:`cotgap.backends.training.run_job` in worker processes: the job (its ``out_dir``
    made absolute: the workers start elsewhere) written for them, the same TrainResult read back."""
    from cotgap.backends.train_result import TrainResult

    job = dataclasses.replace(job, out_dir=Path(job.out_dir).resolve())
    config = config_path(job.cfg.config_file)
    n = check(job.cfg, gpus=_gpus())
    work = job.work
    work.mkdir(parents=True, exist_ok=True)
    launch = {"launcher": "accelerate", "processes": n, "config": hashlib.sha256(config.read_bytes()).hexdigest()[:16]}
    saved = job.checkpoints(launch, log)
    for name in (ERROR_FILE, RESULT_FILE, OBJECTS_FILE):
        (work / name).unlink(missing_ok=True)
    job_file = write_job(work, job, {"processes": n, "checkpoints": saved.to_json(), "parent_pid": os.getpid()})
    port = job.cfg.main_process_port or free_port()
    log(f"  training in {n} processes (accelerate launch, config {config.stem}); log: {work / LOG_FILE}")
    rc = _run(command(config, n, port, job_file, bf16=job.cfg.use_bf16()), work / LOG_FILE, environment(n))
    if rc != 0 or not (work / RESULT_FILE).is_file():
        raise _failure(work, rc)
    data = read_json(work / RESULT_FILE)
    saved.load_final(data.get("state"))
    result = TrainResult(**{f.name: data["result"][f.name] for f in dataclasses.fields(TrainResult)})
    shutil.move(str(work / LOG_FILE), str(job.out_dir / LOG_FILE))
    saved.clear()
    return result


def _gpus() -> int:
    from cotgap.backends import runtime

    if not runtime.has_cuda():
        return 0
    import torch

    return torch.cuda.device_count()


def _run(cmd: list[str], log_path: Path, env: dict) -> int:
    """Run ``cmd`` with its output appended to ``log_path``; its exit status. Interrupted, it stops
    the launch (and so the workers) before passing the interruption on."""
    with open(log_path, "ab") as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            return proc.wait()
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise


#: the first line of a Python exception in a log: ``RuntimeError: ...``
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)(:|$)")


def _failure(work: Path, rc: int) -> Exception:
    """The one-line error of a failed launch: a worker's own UserError/PluginError as it was
    raised, anything else a ServiceError naming the first exception in the log and the log."""
    if (work / ERROR_FILE).is_file():
        data = read_json(work / ERROR_FILE)
        return ERRORS.get(data.get("type"), ServiceError)(data.get("message", "training worker failed"))
    log = work / LOG_FILE
    cause = ""
    try:
        cause = next(
            (line.strip() for line in log.read_text(errors="replace").splitlines() if _EXCEPTION_LINE.match(line.strip())), ""
        )
    except OSError:
        pass
    cause = f": {cause[:200]}" if cause else ""
    return ServiceError(
        f"training failed in the worker processes (accelerate launch exit {rc}{cause}); "
        f"its log: {log} — re-run to resume from the last checkpoint, if one was saved"
    )
