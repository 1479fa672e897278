"""cotgap's testing kit as a pytest plugin (entry point ``pytest11``: active wherever cotgap is
installed, as pytest's own ``pytester`` is for pytest), for plugin authors' test suites and
cotgap's own. Fixtures:

- ``cotgap_tiny_model``: a tiny random-init Llama with a trained BPE tokenizer and a ChatML chat
  template (``cotgap.testing.build_model``), built once per session — it generates and trains in
  milliseconds;
- ``cotgap_register``: ``cotgap_register(strategy, name=None, isolated=True)`` registers a
  strategy object for the test, isolated from an installed copy of the same strategy (it is taken
  out meanwhile; ``isolated=False`` keeps it, to test two plugins registering one name), and
  unregisters it after; ``cotgap_register(module, name)`` registers any other plugin (observers);
- ``cotgap_run``: ``cotgap_run(strategy, **kw)`` runs it end to end through the real core on the
  tiny model (``cotgap.testing.run_strategy``) and returns ``report.json``;
- ``cotgap_runner``: ``cotgap_runner(**overrides)`` — the core's ``Runner`` for a tiny run of the
  tiny model (``cotgap.testing.build_runner``: scripted teacher, 4 questions, one epoch, its own
  folder and generation cache under the test's ``tmp_path``), not yet prepared; for tests of the
  core (a check that refuses, the prepared context, a stage by hand) rather than of one strategy;
- ``cotgap_fake_context``: ``cotgap_fake_context(strategy=None, **kw)`` — a
  ``cotgap.testing.FakeContext`` (every member of the context protocol; parameters validated as
  the core does when ``strategy`` is given).

Assertion helpers: :func:`assert_kept` and :func:`assert_trained`.
"""

from __future__ import annotations

import contextlib

import pytest


@pytest.fixture(scope="session")
def cotgap_tiny_model(tmp_path_factory):
    from cotgap.testing import build_model

    return build_model(tmp_path_factory.mktemp("cotgap-tiny-model"), hidden=64, layers=2, seed=0)


@pytest.fixture()
def cotgap_register():
    from cotgap.testing import registered

    with contextlib.ExitStack() as stack:
        yield lambda plugin, name=None, *, isolated=True: stack.enter_context(registered(plugin, name, isolated=isolated))


@pytest.fixture()
def cotgap_run(tmp_path, cotgap_tiny_model):
    from cotgap.testing import run_strategy

    counter = iter(range(1_000_000))

    def run(strategy, **kwargs):
        kwargs.setdefault("student", cotgap_tiny_model)
        return run_strategy(strategy, tmp_path / f"run{next(counter)}", **kwargs)

    return run


@pytest.fixture()
def cotgap_runner(tmp_path, cotgap_tiny_model):
    from cotgap.testing import build_runner

    counter = iter(range(1_000_000))

    def runner(**overrides):
        overrides.setdefault("student", cotgap_tiny_model)
        return build_runner(tmp_path / f"runner{next(counter)}", **overrides)

    return runner


@pytest.fixture()
def cotgap_fake_context(tmp_path):
    from cotgap.testing import FakeContext

    return lambda strategy=None, **kwargs: FakeContext(strategy=strategy, root=tmp_path, **kwargs)


def assert_kept(report: dict, source: str, n: int) -> None:
    """The run kept ``n`` rationales of ``source`` (its filter's result)."""
    kept = {s["source"]: s["kept"] for s in report["sources"]}
    assert kept.get(source) == n, f"kept per source: {kept}"


def assert_trained(report: dict, *, examples: int | None = None, min_updates: int = 1) -> None:
    """The student was trained (on ``examples`` examples, if given) with at least ``min_updates`` updates."""
    training = report["training"]
    assert training["updates"] >= min_updates, training
    if examples is not None:
        assert training["examples"] == examples, training
