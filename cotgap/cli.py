"""The ``cotgap`` command line (click + rich).

Exit codes: 0 success; 2 bad input (one line, no traceback); 1 internal failure.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import traceback

import click
from rich.console import Console
from rich.markup import escape

from cotgap import output
from cotgap.config import RunConfig
from cotgap.errors import PluginError, ServiceError, UserError
from cotgap.protocol.constants import ABLATIONS, ALPHA, KEPT_RATIO, NOISE_Z, SELECTION_THRESHOLD

# Rebound for every command by ``cli`` (cotgap.output.configure), on the streams of that
# invocation; these serve only errors raised before it runs (an unknown command).
console = Console(stderr=False)
err = Console(stderr=True)


class CotgapGroup(click.Group):
    """Turns UserError into a one-line message and exit 2; anything else into exit 1."""

    def invoke(self, ctx):
        global console, err
        # this invocation's streams until the group callback builds its consoles (an unknown
        # command fails before it runs; a previous in-process invocation's streams may be closed)
        console, err = Console(stderr=False), Console(stderr=True)
        try:
            return super().invoke(ctx)
        except UserError as exc:  # messages are text, not markup: a "[ray]" in one must show
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except ServiceError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(3)
        except PluginError as exc:
            err.print(f"[bold red]plugin error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(1)
        except click.UsageError as exc:  # bad flags: one line, like every other bad input
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            err.print(f"[bold red]error:[/] {exc.format_message()}{hint}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            err.print("interrupted: finished stages are kept; re-run the same command to resume")
            sys.exit(130)
        except Exception as exc:  # internal failure: keep the traceback in a file, one line on screen
            if _disk_full(exc):
                err.print(
                    "[bold red]error:[/] no space left on device; finished stages are kept — free space and "
                    "re-run the same command to resume",
                    highlight=False,
                    soft_wrap=True,
                )
                sys.exit(3)
            path = _save_traceback()
            where = (f"traceback in {path}" if path else "no writable place for the traceback") + output.log_note()
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} ({where})",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(1)


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it: torch and safetensors wrap OSError) is a full disk."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _save_traceback() -> str | None:
    """Write the current exception's traceback to ./cotgap-error.log, or to a temporary file when
    the working directory is not writable; None if neither can be written."""
    import tempfile

    text = traceback.format_exc()
    try:
        path = os.path.abspath("cotgap-error.log")
        with open(path, "w") as f:
            f.write(text)
        return path
    except OSError:
        pass
    try:
        fd, path = tempfile.mkstemp(prefix="cotgap-error-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path
    except OSError:
        return None


@click.group(cls=CotgapGroup)
@click.version_option(package_name="cotgap")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show engine and library output (warnings, their own progress bars) as it comes, instead of "
    "keeping it in the run's logs/engines.log.",
)
@click.pass_context
def cli(ctx, verbose):
    """cotgap — chain-of-thought distillation under the practical protocol."""
    global console, err
    console, err = output.configure(verbose=verbose)
    from cotgap import interrupts

    interrupts.install()  # Ctrl-C honoured even where a library swallows it
    ctx.call_on_close(output.reset)  # after the error line, which may name the command's log


@cli.command()
@click.option("--strategy", default=None, help="Strategy plugin to run (see `cotgap plugins`). Default: plain.")
@click.option("--config", "config_file", default=None, help="YAML file with any of these options.")
@click.option("--task", default=None, help="Task name (see `cotgap tasks`).")
@click.option("--student", default=None, help="Zoo name, local folder or hub id.")
@click.option("--teacher", "teachers", multiple=True, help="Teacher model; repeat for several.")
@click.option("--out", default=None, help="Run directory (default runs/<strategy>-<task>-<student>-<hash>).")
@click.option("--limit", type=int, default=None, help="At most N train and N test examples.")
@click.option("--data-dir", default=None, help="Folder with benchmark data (or COTGAP_DATA_DIR).")
@click.option("--include-path", multiple=True, help="Extra folder of lm-eval task YAMLs.")
@click.option("--threads", type=int, default=None, help="Torch/OMP threads (default 1 on <=2 cores).")
@click.option("--backend", type=click.Choice(["auto", "vllm", "hf"]), default=None, help="Generation backend.")
@click.option("--ablation", type=click.Choice(ABLATIONS), default=None, help="Named ablation (labelled in every output).")
@click.option(
    "--scoring",
    type=click.Choice(["robust", "strict"]),
    default=None,
    help="Scoring that decides correctness (teacher filter and verdict); both are reported.",
)
@click.option("--force", is_flag=True, help="--out holds another config's run: start it afresh (deletes that run).")
@click.option("--json", "as_json", is_flag=True, help="Print report.json on stdout (stage lines go to stderr).")
def run(
    strategy,
    config_file,
    task,
    student,
    teachers,
    out,
    limit,
    data_dir,
    include_path,
    threads,
    backend,
    ablation,
    scoring,
    force,
    as_json,
):
    """Run baseline -> generate -> filter -> train -> evaluate -> report."""
    from cotgap import config as config_mod
    from cotgap.backends import runtime

    overrides = {
        "strategy": strategy,
        "task": task,
        "student": student,
        "teachers": teachers,
        "out": out,
        "limit": limit,
        "data_dir": data_dir,
        "include_path": include_path,
        "threads": threads,
        "ablation": ablation,
        "scoring": scoring,
    }
    embedded = config_mod.embedded_default_applies(config_file, overrides)
    cfg = config_mod.load(config_file, overrides, base=config_mod.EMBEDDED_DEFAULT if embedded else None)
    if backend:
        cfg.generation.backend = backend
    runtime.configure(cfg.threads)
    from cotgap.pipeline.runner import Runner
    from cotgap.report import run_report

    stage = _stage_console(as_json)
    if embedded:
        stage.print(
            f"[dim]embedded default: {cfg.task} ({cfg.synthetic_n} examples) · student {cfg.student} · "
            f"teacher {', '.join(cfg.teachers)} · {cfg.training.method} fine-tuning, lr {cfg.training.lr():g}, "
            f"{cfg.training.max_steps} updates of {cfg.training.per_device_batch_size} on the {cfg.train_shots}-shot prompt "
            "(README: The embedded default; name a task, student or teacher to leave it)[/]"
        )
    with output.chatter(consoles=(console, err), name="cotgap-run", json_stdout=as_json) as chatter:
        runner = Runner(cfg, stage, force=force).prepare()
        chatter.move(output.run_log(runner.run.path))
        stage.print(f"[bold]cotgap run[/] → {runner.run.path}")
        _log_line(stage, chatter.path)
        report = runner.execute()
        png = run_report.plot(report, runner.run.path / "report.png")
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    run_report.render(report, console)
    console.print(
        f"report: {runner.run.path / 'report.json'}  plot: {png}  (computed: {', '.join(report['run']['computed']) or 'nothing'})"
    )


def _stage_console(json_stdout: bool) -> Console:
    """Where this command's stage lines and bars go: stderr when stdout carries JSON (or data)."""
    stage = err if json_stdout else console
    output.use_stage_console(stage)
    return stage


