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
    return subprocess.run([sys.executable, "-m", "cotgap", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


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
    for pkg in ("cotgap_echo_plugin", "cotgap_broken_plugin"):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(FIXTURES / pkg)], check=True, capture_output=True)
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
    assert {r["name"] for r in none} <= {"plain", "mix", "micota", "mind"}  # built-ins only
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
