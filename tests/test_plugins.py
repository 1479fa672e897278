"""Plugin host: built-ins load as ordinary plugins, entry points are discovered, failures warn."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from cotgap import plugins
from cotgap.hookspecs import hookimpl

FIXTURES = Path(__file__).parent / "fixtures"


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "cotgap", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_plain_is_listed_with_its_hooks():
    out = _cli("plugins", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["plain"]["strategies"] == ["plain"]
    assert {"generate", "filter", "train", "register_strategies"} <= set(rows["plain"]["hooks"])
    assert rows["plain"]["module"] == "cotgap_plugins.plain"


@pytest.fixture(scope="module")
def installed_fixture_plugins(tmp_path_factory):
    """pip-install the fixture packages (real wheels with entry points) into a private target dir."""
    target = tmp_path_factory.mktemp("site")
    for pkg in ("cotgap_echo_plugin", "cotgap_broken_plugin", "cotgap_shortest_plugin"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(target),
                str(FIXTURES / pkg),
            ],
            check=True,
            capture_output=True,
        )
    return target


def test_entry_point_plugin_is_discovered_and_broken_one_warns(installed_fixture_plugins):
    env = {"PYTHONPATH": f"{installed_fixture_plugins}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = _cli("plugins", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["echo"]["strategies"] == ["echo"]
    assert {"generate", "filter", "train"} <= set(rows["echo"]["hooks"])
    assert "a_module_that_does_not_exist" in rows["broken"]["error"]
    table = _cli("plugins", env=env)
    assert table.returncode == 0 and "failed to load" in table.stdout


def test_allow_list_env_var(installed_fixture_plugins):
    base = {"PYTHONPATH": f"{installed_fixture_plugins}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    none = json.loads(_cli("plugins", "--json", env={**base, "COTGAP_LOAD_PLUGINS": ""}).stdout)
    assert "plain" in {r["name"] for r in none}
    assert {r["name"] for r in none} <= {"plain", "mix", "micota", "mind", "onpolicy", "gkd"}  # built-ins only
    only = json.loads(_cli("plugins", "--json", env={**base, "COTGAP_LOAD_PLUGINS": "cotgap-echo"}).stdout)
    names = {r["name"] for r in only}
    assert "echo" in names and "broken" not in names


def test_register_and_unregister_by_name():
    mod = types.ModuleType("cotgap_test_inline")

    @hookimpl
    def register_strategies(register):
        register("inline", defaults={"k": 1})

    mod.register_strategies = register_strategies
    plugins.pm.register(mod, name="inline-test")
    try:
        assert plugins.strategies()["inline"].defaults == {"k": 1}
    finally:
        plugins.pm.unregister(name="inline-test")
    assert "inline" not in plugins.strategies()


def test_only_selected_strategy_hooks_run():
    calls = []

    def make(name):
        mod = types.ModuleType(f"cotgap_test_{name}")

        @hookimpl
        def register_strategies(register):
            register(name)

        @hookimpl
        def generate(strategy, ctx):
            calls.append(name)
            return {name: []}

        mod.register_strategies, mod.generate = register_strategies, generate
        plugins.pm.register(mod, name=f"{name}-test")

    make("spy1")
    make("spy2")
    try:
        assert plugins.strategy_hooks("spy1").generate(strategy="spy1", ctx=None) == {"spy1": []}
        assert calls == ["spy1"]  # spy2's generate (and the built-ins') never ran
        assert plugins.strategy_hooks("spy2").generate(strategy="spy2", ctx=None) == {"spy2": []}
        assert calls == ["spy1", "spy2"]
    finally:
        plugins.pm.unregister(name="spy1-test")
        plugins.pm.unregister(name="spy2-test")


def _inline_plugin(plugin_name: str, strategy: str, **hooks):
    mod = types.ModuleType(f"cotgap_test_{plugin_name}")

    @hookimpl
    def register_strategies(register):
        register(strategy)

    mod.register_strategies = register_strategies
    for name, fn in hooks.items():
        setattr(mod, name, hookimpl(fn))
    plugins.pm.register(mod, name=plugin_name)
    return mod


def test_two_plugins_registering_one_name_are_refused_naming_both():
    from cotgap.errors import UserError

    _inline_plugin("twin-a", "twin")
    _inline_plugin("twin-b", "twin")
    try:
        with pytest.raises(UserError, match="twin-a and twin-b"):
            plugins.select("twin")
        rows = {r["name"]: r for r in plugins.describe_plugins()}
        assert "also registered by twin-b" in rows["twin-a"]["warning"]
        assert plugins.select("plain").name == "plain"  # other strategies are unaffected
    finally:
        plugins.pm.unregister(name="twin-a")
        plugins.pm.unregister(name="twin-b")


def test_plugin_failing_hook_validation_is_listed_and_others_still_run(tmp_path, monkeypatch):
    (tmp_path / "cotgap_badsig.py").write_text(
        "from cotgap.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef generate(strategy, ctx, an_argument_no_spec_has):\n    return {}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins._register_module("badsig", "cotgap_badsig")
    try:
        assert plugins.pm.get_plugin("badsig") is None
        assert "an_argument_no_spec_has" in plugins.load_failures["badsig"]
        rows = {r["name"]: r for r in plugins.describe_plugins()}
        assert "PluginValidationError" in rows["badsig"]["error"]
        assert "plain" in plugins.strategies()
    finally:
        plugins.load_failures.pop("badsig", None)


@pytest.mark.parametrize(
    "method, returned",
    [("generate", None), ("generate", {}), ("filter", None), ("filter", "all of them"), ("train", None), ("train", "a path")],
)
def test_hook_returning_nothing_or_the_wrong_type_is_the_plugins_fault(method, returned, tmp_path, monkeypatch, tiny_student):
    from rich.console import Console

    from cotgap import config as config_mod
    from cotgap.errors import PluginError, UserError
    from cotgap.pipeline.runner import Runner

    hooks = {
        "generate": lambda strategy, ctx: {"s": ctx.generate_rationales("scripted", source="s")},
        "filter": lambda strategy, ctx, source, records: records,
        "train": lambda strategy, ctx, data: ctx.train_student([r for v in data.values() for r in v]),
    }
    good = hooks[method]
    hooks[method] = {
        "generate": lambda strategy, ctx: returned,
        "filter": lambda strategy, ctx, source, records: returned,
        "train": lambda strategy, ctx, data: returned,
    }[method]
    assert good is not hooks[method]
    _inline_plugin("faulty-test", "faulty", **hooks)
    try:
        cfg = config_mod.load(
            None,
            {
                "strategy": "faulty",
                "student": str(tiny_student),
                "teachers": ["scripted"],
                "task": "synthetic_navigate",
                "limit": 4,
                "out": str(tmp_path / "r"),
                "training": {"epochs": 1},
            },
        )
        cfg.generation.backend = "hf"
        monkeypatch.setenv("COTGAP_GENERATION_CACHE", str(tmp_path / "gc"))
        with pytest.raises(PluginError, match=f"plugin faulty-test: {method}\\(\\) of strategy faulty returned") as exc:
            Runner(cfg, Console(quiet=True)).prepare().execute()
        assert not isinstance(exc.value, UserError)  # not reported as the user's error (exit 2)
    finally:
        plugins.pm.unregister(name="faulty-test")


def test_a_plugin_adds_a_command_through_register_commands():
    import click
    from click.testing import CliRunner

    from cotgap import cli as cli_mod

    mod = types.ModuleType("cotgap_test_cmd")

    @hookimpl
    def register_commands(cli):
        @cli.command(name="hello-plugin")
        @click.argument("who")
        def hello(who):
            """Say hello (added by a plugin)."""
            click.echo(f"hello {who} from a plugin")

    mod.register_commands = register_commands
    plugins.pm.register(mod, name="cmd-test")
    try:
        cli_mod.add_plugin_commands()
        out = CliRunner().invoke(cli_mod.cli, ["hello-plugin", "world"])
        assert out.exit_code == 0 and out.output == "hello world from a plugin\n"
        assert "hello-plugin" in CliRunner().invoke(cli_mod.cli, ["--help"]).output
    finally:
        plugins.pm.unregister(name="cmd-test")
        cli_mod.cli.commands.pop("hello-plugin", None)


def test_third_party_strategy_class_from_an_entry_point_runs_end_to_end(installed_fixture_plugins, tmp_path, tiny_student):
    """tests/fixtures/cotgap_shortest_plugin: one ``cotgap.Strategy`` subclass overriding ``filter``
    (undecorated: still the hook) with a typed parameter, installed as a real wheel."""
    import yaml

    from cotgap.jsonio import read_json, read_jsonl

    source = (FIXTURES / "cotgap_shortest_plugin" / "cotgap_shortest.py").read_text()
    assert len(source[source.index("class Shortest") :].strip().splitlines()) < 15
    env = {
        "PYTHONPATH": f"{installed_fixture_plugins}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "COTGAP_GENERATION_CACHE": str(tmp_path / "gc"),
    }
    rows = {r["name"]: r for r in json.loads(_cli("plugins", "--json", env=env).stdout)}
    assert rows["shortest"]["strategies"] == ["shortest"] and "filter" in rows["shortest"]["hooks"]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"strategy_params": {"k": 2}, "training": {"epochs": 1}}))
    args = (
        "run",
        "--strategy",
        "shortest",
        "--student",
        str(tiny_student),
        "--teacher",
        "scripted",
        "--task",
        "synthetic_navigate",
        "--limit",
        "6",
        "--backend",
        "hf",
        "--config",
        str(cfg),
    )
    out = _cli(*args, "--out", str(tmp_path / "run"), env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    run = tmp_path / "run"
    (fname,) = read_json(run / "generations" / "index.json").values()
    gens, kept = read_jsonl(run / "generations" / fname), read_jsonl(run / "filtered" / fname)
    shortest = sorted((g for g in gens if g["correct"]), key=lambda g: len(g["response"]))[:2]
    assert [k["response"] for k in kept] == [g["response"] for g in shortest]
    assert read_json(run / "report.json")["strategy"]["params"] == {"k": 2}
    cfg.write_text(yaml.safe_dump({"strategy_params": {"k": "two"}}))
    bad = _cli(*args, "--out", str(tmp_path / "bad"), env=env)
    assert bad.returncode == 2 and "strategy_params.k of strategy shortest must be an integer" in bad.stderr, bad.stderr


def _example_plugin(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "plugins" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # importable by name (a weight function travels to launcher workers so)
    spec.loader.exec_module(module)
    return module


def test_the_guides_loss_changing_strategy_runs_under_an_observer(tmp_path):
    """docs/plugins.md: "Changing the loss" — examples/plugins/cotgap_focus.py, a strategy that
    weights each rationale by its current loss through ``weight_fn``, runs end to end through the
    testing kit with its parameter (the weights' effect on the loss:
    tests/test_pipeline.py::test_weight_fn_changes_the_loss_as_documented); "Observers" —
    examples/plugins/cotgap_timer.py, a module of pluggy wrappers, sees that strategy's generate and
    train (its records reach the report) without replacing what they return."""
    import torch

    from cotgap.testing import run_strategy

    focus, timer = _example_plugin("cotgap_focus"), _example_plugin("cotgap_timer")
    w = focus.harder_first(None, None, torch.tensor([1.0, 3.0]), power=2.0)
    assert w.tolist() == pytest.approx([0.25, 2.25])
    plugins.pm.register(timer, name="timer-observer")
    try:
        report = run_strategy(focus.Focus(), tmp_path, strategy_params={"power": 2.0})
    finally:
        plugins.pm.unregister(name="timer-observer")
    assert report["strategy"]["params"]["power"] == 2.0 and report["training"]["updates"] >= 1
    records = report["strategy_records"]
    assert records["timer.generate"] >= 0 and records["timer.train"] > 0