def _log_line(console, path) -> None:
    """Where the engine and library output of this command goes (nothing when it is not captured)."""
    if path is not None:
        console.print(f"[dim]  engine and library output → {path} (-v shows it here)[/dim]", highlight=False)


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json):
    """List loaded plugins, their hooks and strategies (and plugins that failed to load)."""
    from cotgap import plugins

    rows = plugins.describe_plugins()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title="cotgap plugins")
    for c in ("name", "strategies", "hooks", "module / problem"):
        t.add_column(c)
    for r in rows:
        if "error" in r:
            t.add_row(r["name"], "", "", f"[yellow]warning: failed to load: {r['error']}[/]")
        else:
            note = f"  [yellow]warning: {r['warning']}[/]" if r.get("warning") else ""
            t.add_row(r["name"], ", ".join(r["strategies"]), ", ".join(r["hooks"]), r["module"] + note)
    console.print(t)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def models(as_json):
    """The embedded model zoo: what is fetched and converted."""
    from cotgap.models import zoo

    rows = zoo.listing()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title=f"cotgap model zoo (cache: {zoo.zoo_dir()})")
    for c in ("name", "model", "params", "chat", "package(s)", "fetched", "converted"):
        t.add_column(c)
    for r in rows:
        t.add_row(
            r["name"],
            r["title"],
            f"{r['params'] / 1e6:.0f}M",
            "yes" if r["chat_template"] else "no",
            r["packages"],
            r["fetched"],
            "[green]yes[/]" if r["converted"] else "no",
        )
    console.print(t)


