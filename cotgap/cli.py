"""The ``cotgap`` command line (click + rich).

Exit codes: 0 success; 2 bad input (one line, no traceback); 1 internal failure.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import click
from rich.console import Console

from cotgap.errors import UserError

console = Console(stderr=False)
err = Console(stderr=True)


class CotgapGroup(click.Group):
    """Turns UserError into a one-line message and exit 2; anything else into exit 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            err.print("interrupted: finished stages are kept; re-run the same command to resume")
            sys.exit(130)
        except Exception as exc:  # internal failure: keep the traceback in a file, one line on screen
            path = os.path.abspath("cotgap-error.log")
            with open(path, "w") as f:
                traceback.print_exc(file=f)
            err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                      f"(traceback in {path})", highlight=False, soft_wrap=True)
            sys.exit(1)


@click.group(cls=CotgapGroup)
@click.version_option(package_name="cotgap")
def cli():
    """cotgap — chain-of-thought distillation under the practical protocol."""


@cli.command()
@click.option("--strategy", default=None, help="Strategy plugin to run (see `cotgap plugins`). Default: plain.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file with any of these options.")
@click.option("--task", default=None, help="Task name (see `cotgap tasks`).")
@click.option("--student", default=None, help="Zoo name, local folder or hub id.")
@click.option("--teacher", "teachers", multiple=True, help="Teacher model; repeat for several.")
@click.option("--out", default=None, help="Run directory (default runs/<strategy>-<task>-<student>-<hash>).")
@click.option("--limit", type=int, default=None, help="At most N train and N test examples.")
@click.option("--data-dir", default=None, help="Folder with benchmark data (or COTGAP_DATA_DIR).")
@click.option("--include-path", multiple=True, help="Extra folder of lm-eval task YAMLs.")
@click.option("--threads", type=int, default=None, help="Torch/OMP threads (default 1 on <=2 cores).")
@click.option("--backend", type=click.Choice(["auto", "vllm", "hf"]), default=None, help="Generation backend.")
@click.option("--ablation", type=click.Choice(["cross-teacher-filter"]), default=None,
              help="Named ablation (labelled in every output).")
def run(strategy, config_file, task, student, teachers, out, limit, data_dir, include_path, threads, backend, ablation):
    """Run baseline -> generate -> filter -> train -> evaluate -> report."""
    from cotgap import config as config_mod
    from cotgap.backends import runtime

    overrides = {"strategy": strategy, "task": task, "student": student, "teachers": teachers, "out": out,
                 "limit": limit, "data_dir": data_dir, "include_path": include_path, "threads": threads,
                 "ablation": ablation}
    cfg = config_mod.load(config_file, overrides)
    if backend:
        cfg.generation.backend = backend
    runtime.configure(cfg.threads)
    from cotgap.pipeline.runner import Runner
    from cotgap.report import run_report

    runner = Runner(cfg, console).prepare()
    console.print(f"[bold]cotgap run[/] → {runner.run.path}")
    report = runner.execute()
    run_report.render(report, console)
    png = run_report.plot(report, runner.run.path / "report.png")
    console.print(f"report: {runner.run.path / 'report.json'}  plot: {png}  "
                  f"(computed: {', '.join(report['run']['computed']) or 'nothing'})")


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
            t.add_row(r["name"], ", ".join(r["strategies"]), ", ".join(r["hooks"]), r["module"])
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
        t.add_row(r["name"], r["title"], f"{r['params'] / 1e6:.0f}M", "yes" if r["chat_template"] else "no",
                  r["packages"], r["fetched"], "[green]yes[/]" if r["converted"] else "no")
    console.print(t)


@cli.command()
@click.option("--include-path", multiple=True, help="Extra folder of lm-eval task YAMLs.")
@click.option("--json", "as_json", is_flag=True)
def tasks(include_path, as_json):
    """Built-in and added tasks."""
    from cotgap.backends.evaluation import list_tasks

    rows = list_tasks(include_path)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title="cotgap tasks")
    t.add_column("task")
    t.add_column("source")
    for r in rows:
        t.add_row(r["task"], r["source"])
    console.print(t)


def main():
    cli(prog_name="cotgap")


if __name__ == "__main__":
    main()
