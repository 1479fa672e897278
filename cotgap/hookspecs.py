"""Hook specifications: what a cotgap strategy plugin may implement.

A strategy is three stages — ``generate``, ``filter``, ``train`` — around which the core runs
the practical protocol (baseline, per-teacher filtering, size rule, evaluation, report).
The core calls these hooks only on the selected strategy's object (``cotgap.Strategy``, whose
methods take no ``strategy`` argument); the ``strategy`` name in each spec is for observers
(pluggy wrappers), which see every strategy's calls.
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("cotgap")
hookimpl = HookimplMarker("cotgap")


@hookspec
def register_strategies(register):
    """Register strategy objects: ``register(MyStrategy())``, a ``cotgap.Strategy`` instance.

    Each object becomes a plugin of its own whose methods are the hooks below; its ``Params``,
    ``description`` and ``default_teachers`` are what the host knows of it. Registering a name
    (``register("name", defaults=...)``, the removed module-function style) fails the plugin with a
    one-line reason; other plugins load as usual.
    """


@hookspec
def register_commands(cli):
    """Add commands to ``cotgap`` (a ``click.Group``), as simonw/llm's hook of the same name::

    @hookimpl
    def register_commands(cli):
        @cli.command()
        def hello():
            "Say hello."
            click.echo("hello from my plugin")
    """


@hookspec
def check(strategy, ctx):
    """Optional: validate the run before any work starts (teachers, parameters, models).

    Raise ``cotgap.errors.UserError`` with a one-line reason to refuse the run. Called once,
    after the core's own checks (student < teachers, task, split) and before the baseline.
    A strategy that will load other models later (e.g. the parents of a merged model) may announce them
    here with ``ctx.will_need(ref)``: zoo models are then converted in the background while
    the baseline runs.
    """


@hookspec(firstresult=True)
def generate(strategy, ctx):
    """Produce rationales for the task's *train* split.

    Return ``{source_name: [record, ...]}`` where each source is one teacher (or one
    teacher-derived model, e.g. a teacher assistant). Records come from
    ``ctx.generate_rationales(...)``, which runs the task through lm-eval on the train split and
    marks each record ``correct`` with the task's own answer extraction.
    """


@hookspec(firstresult=True)
def filter(strategy, ctx, source, records):
    """Select the records of ONE source to train on. Return a subset of ``records``.

    The core calls this once per source and passes nothing of other sources (no cross-teacher
    filtering); it rejects a result that is not a subset of what it was given.
    """


@hookspec(firstresult=True)
def train(strategy, ctx, data):
    """Fine-tune the student on ``data`` (``{source_name: [kept record, ...]}``).

    Return the ``TrainResult`` of ``ctx.train_student(...)`` (or an equivalent one).
    """
