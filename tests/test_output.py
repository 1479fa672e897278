"""The output policy (issue #15, item 1): engine and library chatter in the run's logs/, cotgap's
own lines and bars on the terminal, whole unwrapped lines in a pipe, everything with -v."""

import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: What the libraries print in a tiny transformers-backend run: lm-eval's tqdm bars ("it/s]") and
#: the Trainer's logged losses ("'train_runtime'", printed when its own tqdm bar is off).
LIBRARY_MARKERS = ("it/s]", "'train_runtime'")


def _env(tmp_path) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COTGAP_GENERATION_CACHE": str(tmp_path / "gc"),
        "COLUMNS": "100",
        "LINES": "40",
    }


def _run_args(student, out) -> list[str]:
    return [
        "run",
        "--teacher",
        "scripted",
        "--student",
        str(student),
        "--task",
        "synthetic_navigate",
        "--limit",
        "3",
        "--backend",
        "hf",
        "--out",
        str(out),
    ]


def _on_pty(cmd, cwd, env, timeout=300) -> tuple[int, str]:
    """Run ``cmd`` with stdout and stderr on a pseudo-terminal: (exit code, what it showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


CAPTURE_SCRIPT = textwrap.dedent("""
    import logging, os, subprocess, sys, warnings
    from cotgap.capture import Capture
    from cotgap.output import make_console

    logging.basicConfig()  # a handler bound to sys.stderr before the capture, as libraries do at import
    console = make_console(sys.stdout)
    with Capture(sys.argv[1], [console]):
        console.print("cotgap stage line")
        warnings.warn("known library warning")
        logging.getLogger("transformers").warning("transformers warns")
        print("library print")
        os.write(2, b"C-level write to fd 2\\n")
        subprocess.run([sys.executable, "-c", "import sys; print('child process says'); sys.stderr.write('child err')"])
    print("after the capture")