@cli.command()
@click.option("--include-path", multiple=True, help="Extra folder of lm-eval task YAMLs.")
@click.option("--data-dir", default=None, help="Folder with benchmark data (or COTGAP_DATA_DIR).")
@click.option("--json", "as_json", is_flag=True)
def tasks(include_path, data_dir, as_json):
    """Built-in and added tasks, their data source and train/test sizes."""
    from cotgap.backends.evaluation import list_tasks

    rows = list_tasks(include_path, data_dir=data_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title="cotgap tasks")
    for c in ("task", "group", "source", "data", "train", "test"):
        t.add_column(
            c, justify="right" if c in ("train", "test") else "left", no_wrap=c in ("group", "train", "test"), overflow="fold"
        )
    for r in rows:
        sizes = ("[yellow]no data[/]", "") if r["train"] is None else (str(r["train"]), str(r["test"]))
        t.add_row(r["task"], r["group"], r["source"], r["data"], *sizes)
    console.print(t)


@cli.command("select")
@click.option(
    "--icl-table",
    type=click.Path(dir_okay=False),
    help="CSV task,model,role,accuracy (role teacher|student, accuracy in percent).",
)
@click.option(
    "--threshold",
    type=float,
    default=SELECTION_THRESHOLD,
    show_default=True,
    help="Select a task when mean teacher − mean student accuracy exceeds this (points, strictly).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--measure", is_flag=True, help="Measure the table first: few-shot CoT on each task's test split.")
@click.option("--task", "tasks", multiple=True, help="With --measure: task (repeat).")
@click.option("--teacher", "teachers", multiple=True, help="With --measure: teacher model (repeat).")
@click.option("--student", "students", multiple=True, help="With --measure: student model (repeat).")
@click.option("--out", default=None, help="With --measure: CSV to write (default icl-table.csv).")
@click.option("--limit", type=int, default=None, help="With --measure: at most N test examples.")
@click.option(
    "--synthetic-n",
    type=int,
    default=RunConfig.synthetic_n,
    show_default=True,
    help="Examples generated per synthetic task (split 3:2), as in `cotgap run`.",
)
@click.option("--data-dir", default=None, help="Folder with benchmark data (or COTGAP_DATA_DIR).")
@click.option("--include-path", multiple=True, help="Extra folder of lm-eval task YAMLs.")
@click.option("--threads", type=int, default=None, help="Torch/OMP threads.")
@click.option("--backend", type=click.Choice(["auto", "vllm", "hf"]), default="auto", help="Generation backend.")
def select_cmd(
    icl_table,
    threshold,
    as_json,
    measure,
    tasks,
    teachers,
    students,
    out,
    limit,
    synthetic_n,
    data_dir,
    include_path,
    threads,
    backend,
):
    """Which tasks are worth distilling: teacher − student few-shot accuracy gap above a threshold."""
    import math

    from cotgap.report import selection, tables, terminal

    if not math.isfinite(threshold):
        raise UserError(f"--threshold must be a number, got {threshold}")
    if measure:
        if icl_table:
            raise UserError("--icl-table and --measure exclude each other (--measure writes its table to --out)")
        from cotgap.backends import runtime

        runtime.configure(threads)
        from cotgap.pipeline import icl

        icl_table = out or "icl-table.csv"
        from cotgap.outpaths import writable_file

        writable_file(icl_table, "--out")
        writable_file(f"{icl_table}.log", "--out's log")
        _stage_console(True)
        # the engines' output beside the table it measured (appended: icl-table.csv -> icl-table.csv.log)
        with output.chatter(f"{icl_table}.log", consoles=(console, err), json_stdout=as_json):
            icl.measure(
                tasks,
                teachers,
                students,
                icl_table,
                limit=limit,
                synthetic_n=synthetic_n,
                data_dir=data_dir,
                include_paths=include_path,
                backend=backend,
                log=lambda m: err.print(m, highlight=False),
            )
        err.print(f"wrote {icl_table}", highlight=False)
        _log_line(err, output.STATE.log_path)
    else:
        if not icl_table:
            raise UserError("give --icl-table FILE (CSV task,model,role,accuracy) or --measure --task … --teacher … --student …")
        if out or tasks or teachers or students:
            raise UserError("--task/--teacher/--student/--out are for --measure")
    try:
        rows = tables.read_csv(icl_table, tables.TASK_SELECTION_COLUMNS)
        selections = selection.select_tasks(rows, threshold)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "threshold": threshold,
                    "table": str(icl_table),
                    "tasks": [
                        {
                            "task": s.task,
                            "teacher_mean": s.teacher_mean,
                            "student_mean": s.student_mean,
                            "gap": s.gap,
                            "selected": s.selected,
                            "n_teachers": s.n_teachers,
                            "n_students": s.n_students,
                        }
                        for s in selections
                    ],
                },
                indent=2,
            )
        )
        return
    terminal.render_selection(selections, console, threshold)
    chosen = [s.task for s in selections if s.selected]
    console.print(f"selected: {', '.join(chosen) if chosen else 'none'}", highlight=False)


