"""Training at scale: ``training.launcher: accelerate`` (worker processes started by the real
``accelerate launch``, here 2 CPU processes, DDP over gloo) and checkpointed training that a
``kill -9`` cannot lose (resumed from the last checkpoint, same updates and weights).

The two trainings that start processes are the costly tests (accelerate's start-up and two
workers importing torch: most of their time); the rest is table-driven and in-process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import runpy
import sys
from pathlib import Path

import pytest

from cotgap import config as config_mod
from cotgap.backends import checkpoints, launch
from cotgap.backends.train_job import Tokenised, TrainJob
from cotgap.backends.training import TrainConfig, train_sft
from cotgap.errors import PluginError, ServiceError, UserError

HERE = Path(__file__).resolve().parent


def _examples(n_questions: int, *, two_lengths: bool = False) -> list[dict]:
    out = []
    for i in range(n_questions):
        prompt = f"Q: what is {i} plus {i}? A:"
        out.append({"prompt": prompt, "completion": f" {i} plus {i} is {2 * i}. So the answer is {2 * i}.", "source": "long"})
        if two_lengths:
            out.append({"prompt": prompt, "completion": f" {2 * i}.", "source": "short"})
    return out


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model" / "model.safetensors")


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


# -- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "training, message",
    [
        ({"launcher": "mpi"}, "training.launcher must be one of inprocess, accelerate"),
        ({"num_processes": 2}, "training.num_processes is for training.launcher: accelerate"),
        ({"config_file": "zero3"}, "training.config_file is for training.launcher: accelerate"),
        ({"launcher": "accelerate", "num_processes": 0}, "training.num_processes must be >= 1"),
        ({"launcher": "accelerate", "main_process_port": 70000}, "training.main_process_port must be <= 65535"),
        ({"launcher": "accelerate", "config_file": "zero4"}, "neither a packaged accelerate config (cpu, ddp, fsdp, zero3)"),
        ({"batch_size": 4}, "training.batch_size is now training.per_device_batch_size"),
        ({"launcher": "accelerate", "config_file": "ddp", "num_processes": 1}, "DDP needs at least 2 processes"),
        ({"save_steps": -2}, "training.save_steps must be >= -1"),
        ({"save_total_limit": 0}, "training.save_total_limit must be >= 1"),
    ],
)
def test_bad_launch_settings_are_refused_in_one_line(training, message):
    with pytest.raises(UserError) as err:
        config_mod.load(None, {"training": training})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_packaged_configs_parse_and_short_names_resolve(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    assert launch.packaged_configs() == ["cpu", "ddp", "fsdp", "zero3"]
    kinds = {
        name: load_config_from_file(str(launch.config_path(name))).distributed_type.value for name in launch.packaged_configs()
    }
    assert kinds == {"cpu": "MULTI_GPU", "ddp": "MULTI_GPU", "fsdp": "FSDP", "zero3": "DEEPSPEED"}
    own = tmp_path / "mine.yaml"
    own.write_text(launch.config_path("cpu").read_text())
    assert launch.config_path(str(own)) == own.resolve()
    assert launch.config_path(None, cuda=True).stem == "ddp" and launch.config_path(None, cuda=False).stem == "cpu"
    cfg = config_mod.load(None, {"training": {"launcher": "accelerate", "config_file": "zero3"}}).training
    assert launch.check(cfg) == 4 and cfg.global_batch(4) == 4  # 4 GPUs, 1 example each


def test_launch_and_checkpoint_settings_are_not_part_of_the_run_identity():
    plain = TrainConfig()
    launched = TrainConfig(
        launcher="accelerate", num_processes=2, config_file="cpu", main_process_port=29999, save_steps=10, save_total_limit=2
    )
    assert plain.stage_inputs() == launched.stage_inputs()
    assert not set(plain.stage_inputs()) & {"launcher", "save_steps", "config_file"}


def test_automatic_checkpoints_only_for_long_trainings():
    assert checkpoints.save_every(TrainConfig(), checkpoints.AUTO_MIN_UPDATES) == 0
    assert checkpoints.save_every(TrainConfig(), checkpoints.AUTO_MIN_UPDATES + 1) == checkpoints.AUTO_EVERY
    assert checkpoints.save_every(TrainConfig(save_steps=-1), 10**6) == 0
    assert checkpoints.save_every(TrainConfig(save_steps=7), 20) == 7


# -- what may travel to the workers -------------------------------------------------------------
def test_trainer_class_or_callback_from_a_local_scope_is_refused(tmp_path):
    from transformers import TrainerCallback

    from cotgap.backends.training import weighted_trainer_class

    class Local(weighted_trainer_class()):
        pass

    class LocalCallback(TrainerCallback):
        pass

    def job(**hooks):
        tokens = Tokenised(rows=[{"input_ids": [1, 2], "labels": [1, 2], "example_index": 0}], truncation={}, cuts=[[0, 0]])
        return TrainJob("x", _examples(1), tmp_path / "student", TrainConfig(), tokens, **hooks)

    local = r"trainer class Local \(tests.test_launcher.test_.*<locals>.Local\) is defined inside a function"
    with pytest.raises(PluginError, match=local):
        launch.write_job(tmp_path, job(trainer_cls=Local), {})
    with pytest.raises(PluginError, match="callback LocalCallback .*define it at module level"):
        launch.write_job(tmp_path, job(callbacks=[LocalCallback()]), {})
    with pytest.raises(PluginError, match="trainer keyword arguments cannot be sent"):
        launch.write_job(tmp_path, job(trainer_cls=weighted_trainer_class(), trainer_kwargs={"score": lambda x: x}), {})
    assert not (tmp_path / launch.JOB_FILE).exists()
    # the built-in weighted trainer and MIND's classes are importable by name
    from cotgap_plugins import mind

    assert launch.importable_name(weighted_trainer_class(), "t") == "cotgap.backends.training:WeightedTrainer"
    assert launch.importable_name(mind.trainer_class(), "t") == "cotgap_plugins.mind:MindTrainer"
    assert (
        launch.importable_name(mind.logger_callback(mind.MindWeights([0]), tmp_path / "w", 1), "c")
        == "cotgap_plugins.mind:MindLog"
    )


def test_a_failed_worker_ends_the_training_with_one_line_naming_its_log(tmp_path, tiny_student, monkeypatch, capfd):
    boom = "import sys; print('worker output'); sys.stderr.write('Traceback ...\\nRuntimeError: boom in rank 1\\n'); sys.exit(1)"
    monkeypatch.setattr(launch, "command", lambda *a, **k: [sys.executable, "-c", boom])
    cfg = TrainConfig(launcher="accelerate", config_file="cpu")
    with pytest.raises(ServiceError) as err:
        train_sft(str(tiny_student), _examples(2), tmp_path / "student", cfg, log=lambda *_: None)
    log = tmp_path / "student.work" / launch.LOG_FILE
    assert str(err.value).count("\n") == 0
    assert "RuntimeError: boom in rank 1" in str(err.value) and str(log) in str(err.value)
    assert "worker output" in log.read_text() and not (tmp_path / "student").exists()
    out, errs = capfd.readouterr()
    assert "Traceback" not in out + errs


def test_a_job_none_of_whose_examples_fits_is_refused_before_any_process_starts(tmp_path, tiny_student, monkeypatch):
    """The job tokenises its examples when it is built, in the parent: nothing is launched."""
    monkeypatch.setattr(launch, "_run", lambda *a, **k: pytest.fail("launched"))
    cfg = TrainConfig(launcher="accelerate", config_file="cpu", max_length=8, overlength="drop")  # none fits
    with pytest.raises(UserError, match="raise training.max_length"):
        train_sft(str(tiny_student), _examples(2), tmp_path / "student", cfg, log=lambda *_: None)
    assert not (tmp_path / "student.work").exists()


def test_a_worker_user_error_comes_back_as_that_error(tmp_path, tiny_student, monkeypatch):
    """The worker writes its one-line UserError for the parent, which raises it as it was (here: a
    job file whose examples were emptied after it was written)."""
    from cotgap.backends import launch_worker, runtime

    monkeypatch.setattr(runtime, "configure", lambda *_: 1)  # run here: leave this process's threads alone

    work = tmp_path / "student.work"
    work.mkdir()
    cfg = TrainConfig(launcher="accelerate", config_file="cpu")
    job = TrainJob.build(str(tiny_student), _examples(2), tmp_path / "student", cfg)
    path = launch.write_job(work, job, {"processes": 1, "checkpoints": {"key": "k", "resume_from": None}})
    data = json.loads(path.read_text())
    data["tokens"]["rows"] = []
    path.write_text(json.dumps(data))
    assert launch_worker.main([str(path)]) == 2
    err = launch._failure(work, 2)
    assert isinstance(err, UserError) and "raise training.max_length" in str(err)


# -- 2 processes on the CPU (DDP over gloo) -----------------------------------------------------
def test_two_processes_train_like_one(tmp_path, tiny_student):
    """MIND (its own Trainer subclass, a callback, a stateful keyword object) trained by 2 worker
    processes makes the updates of the in-process run on the same data and seed, with the same
    losses, EMAs and weights: 4 examples per update, 4 in one process or 2 on each of 2."""
    from cotgap_plugins import mind

    examples = _examples(8, two_lengths=True)  # 16 rationales, 2 per question
    groups = [i // 2 for i in range(len(examples))]

    def train(launcher: str, out: Path):
        per_device = 4 if launcher == "inprocess" else 2
        cfg = TrainConfig(
            learning_rate=3e-3,
            epochs=2,
            per_device_batch_size=per_device,
            bf16=False,
            launcher=launcher,
            config_file="cpu" if launcher == "accelerate" else None,
        )
        weights = mind.MindWeights(groups, inertia=0.5, tau=0.5, min_weight=0.1)
        log = out.parent / f"{out.name}-weights.jsonl"
        result = train_sft(
            str(tiny_student),
            examples,
            out,
            cfg,
            progress=False,
            log=lambda *_: None,
            trainer_cls=mind.trainer_class(),
            callbacks=[mind.logger_callback(weights, log, 1)],
            trainer_kwargs={"mind_weights": weights, "batch_normalise": True},
        )
        return cfg, result, weights, [json.loads(line) for line in log.read_text().splitlines()]

    cfg, one, w_one, snaps_one = train("inprocess", tmp_path / "one")
    _, two, w_two, snaps_two = train("accelerate", tmp_path / "two")

    assert two.extra["run"]["processes"] == 2 and one.extra["run"]["processes"] == 1
    assert two.updates == one.updates == cfg.updates(len(examples)) == 8
    loss_one, loss_two = [h["loss"] for h in one.loss_history], [h["loss"] for h in two.loss_history]
    assert loss_two == pytest.approx(loss_one, rel=1e-4)
    assert loss_two[-1] < loss_two[0]
    # the EMAs of the whole global batch, copied back from the main worker into this process's object
    assert all(n == 2 for n in w_two.observations)
    assert w_two.ema == pytest.approx(w_one.ema, rel=1e-4)
    # MIND's log: written once (main process only), a snapshot per update
    assert [s["step"] for s in snaps_two] == [s["step"] for s in snaps_one] == list(range(9))
    # one merged model, written atomically; the launch log kept beside it, the work folder gone
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("two")) == ["two", "two-weights.jsonl"]
    assert {p.name for p in (tmp_path / "two").iterdir()} == {"model", "adapter", "train.json", launch.LOG_FILE}
    assert _max_diff(_weights(tmp_path / "one"), _weights(tmp_path / "two")) < 1e-5


# -- checkpoints and kill -9 --------------------------------------------------------------------
def _mind_training(base: str, examples: list[dict], out: Path, cfg: TrainConfig, log=lambda *_: None):
    """MIND's trainer, weights and log callback: state that must survive a resume with the weights."""
    from cotgap_plugins import mind

    weights = mind.MindWeights([i // 2 for i in range(len(examples))], inertia=0.5, tau=0.5, min_weight=0.1)
    snaps = out.parent / f"{out.name}-weights.jsonl"
    result = train_sft(
        base,
        examples,
        out,
        cfg,
        progress=False,
        log=log,
        trainer_cls=mind.trainer_class(),
        trainer_kwargs={"mind_weights": weights},
        callbacks=[mind.logger_callback(weights, snaps, 1)],
    )
    return result, weights, [json.loads(line)["step"] for line in snaps.read_text().splitlines()]


def _killed_training(base: str, examples: list[dict], out: str, cfg: TrainConfig) -> None:
    """In a forked child: SIGKILL itself right after the first checkpoint is recorded."""
    os.environ["COTGAP_KILL"] = "student.work/checkpoint.json:after"
    runpy.run_path(str(HERE / "killswitch.py"))  # patches cotgap.jsonio's atomic writes
    _mind_training(base, examples, Path(out), cfg)
    os._exit(0)  # not reached: the kill comes first


def test_a_training_killed_after_a_checkpoint_resumes_from_it(tmp_path, tiny_student):
    examples = _examples(6, two_lengths=True)  # 12 rationales
    cfg = TrainConfig(learning_rate=3e-3, epochs=3, per_device_batch_size=4, bf16=False, save_steps=3)  # 9 updates
    # fork: the child shares this process's imports (a fresh interpreter would spend seconds on torch)
    child = multiprocessing.get_context("fork").Process(
        target=_killed_training, args=(str(tiny_student), examples, str(tmp_path / "student"), cfg)
    )
    child.start()
    child.join(300)
    assert child.exitcode == -9
    work = tmp_path / "student.work"
    assert json.loads((work / checkpoints.RECORD).read_text())["update"] == 3
    assert checkpoints.complete(work / "checkpoint-3") and (work / "checkpoint-3" / checkpoints.STATE).is_file()
    assert not (tmp_path / "student").exists()

    logs: list[str] = []
    resumed, w_resumed, steps_resumed = _mind_training(str(tiny_student), examples, tmp_path / "student", cfg, log=logs.append)
    straight, w_straight, steps_straight = _mind_training(str(tiny_student), examples, tmp_path / "straight", cfg)
    assert any("resuming the training from checkpoint-3" in m for m in logs)
    assert resumed.extra["run"]["resumed_from_update"] == 3 and straight.extra["run"]["resumed_from_update"] is None
    assert resumed.updates == straight.updates == 9
    assert [h["step"] for h in resumed.loss_history] == list(range(1, 10))
    # MIND's EMAs came back with the checkpoint; its log holds every update once
    assert w_resumed.ema == pytest.approx(w_straight.ema, rel=1e-6) and w_resumed.observations == w_straight.observations
    assert steps_resumed == steps_straight == list(range(10))
    assert _max_diff(_weights(tmp_path / "student"), _weights(tmp_path / "straight")) < 1e-6
    assert not work.exists()


def test_checkpoints_of_other_inputs_or_half_saved_are_never_resumed(tmp_path):
    work = tmp_path / "student.work"
    for update in (2, 4):
        (work / f"checkpoint-{update}").mkdir(parents=True)
        (work / f"checkpoint-{update}" / checkpoints.TRAINER_STATE).write_text(json.dumps({"global_step": update}))
    (work / "checkpoint-6").mkdir()
    (work / "checkpoint-6" / checkpoints.TRAINER_STATE).write_text('{"global_st')  # killed while saving
    (work / checkpoints.RECORD).write_text(json.dumps({"key": "mine", "update": 4}))
    logs: list[str] = []
    assert checkpoints.resume_point(work, "mine", logs.append) == work / "checkpoint-4"
    assert not (work / "checkpoint-6").exists()
    assert checkpoints.resume_point(work, "another job", logs.append) is None
    assert not list(work.glob("checkpoint-*")) and "made from other inputs" in logs[-1]
