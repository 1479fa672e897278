"""Everything a run can be refused for, checked in ``Runner.prepare`` before the baseline (so a
refusal never leaves a half-made run folder that needs ``--force``):

- every model folder the run will load (student, teachers, models the strategy named in
  ``check``) loads without code of its own (``cotgap.models.folder_check``);
- a model the selected engine cannot run (``cotgap.backends.engine_fit``): with ``backend: auto``
  the run moves to the transformers backend, saying so in one line; with ``backend: vllm`` it is
  refused;
- the scripted teacher is asked only for a task it can solve (the synthetic ones);
- an ablation applies: ``cross-teacher-filter`` needs two teachers to intersect.

(``synthetic_n`` has a documented ceiling in the config schema, ``SYNTHETIC_N_MAX``.)
"""

from __future__ import annotations

from cotgap.errors import UserError


def check(runner) -> None:
    """Refuse, or adapt with one logged line, before any stage of ``runner`` runs."""
    models = _models(runner)
    for role, ref in models:
        if ref.kind == "local":
            from cotgap.models.folder_check import check_folder

            check_folder(ref.spec, role)
    _check_scripted(runner, models)
    _check_ablation(runner)
    _check_engine(runner, models)


def _models(runner) -> list[tuple[str, object]]:
    """(role, ModelRef) of every model the run will load or ask."""
    from cotgap.models.resolve import resolve

    needed = [("model", resolve(spec)) for spec in runner.book.models_needed]
    return [("student", runner.student), *[("teacher", t) for t in runner.teachers], *needed]


def _check_scripted(runner, models) -> None:
    from cotgap.tasks import synthetic

    task = runner.test_task.config.task
    if any(ref.kind == "scripted" for _, ref in models):
        try:
            synthetic.get(task)
        except KeyError:
            raise UserError(
                f"the scripted teacher only knows the synthetic tasks (see `cotgap tasks`), "
                f"not {task!r}; name a model teacher for it"
            ) from None


def _check_ablation(runner) -> None:
    from cotgap.protocol.constants import CROSS_TEACHER_FILTER

    if runner.cfg.ablation != CROSS_TEACHER_FILTER:
        return
    teachers = {t.spec for t in runner.teachers} | set(runner.ablation_peers)
    if len(teachers) < 2:
        raise UserError(
            f"ablation {runner.cfg.ablation} intersects what several teachers solved; this run has one "
            f"teacher ({next(iter(teachers))}), so it would change nothing yet be labelled with it "
            "(add a teacher, or drop the ablation)"
        )


def _check_engine(runner, models) -> None:
    """A local model vLLM cannot run: auto -> the transformers backend for the whole run (one
    line); vllm named explicitly -> refused."""
    from cotgap.backends import engine_fit, generation

    gen = runner.cfg.generation
    if generation.pick_backend(gen.backend) != "vllm":
        return
    for role, ref in models:
        why = engine_fit.vllm_problem(ref.spec) if ref.kind == "local" else None
        if why is None:
            continue
        if gen.backend == "vllm":
            raise UserError(f"{role} {ref.spec}: {why}; use --backend hf (transformers) for this model")
        gen.backend = "hf"
        runner.log(f"[yellow]generation backend: transformers for this run — {role} {ref.spec}: {why}[/yellow]")
        return
