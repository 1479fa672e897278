"""An observer plugin: times every strategy's generate, filter and train and records it in the
run's report (``report.json`` -> ``strategy_records`` -> ``timer``), whichever strategy runs.

A pluggy *wrapper* (``@hookimpl(wrapper=True)``) sees the call and its result without replacing
it; cotgap calls observers around the selected strategy's own hooks. Install it as an entry point
(``[project.entry-points.cotgap] timer = "cotgap_timer"``) or register the module in a test.
"""

import time

from cotgap import hookimpl


def _timed(stage, ctx):
    start = time.perf_counter()
    result = yield
    ctx.record(f"timer.{stage}", round(time.perf_counter() - start, 3))
    return result


@hookimpl(wrapper=True)
def generate(strategy, ctx):
    return (yield from _timed("generate", ctx))


@hookimpl(wrapper=True)
def train(strategy, ctx, data):
    return (yield from _timed("train", ctx))