@cli.command()
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Grid YAML: tasks, students, teachers, strategies (+ any `cotgap run` setting).",
)
@click.option("--out", default=None, help="Sweep directory (default: the grid's out, else sweeps/<name>).")
@click.option("--limit", type=int, default=None, help="At most N train and N test examples (overrides the grid).")
@click.option("--backend", type=click.Choice(["auto", "vllm", "hf"]), default=None, help="Generation backend.")
@click.option("--threads", type=int, default=None, help="Torch/OMP threads (default 1 on <=2 cores).")
@click.option(
    "--ablation",
    type=click.Choice(ABLATIONS),
    default=None,
    help="Also run every cell under this ablation (filtered next to unfiltered).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (cells, skips, teacher-generation jobs, baselines, resources) and stop: "
    "no model is loaded and nothing is downloaded.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON on stdout: with --dry-run the plan, else the sweep summary (stage lines go to stderr).",
)
@click.option("--no-report", is_flag=True, help="Do not build the cross-run report at the end.")
@click.option("--force", is_flag=True, help="Cells whose directory holds another config start afresh.")
@click.option(
    "--executor",
    default="local",
    show_default=True,
    help="Where the cells run: local (here, one after the other) or ray (tasks on a Ray cluster: teacher "
    "generations and baselines first, then the cells, each holding the grid's resources for its model).",
)
@click.option(
    "--address",
    default=None,
    help="With --executor ray: the cluster's address (host:port, ray://host:port or auto; default "
    "RAY_ADDRESS, else a local Ray instance on this machine).",
)
def sweep(config_file, out, limit, backend, threads, ablation, dry_run, as_json, no_report, force, executor, address):
    """Run a grid of runs with shared teacher generations, then report on it."""
    from cotgap.backends import runtime
    from cotgap.pipeline import sweep as sweep_mod
    from cotgap.pipeline.grid import load_grid

    if limit is not None and limit < 1:
        raise UserError(f"--limit must be a positive integer, got {limit}")
    if executor not in sweep_mod.EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(sweep_mod.EXECUTORS)}, got {executor!r}")
    if address and executor != "ray":
        raise UserError("--address goes with --executor ray")
    runtime.configure(threads)
    grid_args = {"out": out, "limit": limit, "backend": backend, "add_ablation": ablation}
    if dry_run:
        _print_plan(config_file, grid_args, as_json)
        return
    grid = load_grid(config_file, **grid_args)
    from cotgap.outpaths import writable_dir

    writable_dir(grid.out, "--out")  # before its log is opened there
    stage = _stage_console(as_json)
    stage.print(f"[bold]cotgap sweep[/] {grid.name}: {len(grid.cells)} cells → {grid.out} (shared generations: {grid.cache})")
    with output.chatter(output.run_log(grid.out), consoles=(console, err), json_stdout=as_json) as chatter:
        _log_line(stage, chatter.path)
        summary = sweep_mod.run_sweep(grid, stage, force=force, executor=executor, ray={"address": address, "threads": threads})
        if not as_json:
            sweep_mod.render_summary(summary, console)
        files = None
        if not no_report and summary["counts"].get("done"):
            files = _sweep_report(grid, None if as_json else console)
    if as_json:
        click.echo(json.dumps({**summary, "report": files}, indent=2, default=str))
    if summary["counts"].get("failed"):
        err.print(
            f"[bold red]{summary['counts']['failed']} cell(s) failed[/] (see {grid.out / 'sweep.json'}); "
            "fix and re-run the same command to resume"
        )
        sys.exit(1)


def _sweep_report(grid, console) -> dict:
    """The cross-run report of a finished sweep; its files (printed on ``console`` unless None)."""
    from cotgap.report import cross_run

    report, out_dir = cross_run.make_report([str(grid.out)], out=grid.out, console=console)
    files = {"json": str(out_dir / "report.json"), "markdown": str(out_dir / "report.md"), "plots": _plot_files(report)}
    if console is not None:
        console.print(f"report: {files['json']}  {files['markdown']}  plots: {', '.join(files['plots'])}")
    return files


def _print_plan(config_file: str, grid_args: dict, as_json: bool) -> None:
    """``sweep --dry-run``: the grid read and planned offline (the hub is never asked), printed as
    tables or JSON."""
    from cotgap.pipeline import plan as plan_mod
    from cotgap.pipeline import plan_sizes
    from cotgap.pipeline.grid import load_grid

    with plan_sizes.offline():
        plan = plan_mod.build_plan(load_grid(config_file, **grid_args))
    if as_json:
        click.echo(json.dumps(plan, indent=2, default=str))
        return
    from cotgap.pipeline import plan_render

    plan_render.render(plan, console)


