"""Plugin host: built-ins load as ordinary plugins, entry points are discovered, failures warn."""

import json
import os
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from cotgap import Strategy, UserError, plugins
from cotgap.hookspecs import hookimpl
from cotgap.testing import registered

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
    """pip-install the fixture packages (real wheels with entry points) into a private target dir,
    each built from a copy (an in-tree build would leave build/ and *.egg-info in tests/fixtures)."""
    import shutil

    target, sources = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("fixture-sources")
    for pkg in ("cotgap_echo_plugin", "cotgap_broken_plugin", "cotgap_shortest_plugin"):
        source = shutil.copytree(FIXTURES / pkg, sources / pkg, ignore=shutil.ignore_patterns("build", "*.egg-info"))
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
                str(source),
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


def _strategy(name: str, **methods) -> Strategy:
    """A strategy object named ``name`` whose hook methods are ``methods`` (functions of ``self, ...``)."""
    return type(f"S_{name.replace('-', '_')}", (Strategy,), {"name": name, **methods})()


def test_register_and_unregister_an_object():
    @dataclass
    class Params:
        k: int = 1

    strat = type("Inline", (Strategy,), {"name": "inline", "Params": Params})()
    with registered(strat, "inline-test"):
        assert plugins.strategies()["inline"].defaults == {"k": 1}
        assert plugins.strategies()["inline"].plugin_name == "inline-test"
    assert "inline" not in plugins.strategies()


def test_registering_a_name_is_refused_in_one_line_and_other_plugins_load(cotgap_register):
    """The removed module-function style (``register("name", defaults=...)`` with module-level
    hooks checking the name) fails that plugin alone, saying what to register instead."""
    mod = types.ModuleType("cotgap_test_legacy")

    @hookimpl
    def register_strategies(register):
        register("legacy", defaults={"k": 1})

    mod.register_strategies = register_strategies
    cotgap_register(mod, "legacy-test")  # a module plugin: what an entry point loads
    try:
        found = plugins.strategies()
        assert "legacy" not in found and "plain" in found
        why = plugins.load_failures["legacy-test"]
        assert why == (
            "register_strategies: register('legacy') names a strategy; register a cotgap.Strategy instance "
            "instead: register(MyStrategy()) (the module-function style was removed)"
        )
        assert plugins.pm.get_plugin("legacy-test") is None
        with pytest.raises(
            UserError, match=r"its plugin 'legacy-test' failed to load \(register_strategies: register\('legacy'\)"
        ):
            plugins.select("legacy")  # what `cotgap run --strategy legacy` says, in one line
    finally:
        plugins.load_failures.pop("legacy-test", None)
        plugins.failed_strategies.pop("legacy", None)


def test_only_selected_strategy_hooks_run(cotgap_register):
    calls = []
    for name in ("spy1", "spy2"):
        cotgap_register(_strategy(name, generate=lambda self, ctx: calls.append(self.name) or {self.name: []}))
    assert plugins.strategy_hooks("spy1").generate(strategy="spy1", ctx=None) == {"spy1": []}
    assert calls == ["spy1"]  # spy2's generate (and the built-ins') never ran
    assert plugins.strategy_hooks("spy2").generate(strategy="spy2", ctx=None) == {"spy2": []}
    assert calls == ["spy1", "spy2"]


def test_two_plugins_registering_one_name_are_refused_naming_both(cotgap_register):
    cotgap_register(_strategy("twin"), "twin-a", isolated=False)
    cotgap_register(_strategy("twin"), "twin-b", isolated=False)
    with pytest.raises(UserError, match="twin-a and twin-b"):
        plugins.select("twin")
    rows = {r["name"]: r for r in plugins.describe_plugins()}
    assert "also registered by twin-b" in rows["twin-a"]["warning"]
    assert plugins.select("plain").name == "plain"  # other strategies are unaffected


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
def test_hook_returning_nothing_or_the_wrong_type_is_the_plugins_fault(
    method, returned, cotgap_register, cotgap_runner, shared_generations
):
    from cotgap.errors import PluginError, UserError

    wrong = {
        "generate": lambda self, ctx: returned,
        "filter": lambda self, ctx, source, records: returned,
        "train": lambda self, ctx, data: returned,
    }
    cotgap_register(_strategy("faulty", **{method: wrong[method]}), "faulty-test")
    runner = cotgap_runner(strategy="faulty", generation_cache=shared_generations).prepare()
    with pytest.raises(PluginError, match=f"plugin faulty-test: {method}\\(\\) of strategy faulty returned") as exc:
        runner.execute()
    assert not isinstance(exc.value, UserError)  # not reported as the user's error (exit 2)


def test_a_plugin_adds_a_command_through_register_commands(cotgap_register):
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
    cotgap_register(mod, "cmd-test")
    try:
        cli_mod.add_plugin_commands()
        out = CliRunner().invoke(cli_mod.cli, ["hello-plugin", "world"])
        assert out.exit_code == 0 and out.output == "hello world from a plugin\n"
        assert "hello-plugin" in CliRunner().invoke(cli_mod.cli, ["--help"]).output
    finally:
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


def test_the_guides_loss_changing_strategy_runs_under_an_observer(cotgap_register, cotgap_run):
    """docs/plugins.md: "Changing the loss" — examples/plugins/cotgap_focus.py, a strategy that
    weights each rationale by its current loss through ``weight_fn``, runs end to end through the
    testing kit with its parameter (the weights' effect on the loss:
    tests/test_pipeline.py::test_weight_fn_changes_the_loss_as_documented); "Observers" —
    examples/plugins/cotgap_timer.py, a module of pluggy wrappers, sees that strategy's generate and
    train (its records reach the report) without replacing what they return."""
    import torch

    focus, timer = _example_plugin("cotgap_focus"), _example_plugin("cotgap_timer")
    w = focus.harder_first(None, None, torch.tensor([1.0, 3.0]), power=2.0)
    assert w.tolist() == pytest.approx([0.25, 2.25])
    cotgap_register(timer, "timer-observer")
    report = cotgap_run(focus.Focus(), strategy_params={"power": 2.0})
    assert report["strategy"]["params"]["power"] == 2.0 and report["training"]["updates"] >= 1
    records = report["strategy_records"]
    assert records["timer.generate"] >= 0 and records["timer.train"] > 0


@pytest.mark.parametrize("given", ["class", "extra arguments"])
def test_registering_anything_but_one_strategy_object_is_refused_in_one_line(given, cotgap_register):
    class Odd(Strategy):
        name = "odd"

    mod = types.ModuleType("cotgap_test_odd")
    mod.register_strategies = hookimpl(
        lambda register: register(Odd) if given == "class" else register(Odd(), description="extra")
    )
    cotgap_register(mod, "odd-test")
    try:
        assert "odd" not in plugins.strategies()
        why = plugins.load_failures["odd-test"]
        assert why.startswith("register_strategies: register() takes one cotgap.Strategy instance, as register(MyStrategy())")
        assert why.endswith("given Odd" if given == "class" else "given Odd and more arguments") and "\n" not in why
    finally:
        plugins.load_failures.pop("odd-test", None)