""")


def test_capture_moves_library_output_into_the_log_and_keeps_cotgap_lines(tmp_path):
    log = tmp_path / "logs" / "engines.log"
    res = subprocess.run(
        [sys.executable, "-c", CAPTURE_SCRIPT, str(log)], capture_output=True, text=True, env=_env(tmp_path), timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["cotgap stage line", "after the capture"] and res.stderr == ""
    text = log.read_text()
    for said in (
        "known library warning",
        "transformers warns",
        "library print",
        "C-level write to fd 2",
        "child process says",
        "child err",
    ):
        assert said in text, said
    assert "cotgap stage line" not in text


def test_capture_moves_a_temporary_log_and_restores_the_streams(tmp_path):
    from cotgap.capture import Capture

    before = (sys.stdout, sys.stderr)
    first, final = tmp_path / "tmp.log", tmp_path / "run" / "logs" / "engines.log"
    with Capture(first, temporary=True, header="header\n") as cap:
        os.write(2, b"early\n")
        cap.move(final)
        os.write(1, b"late\n")
    assert (sys.stdout, sys.stderr) == before and not first.exists()
    assert final.read_text() == "header\nearly\nlate\n"
    empty = tmp_path / "empty.log"
    with Capture(empty, temporary=True, header="header\n"):
        pass
    assert not empty.exists()  # a placeholder that caught nothing is not left behind


def test_pipe_output_is_whole_plain_lines(monkeypatch):
    """Not a terminal (CliRunner's streams, like a pipe): no escapes, no wrapping, whatever COLUMNS says."""
    from cotgap.cli import cli

    monkeypatch.setenv("COLUMNS", "60")
    res = CliRunner().invoke(cli, ["tasks"])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.stdout
    rows = [line for line in res.stdout.splitlines() if "synthetic_word_sorting" in line]
    assert len(rows) == 1 and re.search(
        r"│ synthetic_word_sorting +│ synthetic +│ built-in +│ generated +│ +\d+ │ +\d+ │", rows[0]
    ), rows
    table = [line for line in res.stdout.splitlines()[1:] if line]
    assert len({len(line) for line in table}) == 1  # every row one line, none wrapped at 60 (or 80) columns


def test_consoles_follow_the_stream():
    from cotgap import output

    master, slave = pty.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            assert not isinstance(output.make_console(tty), output.PipeConsole)
    finally:
        os.close(master)
        os.close(slave)
    import io

    buf = io.StringIO()
    pipe = output.make_console(buf)
    pipe.rule("[bold]sweep x[/] · cell 1/2")
    pipe.print("[bold]cotgap run[/] → /a/" + "very-long-folder/" * 20 + "run")
    lines = buf.getvalue().splitlines()
    assert lines == ["── sweep x · cell 1/2 ──", "cotgap run → /a/" + "very-long-folder/" * 20 + "run"]


def test_vllm_tqdm_hook_counts_finished_requests():
    """The callable vllm.LLM.generate gets as use_tqdm: called with an iterable ("Rendering
    prompts", passed through) and with total= ("Processed prompts", counted on cotgap's bar)."""
    from cotgap import progress

    class FakeBar:
        done = 0

        def advance(self, n=1):
            self.done += n

    bar = FakeBar()
    make = progress.vllm_tqdm(bar)
    assert list(make(["p1", "p2"], desc="Rendering prompts")) == ["p1", "p2"] and bar.done == 0
    pbar = make(total=2, desc="Processed prompts", dynamic_ncols=True, postfix="speed")
    for _ in range(2):
        assert pbar.format_dict["elapsed"] > 0  # vLLM divides by it
        pbar.postfix = "est. speed"
        pbar.update(1)
    pbar.refresh()
    pbar.close()
    assert bar.done == 2 and pbar.n == 2
    seen = []
    hook = progress.CountingHook(type("Ledger", (), {"add_partial": lambda self, *a: seen.append(a)})(), bar)
    hook.add_partial("generate_until", ("ctx", {}), "answer")
    assert bar.done == 3 and seen == [("generate_until", ("ctx", {}), "answer")]
    assert progress.model_label("/runs/x/student/model") == "student/model"
    assert progress.model_label("/zoo/smollm2-135m-instruct") == "smollm2-135m-instruct"


def test_sweep_json_is_its_summary(tmp_path, monkeypatch):
    """A real sweep with --json: the summary alone on stdout (here: one cell failed, exit 1),
    stage lines on stderr, the sweep's chatter in <out>/logs/. (An unknown task is refused before
    the sweep starts, so the cell fails at run time: its run cannot be prepared.)"""
    from cotgap.cli import cli
    from cotgap.errors import UserError
    from cotgap.pipeline.runner import Runner

    def unpreparable(self):
        raise UserError("model folder vanished")

    monkeypatch.setattr(Runner, "prepare", unpreparable)
    grid = tmp_path / "grid.yaml"
    grid.write_text("tasks: [synthetic_navigate]\nstudents: [smollm2-135m-instruct]\nteachers: [qwen2.5-coder-0.5b-instruct]\n")
    res = CliRunner().invoke(cli, ["sweep", "--config", str(grid), "--out", str(tmp_path / "sw"), "--json"])
    summary = json.loads(res.stdout)
    assert res.exit_code == 1 and summary["counts"]["failed"] == 1 and "model folder vanished" in summary["cells"][0]["reason"]
    assert "cell failed" in res.stderr and "1 cell(s) failed" in res.stderr
    assert (tmp_path / "sw" / "logs" / "engines.log").is_file()


def test_sweep_refuses_an_unknown_task_before_it_starts(tmp_path):
    from cotgap.cli import cli

    grid = tmp_path / "grid.yaml"
    grid.write_text("tasks: [no_such_task]\nstudents: [smollm2-135m-instruct]\nteachers: [qwen2.5-coder-0.5b-instruct]\n")
    res = CliRunner().invoke(cli, ["sweep", "--config", str(grid), "--out", str(tmp_path / "sw"), "--json"])
    assert res.exit_code == 2 and res.stdout == ""
    assert "unknown task(s) no_such_task" in res.stderr and "Traceback" not in res.stderr


def test_internal_error_names_the_log(tmp_path, tiny_student, monkeypatch):
    """An engine crash: its own output is in <run>/logs/engines.log, the terminal gets one line naming it."""
    from cotgap.cli import cli
    from cotgap.pipeline.runner import Runner

    def crash(self):
        os.write(2, b"engine core: fatal error in the kernel\n")
        raise RuntimeError("Engine core initialization failed. See root cause above.")

    monkeypatch.setattr(Runner, "execute", crash)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COTGAP_GENERATION_CACHE", str(tmp_path / "gc"))
    res = CliRunner().invoke(cli, _run_args(tiny_student, tmp_path / "run"))
    log = tmp_path / "run" / "logs" / "engines.log"
    assert res.exit_code == 1
    assert res.stderr.strip().count("\n") == 0 and f"engine and library output in {log}" in res.stderr
    assert "RuntimeError: Engine core initialization failed" in res.stderr
    assert "engine core: fatal error in the kernel" in log.read_text()


def test_run_on_a_terminal_shows_stages_and_bars_and_logs_the_libraries(tmp_path, tiny_student):
    code, shown = _on_pty([sys.executable, "-m", "cotgap", *_run_args(tiny_student, tmp_path / "run")], tmp_path, _env(tmp_path))
    plain = ANSI.sub("", shown)
    assert code == 0, plain[-3000:]
    log = tmp_path / "run" / "logs" / "engines.log"
    for line in (
        "cotgap run →",
        f"engine and library output → {log}",
        "▶ baseline",
        "▶ generate",
        "▶ train",
        "▶ distilled",
        "verdict",
        "report: ",
    ):
        assert line in plain, line
    assert re.search(r"requests · \S+ .*3/3", plain) and re.search(r"training .*steps.*loss \d", plain)
    for marker in LIBRARY_MARKERS:
        assert marker not in plain, marker
        assert marker in log.read_text(), marker


def test_verbose_shows_library_output_and_json_keeps_stdout_clean(tmp_path, tiny_student, monkeypatch):
    """-v: nothing captured, the libraries' own bars reach the command's stderr; --json: the report
    alone on stdout, stage lines on stderr. (In-process: the imports are already paid for.)"""
    from cotgap import output
    from cotgap.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COTGAP_GENERATION_CACHE", str(tmp_path / "gc"))
    res = CliRunner().invoke(cli, ["-v", *_run_args(tiny_student, tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output[-3000:]
    report = json.loads(res.stdout)
    assert report["training"]["updates"] > 0
    assert "▶ baseline" in res.stderr and "▶ distilled" in res.stderr
    assert "it/s]" in res.stderr  # lm-eval's and the Trainer's tqdm bars, as they are
    assert not (tmp_path / "run" / "logs").exists()
    assert not output.STATE.configured  # the policy ends with the command


def test_piped_run_prints_plain_progress_lines(tmp_path, tiny_student, monkeypatch):
    """Not a terminal (CliRunner's streams, like a pipe or a Slurm log): no bars, but the long
    stages print plain progress lines — requests done / total, rate, ETA; training steps and
    loss — here one per step (the interval lowered from 30 s to 0)."""
    from cotgap import progress
    from cotgap.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COTGAP_GENERATION_CACHE", str(tmp_path / "gc"))
    monkeypatch.setenv(progress.LINE_INTERVAL_ENV, "0")
    res = CliRunner().invoke(cli, _run_args(tiny_student, tmp_path / "run"))
    assert res.exit_code == 0, res.output[-3000:]
    lines = res.stdout.splitlines()
    evals = [ln for ln in lines if re.fullmatch(r"  requests · \S+ [1-3]/3 · [\d.]+/s · ETA \d:\d\d:\d\d", ln)]
    assert len(evals) == 6, lines  # baseline and distilled evaluations, a line per answered request
    steps = [ln for ln in lines if re.fullmatch(r"  training \d+/\d+ steps · [\d.]+/s · ETA \d:\d\d:\d\d( · loss [\d.]+)?", ln)]
    assert steps and any("loss" in ln for ln in steps), lines
    done, total = re.search(r"(\d+)/(\d+)", steps[-1]).groups()
    assert done == total and "\x1b" not in res.stdout
    for marker in LIBRARY_MARKERS:
        assert marker not in res.stdout, marker


def test_progress_lines_are_at_most_one_per_interval():
    """At the default interval a stage shorter than 30 s prints one line, when it ends."""
    import io

    from cotgap import output, progress

    buf = io.StringIO()
    lines = progress.LineBar(output.make_console(buf), "requests · m", 40, interval=progress.LINE_INTERVAL_S)
    for _ in range(40):
        lines.advance()
    lines.update(info="loss 1.5")
    lines.stop()
    assert re.fullmatch(r"  requests · m 40/40( · \d+/s)? · in 0:00:00 · loss 1.5\n", buf.getvalue()), buf.getvalue()
