"""The context protocol (``cotgap.context_api``) is what both the core's ``RunContext`` and the
testing kit's ``FakeContext`` offer, member for member; the testing kit is a pytest plugin whose
fixtures run a strategy in isolation."""

import inspect
from dataclasses import dataclass, field

import pytest

from cotgap import Strategy, UserError
from cotgap.context_api import MEMBERS, StrategyContext
from cotgap.pipeline.context import RunContext
from cotgap.pytest_plugin import assert_kept, assert_trained
from cotgap.testing import FakeContext


class KeepTwo(Strategy):
    name = "keep-two"

    @dataclass
    class Params:
        k: int = field(default=2, metadata={"min": 1})

    def filter(self, ctx, source, records):
        return [r for r in records if r["correct"]][: ctx.params["k"]]


def test_the_protocol_lists_every_member_and_both_contexts_have_them():
    declared = {n for n, _ in inspect.getmembers(StrategyContext) if not n.startswith("_")}
    declared |= set(StrategyContext.__annotations__)
    assert declared == set(MEMBERS)
    fake = FakeContext()
    for name in MEMBERS:
        assert hasattr(fake, name), f"FakeContext lacks {name}"
        assert name in dir(RunContext) or name in inspect.signature(RunContext.__init__).parameters, f"RunContext lacks {name}"
    assert isinstance(fake, StrategyContext)


def test_fake_context_validates_parameters_as_the_core_does(cotgap_fake_context):
    ctx = cotgap_fake_context(KeepTwo())
    assert ctx.params == {"k": 2}  # its Params' defaults applied
    assert len(KeepTwo().filter(ctx, "t", ctx.generate_rationales("t"))) == 2
    with pytest.raises(UserError, match="strategy_params.k of strategy keep-two must be >= 1"):
        cotgap_fake_context(KeepTwo(), params={"k": 0})
    with pytest.raises(UserError, match="unknown parameter"):
        cotgap_fake_context(KeepTwo(), params={"kk": 1})


def test_the_kit_runs_a_strategy_isolated_from_an_installed_copy(cotgap_register, cotgap_run):
    """``cotgap_register`` hides another plugin providing the same name (here: a copy registered as
    if pip-installed); ``cotgap_run`` runs the strategy through the real core on the tiny model."""
    from cotgap import plugins

    installed = cotgap_register(KeepTwo(), "installed-keep-two", isolated=False)  # as if pip-installed
    report = cotgap_run(KeepTwo(), strategy_params={"k": 1})  # would be "registered by more than one plugin"
    assert_kept(report, "scripted", 1)
    assert_trained(report, examples=1)
    assert plugins.pm.get_plugin("installed-keep-two") is installed  # put back after


def test_the_kits_runner_merges_overrides_into_its_defaults(cotgap_runner, cotgap_tiny_model):
    """``cotgap_runner``: the kit's defaults (``RUN_DEFAULTS``) with a mapping override merged key by
    key, on the tiny model, each call in a folder of its own; the defaults themselves unchanged."""
    from pathlib import Path

    from cotgap.testing import RUN_DEFAULTS

    first = cotgap_runner(training={"learning_rate": 0.01}, limit=2)
    cfg = first.cfg
    assert (cfg.training.epochs, cfg.training.learning_rate, cfg.limit, cfg.generation.backend) == (1, 0.01, 2, "hf")
    assert (cfg.strategy, cfg.teachers, cfg.student) == ("plain", ["scripted"], str(cotgap_tiny_model))
    assert RUN_DEFAULTS["training"] == {"epochs": 1} and RUN_DEFAULTS["limit"] == 4
    second = cotgap_runner()
    assert Path(second.cfg.out).parent != Path(cfg.out).parent and second.cfg.limit == 4
