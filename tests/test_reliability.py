"""The reliability battery: bad input, kills, concurrent and changed-config runs, copies, corrupt
files, a full disk. Every case asserts the exit code, the message and what is left on disk.

Bad input is table-driven and in-process (click's runner: the same command object the console
script runs); kills and concurrency use real subprocesses (``tests/killswitch.py`` SIGKILLs the
process at a chosen write)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.jsonio import key_of, read_json, write_json
from cotgap.rundir import RunDir

HERE = Path(__file__).resolve().parent
LIMIT = "6"
ROOT = os.geteuid() == 0


# --------------------------------------------------------------------------------- bad input
# (config YAML or None, extra flags, exit code, message fragment). {student}/{tmp}/{teacher} are
# filled in; every case must fail before any model is loaded, with one line and no traceback.
CONFIG_CASES = [
    ("training: {learning_rate: x}", "training.learning_rate must be a number or null"),
    ("training: {per_device_batch_size: 0}", "training.per_device_batch_size must be >= 1"),
    ("training: {batch_size: 4}", "training.batch_size is now training.per_device_batch_size"),
    ("training: {preset: paper}", "training.preset must be one of paper-full, paper-lora"),
    ("training: {loss_average: mean}", "training.loss_average must be one of token, example"),
    ("generation: {budgets: {qwq: 0}}", "generation.budgets.qwq must be a positive number of tokens"),
    ("training: {grad_accum: 0}", "training.grad_accum must be >= 1"),
    ("training: {lora_r: 0}", "training.lora_r must be >= 1"),
    ("training: {lora_alpha: 0}", "training.lora_alpha must be >= 1"),
    ("training: {lora_dropout: 1.5}", "training.lora_dropout must be <= 0.99"),
    ("training: {scheduler: bogus}", "training.scheduler must be one of"),
    ("training: {epochs: -1}", "training.epochs must be > 0"),
    ("training: {epochs: 0}", "training.epochs must be > 0"),
    ("training: {epochs: two}", "training.epochs must be a number"),
    ("training: {max_steps: 0}", "training.max_steps must not be 0"),
    ("training: {max_steps: -2}", "training.max_steps must be >= -1"),
    ("training: {warmup_ratio: 2}", "training.warmup_ratio must be <= 1.0"),
    ("training: {max_length: 0}", "training.max_length must be >= 8"),
    ("training: {method: qlora}", "training.method must be one of lora, full"),
    ("training: {bf16: 'yes'}", "training.bf16 must be one of auto, True, False"),
    ("training: {seed: -1}", "training.seed must be >= 0"),
    ("training: {nope: 1}", "training: unknown key(s) nope"),
    ("training: 5", "training must be a mapping"),
    ("generation: []", "generation must be a mapping"),
    ("generation: {max_new_tokens: -5}", "generation.max_new_tokens must be >= 1"),
    ("generation: {backend: tpu}", "generation.backend must be one of auto, vllm, hf"),
    ("generation: {ledger_chunk: 0}", "generation.ledger_chunk must be >= 1"),
    ("generation: {hf_batch_size: 0}", "generation.hf_batch_size must be >= 1"),
    ("generation: {engines: 5}", "generation.engines must be a mapping"),
    ("generation: {engines: {default: {tensor_parallel_size: 0}}}", "tensor_parallel_size"),
    ("generation: {engines: {default: {no_such_setting: 1}}}", "no_such_setting"),
    ("bootstrap_iters: 0", "bootstrap_iters must be >= 100"),
    ("alpha: 0", "alpha must be > 0"),
    ("alpha: 1", "alpha must be < 1"),
    ("teachers: 5", "teachers must be a list"),
    ("teachers: [1]", "teachers must be model names or API teacher mappings"),
    ("teachers: ['']", "teachers must be model names or API teacher mappings"),
    ("task: 5", "task must be a string"),
    ("task: ''", "task must not be ''"),
    ("seed: abc", "seed must be an integer"),
    ("seed: 1.5", "seed must be an integer"),
    ("synthetic_n: 1", "synthetic_n must be >= 5"),
    ("limit: true", "limit must be an integer or null"),
    ("limit: 0", "limit must be >= 1"),
    ("train_shots: -1", "train_shots must be >= 0"),
    ("train_shots: 9", "train_shots must be <= 3"),
    ("threads: 0", "threads must be >= 1"),
    ("scoring: fuzzy", "scoring must be one of robust, strict"),
    ("ablation: bogus", "ablation must be one of cross-teacher-filter"),
    ("strategy_params: [1]", "strategy_params must be a mapping"),
    ("strategy_params: {bogus: 1}", "unknown parameter(s) for strategy plain: bogus"),
    ("strategy_params: {samples: 0}", "strategy_params.samples of strategy plain must be >= 1"),
    ("strategy_params: {samples: '2'}", "strategy_params.samples of strategy plain must be an integer"),
    ("strategy_params: {temperature: -1}", "strategy_params.temperature of strategy plain must be >= 0.0"),
    ("strategy: nosuch", "unknown strategy 'nosuch'"),
    ("foo: 1", "config: unknown key(s) foo"),
    ("- a\n- b", "top level must be a mapping"),
    ("a: [", "is not valid YAML"),
    ("include_path: /nonexistent/tasks", "include_path /nonexistent/tasks does not exist"),
    ("data_dir: /nonexistent/data", "data_dir /nonexistent/data does not exist"),
    ("strategy: mix\nteachers: [scripted]", "mix needs exactly 2 teachers"),
    ("strategy_params: {samples: 2}", "samples > 1 needs temperature > 0"),
]

FLAG_CASES = [
    (["--limit", "abc"], "Invalid value for '--limit'"),
    (["--limit", "0"], "limit must be >= 1"),
    (["--threads", "0"], "threads must be >= 1"),
    (["--backend", "tpu"], "Invalid value for '--backend'"),
    (["--ablation", "bogus"], "Invalid value for '--ablation'"),
    (["--scoring", "fuzzy"], "Invalid value for '--scoring'"),
    (["--no-such-flag"], "No such option '--no-such-flag'"),
    (["--strategy", "nosuch"], "unknown strategy 'nosuch'"),
    (["--task", "no_such_task"], "unknown task 'no_such_task'"),
    (["--student", "no-such-model-xyz"], "no-such-model-xyz"),
    (["--teacher", "no-such-teacher-xyz"], "no-such-teacher-xyz"),
    (["--teacher", "scripted:medium"], "bad scripted teacher"),
    (["--student", "scripted"], "the scripted teacher is not a model"),
    (["--student", "openai:m@http://127.0.0.1:9/v1;parameters_b=1"], "can be a teacher, not the student"),
    (["--teacher", "openai:m@http://127.0.0.1:9/v1"], "size"),
    (["--teacher", "openai:m@http://127.0.0.1:9/v1;parameters_b=70"], "127.0.0.1:9"),
    (["--teacher", "{student}"], "is not smaller than teacher"),
    (["--teacher", "{small}"], "is not smaller than teacher"),
    (["--config", "{tmp}/missing.yaml"], "config file {tmp}/missing.yaml does not exist"),
    (["--config", "{tmp}"], "is not a file"),
    (["--config", "{tmp}/latin1.yaml"], "is not UTF-8 text"),
    (["--include-path", "{tmp}/missing"], "include_path {tmp}/missing does not exist"),
    (["--include-path", "{tmp}/afile"], "is a file; a folder is needed"),
    (["--data-dir", "{tmp}/missing"], "data_dir {tmp}/missing does not exist"),
    (["--data-dir", "{tmp}/afile"], "is a file; a folder is needed"),
    (["--out", "{tmp}/afile"], "a file is in the way"),
    (["--out", "{tmp}/afile/below"], "a parent of it is a file"),
    (["--out", "{tmp}/" + "x" * 300], "File name too long"),
    (["--out", "{tmp}/foreign"], "is not empty and is not a cotgap run directory"),
    (["--out", "{tmp}/foreign", "--force"], "--force refused"),
    (["--task", "mybroken", "--include-path", "{tmp}/broken-tasks"], "broken.yaml is not valid YAML"),
]

OTHER_COMMANDS = [
    (["nosuch"], "No such command 'nosuch'"),
    (["report"], "give run or sweep directories"),
    (["report", "{tmp}/missing"], "missing"),
    (["report", "--csv", "{tmp}/afile"], "--csv needs --baseline-csv"),
    (["sweep", "--config", "{tmp}/missing.yaml"], "missing.yaml"),
    (["sweep", "--config", "{tmp}/bad-grid.yaml"], "unknown key(s) foo"),
    (["sweep", "--config", "{tmp}/grid.yaml", "--limit", "0"], "--limit must be a positive integer"),
    (["select", "--threshold", "x"], "Invalid value for '--threshold'"),
    (["tasks", "--include-path", "{tmp}/missing"], "does not exist"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_student):
    """Files the bad-input cases point at."""
    from cotgap.testing import build_model

    tmp = tmp_path_factory.mktemp("bad-input")
    (tmp / "afile").write_text("x")
    (tmp / "latin1.yaml").write_bytes("task: caf\xe9\n".encode("latin-1"))
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "notes.txt").write_text("someone's files")
    (tmp / "broken-tasks").mkdir()
    (tmp / "broken-tasks" / "broken.yaml").write_text("task: mybroken\ndataset_path: json\n  bad: [\n")
    (tmp / "bad-grid.yaml").write_text("tasks: [synthetic_navigate]\nstudents: [x]\nfoo: 1\n")
    (tmp / "grid.yaml").write_text("tasks: [synthetic_navigate]\nstudents: [x]\n")
    small = build_model(tmp / "smaller", hidden=32, layers=1, seed=3)
    return {"tmp": str(tmp), "student": str(tiny_student), "small": str(small)}


def _fill(args, inputs):
    return [a.format(**inputs) for a in args]


def _invoke(args, tmp: Path):
    env = {"COTGAP_GENERATION_CACHE": str(tmp / "gencache")}
    return CliRunner(env=env).invoke(cli, args)


def _one_line_refusal(res, code: int, fragment: str):
    text = res.stderr.strip()
    assert res.exit_code == code, (res.exit_code, res.output[-2000:])
    assert fragment in text, text
    assert len(text.splitlines()) == 1 and "Traceback" not in res.output, text


def _base(inputs, tmp_out):
    return [
        "run",
        "--student",
        inputs["student"],
        "--teacher",
        "scripted",
        "--task",
        "synthetic_navigate",
        "--limit",
        LIMIT,
        "--backend",
        "hf",
        "--out",
        str(tmp_out),
    ]


@pytest.mark.parametrize("yaml_text,fragment", CONFIG_CASES, ids=[c[0][:40] for c in CONFIG_CASES])
def test_bad_config_value_is_one_line_exit_2(yaml_text, fragment, inputs, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text + "\n")
    args = _base(inputs, tmp_path / "run")
    try:
        keys = set(yaml.safe_load(yaml_text) or {})
    except (yaml.YAMLError, TypeError, ValueError):
        keys = set()
    flags = {"teachers": "--teacher", "task": "--task", "limit": "--limit", "strategy": "--teacher"}
    for flag in {flags[k] for k in keys & set(flags)}:  # a flag would override the file's value
        i = args.index(flag)
        del args[i : i + 2]
    res = _invoke([*args, "--config", str(cfg)], tmp_path)
    _one_line_refusal(res, 2, fragment)
    assert not (tmp_path / "run" / "stages").exists()  # refused before any work


@pytest.mark.parametrize("args,fragment", FLAG_CASES, ids=[" ".join(c[0])[:40] for c in FLAG_CASES])
def test_bad_flag_or_path_is_one_line_exit_2(args, fragment, inputs, tmp_path):
    args = _fill(args, inputs)
    base = _base(inputs, tmp_path / "run")
    for flag in ("--teacher", "--student", "--task", "--out"):  # the case's own value replaces the default
        if flag in args and flag in base:
            i = base.index(flag)
            del base[i : i + 2]
    res = _invoke([*base, *args], tmp_path)
    _one_line_refusal(res, 2, fragment.format(**inputs))
    assert not (tmp_path / "run" / "stages").exists()


@pytest.mark.parametrize("args,fragment", OTHER_COMMANDS, ids=[" ".join(c[0])[:40] for c in OTHER_COMMANDS])
def test_other_commands_refuse_bad_input_in_one_line(args, fragment, inputs, tmp_path):
    _one_line_refusal(_invoke(_fill(args, inputs), tmp_path), 2, fragment)


def test_bad_input_battery_is_large_enough():
    assert len(CONFIG_CASES) + len(FLAG_CASES) + len(OTHER_COMMANDS) >= 60


def test_read_only_out_is_bad_input(inputs, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if ROOT:  # root writes through permission bits: a read-only file system instead
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"running as root without mount permission: {mounted.stderr.decode().strip()}")
    else:
        ro.chmod(0o555)
    try:
        res = _invoke([*_base(inputs, ro / "run")], tmp_path)
        _one_line_refusal(res, 2, "permission denied" if not ROOT else "Read-only file system")
    finally:
        if ROOT:
            subprocess.run(["umount", str(ro)], check=False)
        else:
            ro.chmod(0o755)


def test_internal_error_with_unwritable_cwd_prints_no_traceback(tmp_path):
    """The error handler itself must not crash when ./cotgap-error.log cannot be written."""
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        "import os, sys; from cotgap import cli; import cotgap.config as c;"
        "c.load = lambda *a, **k: 1/0;"
        "os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]);"
        "sys.argv = ['cotgap', 'run']; cli.main()"
    )
    res = subprocess.run([sys.executable, "-c", script, str(gone)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "internal error: ZeroDivisionError" in res.stderr and "traceback in /" in res.stderr
    log = res.stderr.split("traceback in ")[1].rstrip(")\n ")
    assert "ZeroDivisionError" in Path(log).read_text()


# --------------------------------------------------------------------------------- runs on disk
def _cli(
    tmp: Path,
    student,
    out: Path,
    *extra,
    kill: str | None = None,
    teacher: str = "scripted",
    wait: bool = True,
    cache: str = "gencache",
):
    env = {**os.environ, "COTGAP_GENERATION_CACHE": str(tmp / cache)}
    env.pop("COTGAP_KILL", None)
    if kill:
        env["COTGAP_KILL"] = kill
    cmd = [
        sys.executable,
        str(HERE / "killswitch.py"),
        "run",
        "--student",
        str(student),
        "--teacher",
        teacher,
        "--task",
        "synthetic_navigate",
        "--limit",
        LIMIT,
        "--backend",
        "hf",
        "--out",
        str(out),
        *extra,
    ]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def _results(run: Path) -> dict:
    """report.json without what legitimately differs between runs (timings, what was cached)."""
    rep = read_json(run / "report.json")
    for key in ("run", "stage_seconds"):
        rep.pop(key, None)
    return _without_seconds(rep)


def _without_seconds(obj):
    """``obj`` without its ``*_seconds`` entries (the compute ledger's wall / device / CPU times);
    its token counts stay and must be equal."""
    if isinstance(obj, dict):
        return {k: _without_seconds(v) for k, v in obj.items() if not str(k).endswith("_seconds")}
    return [_without_seconds(v) for v in obj] if isinstance(obj, list) else obj


def _tree_digest(d: Path) -> dict:
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory, tiny_student):
    """An uninterrupted run: the reference every other scenario is compared with."""
    tmp = tmp_path_factory.mktemp("reliability")
    res = _cli(tmp, tiny_student, tmp / "clean")
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp, tmp / "clean"


# kill points, in run order: inside a stage (files written, record not) and just after it
KILLS = [
    "baseline/samples.jsonl:after",
    "stages/baseline.json:before",
    "generations/index.json:before",
    "stages/generate.json:after",
    "stages/filter.json:before",
    "stages/train.json:before",
    "stages/train.json:after",
    "distilled/samples.jsonl:after",
    "stages/distilled.json:before",
    "report.json:before",
]


def test_kill_at_and_inside_every_stage_then_resume_equals_uninterrupted(clean, tiny_student):
    tmp, ref = clean
    out = tmp / "killed"
    for point in KILLS:  # each re-run resumes the last one's work and is killed at the next point
        # its own generation cache: nothing (the baseline included) is shared with the clean run
        res = _cli(tmp, tiny_student, out, kill=point, cache="gencache-killed")
        assert res.returncode == -9, (point, res.returncode, res.stderr[-2000:])
        assert not (out / ".lock").exists() or RunDir(out).lock() is None  # the dead run's lock is free
    done = _cli(tmp, tiny_student, out, cache="gencache-killed")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _results(out) == _results(ref)
    assert read_json(out / "report.json")["run"]["computed"] == []  # everything was kept across the kills


def test_changed_config_is_refused_and_leaves_the_run_intact(clean, tiny_student):
    tmp, ref = clean
    d = tmp / "changed"
    shutil.copytree(ref, d)
    before = _tree_digest(d)
    res = _cli(tmp, tiny_student, d, teacher="scripted:long")
    assert res.returncode == 2 and "holds another config (teachers[0]: 'scripted' → 'scripted:long')" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert _tree_digest(d) == before  # nothing rewritten: config, manifest, records all the old run's
    rep = CliRunner().invoke(cli, ["report", str(d), "--out", str(tmp / "changed-report"), "--json"])
    assert rep.exit_code == 0, rep.output
    assert read_json(tmp / "changed-report" / "runs" / "changed" / "report.json")["teachers"] == ["scripted"]


def test_forced_rerun_killed_midway_is_never_reported_mixed(clean, tiny_student):
    tmp, ref = clean
    d = tmp / "forced"
    shutil.copytree(ref, d)
    killed = _cli(tmp, tiny_student, d, "--force", teacher="scripted:long", kill="stages/generate.json:after")
    assert killed.returncode == -9
    assert read_json(d / "run.json")["config"]["teachers"] == ["scripted:long"]
    assert not (d / "stages" / "train.json").exists() and not (d / "student").exists()
    rep = CliRunner().invoke(cli, ["report", str(d), "--out", str(tmp / "forced-report")])
    assert rep.exit_code == 2 and "incomplete" in rep.stderr  # the old run's results are gone, not mixed in
    done = _cli(tmp, tiny_student, d, teacher="scripted:long")
    assert done.returncode == 0, done.stderr[-3000:]
    report = read_json(d / "report.json")
    assert report["teachers"] == ["scripted:long"] and {s["source"] for s in report["sources"]} == {"scripted:long"}
    assert report["run"]["cached"] == ["baseline", "generate"]


def test_two_runs_on_one_directory(clean, tiny_student):
    tmp, _ = clean
    d = tmp / "busy"
    holder = RunDir(d)
    holder.lock()  # another cotgap process holds the directory (a real flock from this process)
    try:
        res = _cli(tmp, tiny_student, d)
        assert res.returncode == 2 and f"is in use by PID {os.getpid()}" in res.stderr, res.stderr
    finally:
        holder.unlock()
    # two real processes at once, with different configs: one runs, the other is refused
    a = _cli(tmp, tiny_student, d, wait=False)
    time.sleep(0.5)
    b = _cli(tmp, tiny_student, d, teacher="scripted:long", wait=False)
    (ra, ea), (rb, eb) = (p.communicate(timeout=900) for p in (a, b))
    codes = sorted([a.returncode, b.returncode])
    assert codes == [0, 2], (a.returncode, ea[-1500:], b.returncode, eb[-1500:])
    refused = ea if a.returncode == 2 else eb
    assert "is in use by PID" in refused or "holds another config" in refused
    winner = ["scripted"] if a.returncode == 0 else ["scripted:long"]
    RunDir(d, create=False).verify()
    assert read_json(d / "report.json")["teachers"] == winner == read_json(d / "config.json")["teachers"]


def test_copied_and_moved_run_directories_resume_and_report(clean, tiny_student):
    tmp, ref = clean
    assert not Path(read_json(ref / "stages" / "train.json")["result"]["path"]).is_absolute()
    copy = tmp / "copy"
    shutil.copytree(ref, copy)
    moved = tmp / "moved"
    copy.rename(moved)
    res = _cli(tmp, tiny_student, moved)
    assert res.returncode == 0, res.stderr[-3000:]
    assert read_json(moved / "report.json")["run"]["computed"] == []
    assert _results(moved) == _results(ref)
    shutil.rmtree(ref / "student")  # the original's model is gone: the moved run must not need it
    try:
        rep = CliRunner().invoke(cli, ["report", str(moved), "--out", str(tmp / "moved-report")])
        assert rep.exit_code == 0, rep.output
    finally:
        shutil.copytree(moved / "student", ref / "student")


@pytest.mark.parametrize("damage", ["stage-record", "samples", "generation-cache"])
def test_corrupt_files_are_named_and_recomputed(clean, tiny_student, damage):
    tmp, ref = clean
    d = tmp / f"corrupt-{damage}"
    shutil.copytree(ref, d)
    if damage == "stage-record":
        target, stage = d / "stages" / "filter.json", "filter"
        target.write_text('{"key": "trunc')
    elif damage == "samples":
        target, stage = d / "distilled" / "samples.jsonl", "distilled"
        target.write_text(target.read_text()[:50])
    else:
        target = next(p for p in sorted((tmp / "gencache" / "generations").glob("*.jsonl")) if _model_of(p) == "scripted")
        target.write_text(target.read_text()[:80])
        shutil.rmtree(d)
        stage = None
    if stage:
        rep = CliRunner().invoke(cli, ["report", str(d), "--out", str(tmp / f"{damage}-report")])
        assert rep.exit_code == 2 and f"stage {stage} cannot be trusted" in rep.stderr, rep.output
    res = _cli(tmp, tiny_student, d)
    assert res.returncode == 0, res.stderr[-3000:]
    name = target.name if damage == "generation-cache" else str(target.relative_to(d))
    assert name in res.stdout + res.stderr  # the damaged file is named
    assert _results(d) == _results(ref)
    if stage:
        assert read_json(d / "report.json")["run"]["computed"] == [stage]


def _model_of(p: Path) -> str | None:
    try:
        return json.loads(p.read_text().splitlines()[0]).get("model")
    except (ValueError, IndexError):
        return None


def test_disk_full_fails_in_one_line_and_resumes(clean, tiny_student):
    if not ROOT:
        pytest.skip("needs root to mount a small tmpfs (a full disk cannot be simulated otherwise)")
    tmp, ref = clean
    mnt = tmp / "small-disk"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        full = _cli(tmp, tiny_student, mnt / "run")
        assert full.returncode == 3, full.stderr[-2000:]
        last = full.stderr.strip().splitlines()[-1]
        assert last.startswith("error: no space left on device") and "Traceback" not in full.stderr
        kept = (
            read_json(mnt / "run" / "stages" / "baseline.json") if (mnt / "run" / "stages" / "baseline.json").exists() else None
        )
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        done = _cli(tmp, tiny_student, mnt / "run")
        assert done.returncode == 0, done.stderr[-3000:]
        assert _results(mnt / "run") == _results(ref)
        if kept is not None:
            assert "baseline" in read_json(mnt / "run" / "report.json")["run"]["cached"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_filter_check_refuses_duplicates_and_edits():
    from cotgap.errors import ProtocolError
    from cotgap.protocol.rules import check_filter_subset

    given = [{"doc_id": i, "response": f"r{i}", "correct": True} for i in range(4)]
    check_filter_subset("t", given, given[:2])
    with pytest.raises(ProtocolError, match="more times than it was given"):
        check_filter_subset("t", given, [given[0], dict(given[0])])
    with pytest.raises(ProtocolError, match="not given, or altered"):
        check_filter_subset("t", given, [{**given[1], "correct": False}])


def test_malformed_generate_return_is_refused_before_anything_is_saved(tmp_path, tiny_student):
    from cotgap import Strategy
    from cotgap.errors import PluginError
    from cotgap.testing import run_strategy

    class Bad(Strategy):
        name = "bad-generate"

        def generate(self, ctx):
            return {"t": [{"doc_id": 0}]}

    with pytest.raises(
        PluginError, match="generate.. of strategy bad-generate returned record 0 of source 't' without response, correct"
    ):
        run_strategy(Bad(), tmp_path, student=tiny_student)
    assert not (tmp_path / "run" / "generations").exists()


def test_zero_update_training_is_never_reported_as_distilled(tmp_path, tiny_student):
    from cotgap import Strategy
    from cotgap.errors import ProtocolError
    from cotgap.testing import run_strategy

    class NoSteps(Strategy):
        name = "no-steps"

        def train(self, ctx, data):
            result = ctx.train_student([r for recs in data.values() for r in recs])
            result.updates = 0  # as a training that stepped nothing would report
            return result

    with pytest.raises(ProtocolError, match="0 optimizer updates"):
        run_strategy(NoSteps(), tmp_path, student=tiny_student)
    assert not (tmp_path / "run" / "stages" / "distilled.json").exists()


def test_stage_record_is_invalidated_before_its_files_change(tmp_path):
    """The window the old design left open: new files beside the old record."""
    d = RunDir(tmp_path / "r")
    d.claim({"a": 1})
    d.stage("s", 1, lambda: write_json(d / "s" / "f.json", {"v": 1}), outputs=("s",))
    seen = []

    def compute():
        seen.append((d / "stages" / "s.json").exists())
        write_json(d / "s" / "f.json", {"v": 2})

    d.stage("s", 2, compute, outputs=("s",))
    assert seen == [False] and d.is_done("s", key_of(2))
    d.unlock()


def test_default_run_directory_name_always_fits():
    from cotgap import config
    from cotgap.pipeline.runner import default_run_dir

    cfg = config.load(None, {"student": "/models/" + "s" * 250, "teachers": ["scripted"]})
    name = default_run_dir(cfg).name
    assert len(name.encode()) <= 255 and name.startswith("plain-synthetic_object_counting-sss")