def _plot_files(report: dict) -> list[str]:
    plots = (report.get("files") or {}).get("plots") or {}
    out = []
    for v in plots.values():
        out.extend(v if isinstance(v, list) else [v])
    return out


@cli.command()
@click.argument("dirs", nargs=-1, type=click.Path())
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False),
    help="External distilled results: setting,task,teacher,student,student_size,accuracy.",
)
@click.option(
    "--baseline-csv", type=click.Path(dir_okay=False), help="Pre-distillation results: task,student,student_size,accuracy."
)
@click.option(
    "--teacher-csv",
    type=click.Path(dir_okay=False),
    help="Teachers: task,teacher[,accuracy,kept,teacher_size,cot_tokens,capacity,role,…].",
)
@click.option("--out", default=None, help="Output folder (default: the first DIR, or ./cotgap-report).")
@click.option(
    "--alpha",
    type=float,
    default=None,
    help=f"Level of the exact test deciding each cell's verdict (Holm-corrected). Default: the runs' own "
    f"config alpha, else {ALPHA:g}.",
)
@click.option(
    "--noise-margin",
    type=float,
    default=None,
    help="Override: a fixed margin in points for every noise comparison (cells without a test, capacity "
    "gap, ties between teachers). Default: --noise-z standard errors at the test-set size.",
)
@click.option(
    "--noise-z",
    type=float,
    default=NOISE_Z,
    show_default=True,
    help="Standard errors of a difference of two accuracies that count as noise.",
)
@click.option(
    "--kept-ratio",
    type=float,
    default=KEPT_RATIO,
    show_default=True,
    help="Kept-question ratio that breaks a tie (within noise) between teachers.",
)
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of tables.")
def report(dirs, csv_file, baseline_csv, teacher_csv, out, alpha, noise_margin, noise_z, kept_ratio, as_json):
    """Analyse stored runs / sweeps (or external CSV results): report.json, report.md, plots."""
    from cotgap.report import cross_run

    rep, out_dir = cross_run.make_report(
        dirs,
        csv_file=csv_file,
        baseline_csv=baseline_csv,
        teacher_csv=teacher_csv,
        out=out,
        noise_margin=noise_margin,
        kept_ratio_threshold=kept_ratio,
        alpha=alpha,
        noise_z=noise_z,
        console=None if as_json else console,
    )
    if as_json:
        click.echo(json.dumps(rep, indent=2, default=str))
        return
    console.print(
        f"report: {out_dir / 'report.json'}  {out_dir / 'report.md'}  "
        f"plots: {', '.join(str(out_dir / f) for f in _plot_files(rep))}",
        highlight=False,
    )


@cli.command("export")
@click.argument("run_dir", type=click.Path())
@click.argument("out", type=click.Path())
@click.option(
    "--what",
    type=click.Choice(["generations", "kept", "training"]),
    help="generations: every rationale; kept: the filtered ones; training: exactly what the student trained on.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["hf", "chat-jsonl"]),
    help="hf: a datasets folder (save_to_disk, card README.md inside); chat-jsonl: JSON Lines with "
    "`messages` (TRL, LLaMA-Factory, ms-swift; card OUT.README.md beside it).",
)
def export_cmd(run_dir, out, what, fmt):
    """Write a run's rationales as a dataset other tools read, with a dataset card (OUT must not exist)."""
    from cotgap.export import FORMATS, WHAT, export

    if what is None or fmt is None:  # checked here: click's own message for a missing choice spans lines
        raise UserError(f"give --what ({'|'.join(WHAT)}) and --format ({'|'.join(FORMATS)})")
    done = export(run_dir, what, fmt, out)
    console.print(f"exported {done['n']} {what} records → {done['out']}  (card: {done['card']})", highlight=False)


def add_plugin_commands() -> None:
    """Commands from plugins' ``register_commands(cli)`` hooks (as simonw/llm's). A plugin whose
    hook fails is listed by ``cotgap plugins`` with the reason; the other commands still work."""
    from cotgap import plugins

    plugins.load_plugins()
    for impl in plugins.pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:
            plugins.load_failures[impl.plugin_name] = f"register_commands: {type(exc).__name__}: {exc}".splitlines()[0]


def main():
    add_plugin_commands()
    cli(prog_name="cotgap")


if __name__ == "__main__":
    main()
