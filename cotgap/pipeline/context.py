"""``RunContext``: what the core offers strategy hooks.

Hooks never load models or touch lm-eval directly; they ask the context, which applies the
protocol (train split only for teachers, one answer extraction, caching and resumption):

- ``ctx.generate_rationales(model, ...)`` — rationales for the train split, via lm-eval, cached
  by (model, task, split, prompt, sampling) and shared across runs;
- ``ctx.train_student(records, ...)`` — SFT of the student on prompt -> rationale;
- ``ctx.stage(name, inputs, compute)`` — a cached, resumable step of the strategy's own;
- ``ctx.require_smaller(small, big)`` — the size rule for extra models (e.g. a teacher assistant);
- ``ctx.record(key, value)`` — strategy facts for ``report.json``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cotgap.backends import engines, evaluation, generation, tracking
from cotgap.backends.ledger import LedgeredLM, RequestLedger
from cotgap.backends.train_job import TrainJob, encode
from cotgap.backends.training import TrainConfig, TrainResult, run_job
from cotgap.errors import ProtocolError, ServiceError, UserError
from cotgap.jsonio import key_of, write_json, write_jsonl
from cotgap.models.resolve import ModelRef, resolve
from cotgap.pipeline import gencache, trained_set
from cotgap.pipeline.bookkeeping import ComputeMeter, RunBook, RunPlace
from cotgap.protocol import rules
from cotgap.records import RECORD_FIELDS, missing_fields  # noqa: F401  (the runner reads them here)
from cotgap.rundir import RunDir


@functools.cache
def _source_digest(path: str | None) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12] if path else ""
    except OSError:
        return ""


def _code_digest(fn) -> str:
    """Digest of the code a task's filter runs: the function's module and cotgap's answer
    extraction. Part of the task fingerprint, so rationales kept (and baselines scored) under an
    older scoring rule are never reused after the rule changes."""
    from cotgap.tasks import extraction, math_answers

    try:
        own = inspect.getsourcefile(fn)
    except TypeError:
        own = None
    return "-".join(_source_digest(p) for p in (own, extraction.__file__, math_answers.__file__))


def _stable(v: Any) -> Any:
    if callable(v):
        name = f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', type(v).__name__)}"
        return f"{name}@{_code_digest(v)}"
    if isinstance(v, dict):
        return {str(k): _stable(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (list, tuple)):
        return [_stable(x) for x in v]
    return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)


def task_fingerprint(task) -> str:
    """Hash of the task's prompt/generation/filter config (not of run metadata)."""
    cfg = {k: v for k, v in task.dump_config().items() if k != "metadata"}
    return hashlib.sha256(repr(_stable(cfg)).encode()).hexdigest()[:16]


class RunContext:
    """The context a strategy's hooks get (``cotgap.context_api.StrategyContext`` and the services
    docs/api.md lists). The run's bookkeeping is the runner's :class:`RunBook`, written here only
    through the methods that apply the protocol; the run directory, the task settings and the
    generation cache are private, the config is offered as a copy."""

    def __init__(
        self,
        config,
        run: RunDir,
        student: ModelRef,
        teachers: list[ModelRef],
        params: dict,
        task_settings: evaluation.TaskSettings,
        cache_dir: Path,
        log,
        *,
        book: RunBook,
    ):
        self._config = config
        self._config_view = copy.deepcopy(config)  # what ``config`` hands out: edits never reach the core
        self._run = run
        self.student = student
        self._teachers = list(teachers)
        self.params = params
        self._task_settings = task_settings
        self._cache_dir = Path(cache_dir)
        self.log = log
        self._book = book
        self._train_task = None

    @property
    def teachers(self) -> list[ModelRef]:
        """The run's teachers (a new list each time: the core's own is not the plugin's to change)."""
        return list(self._teachers)

    @property
    def config(self):
        """A copy of the run's config, to read (seed, generation and training sections)."""
        return self._config_view

    @property
    def run(self) -> RunPlace:
        """Where the run directory is (``ctx.run.path``); its stages and records are the core's."""
        return RunPlace(self._run.path)

    @property
    def compute(self) -> ComputeMeter:
        """The compute ledger as a strategy may use it: ``add`` its training's counts, ``watch``."""
        return ComputeMeter(self._book.compute)

    # -- models --------------------------------------------------------------------------------
    def resolve_model(self, spec: str) -> ModelRef:
        return resolve(spec)

    def will_need(self, ref: ModelRef) -> None:
        """Tell the core (from ``check``) that the strategy will load ``ref`` later: a zoo model
        not converted yet is then materialised in the background after the teachers, while the
        baseline runs, instead of in the foreground when the strategy first needs it."""
        if ref.spec not in self._book.models_needed:  # zoo.prefetch ignores what is not a zoo model
            self._book.models_needed.append(ref.spec)

    def require_smaller(self, small: ModelRef, big: ModelRef) -> None:
        rules.check_student_smaller(small, [big])

    # -- strategy bookkeeping --------------------------------------------------------------------
    def record(self, key: str, value: Any) -> None:
        self._book.records[key] = value

    def stage(self, name: str, inputs: Any, compute) -> dict:
        return self._run.stage(f"strategy.{name}", inputs, compute, log=self.log)

    def workdir(self, name: str) -> Path:
        p = self._run.path / "strategy" / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def artifact_dir(self, name: str) -> Path:
        """A cross-run cache folder for a strategy's own artefacts (e.g. merged models),
        beside the zoo (``COTGAP_CACHE``): built once per input key, reused by later runs."""
        from cotgap.models import zoo

        p = zoo.cache_root() / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    @staticmethod
    def write_jsonl(path: Path, rows: list[dict]) -> None:
        """Write rows atomically (a kill never leaves a half-written file that looks finished)."""
        write_jsonl(path, rows)

    @staticmethod
    def write_json(path: Path, obj) -> None:
        write_json(path, obj)

    @staticmethod
    def release_models() -> None:
        """Free the generation engine now (before a memory-hungry step of the strategy's own)."""
        generation.close()

    # -- generation ------------------------------------------------------------------------------
    def train_task(self):
        if self._train_task is None:
            self._train_task = evaluation.load_task(self._task_settings, split="train")
        return self._train_task

    def generate_rationales(
        self,
        model: ModelRef | str,
        *,
        source: str | None = None,
        samples: int = 1,
        temperature: float = 0.0,
        description: str | None = None,
        max_new_tokens: int | None = None,
    ) -> list[dict]:
        """Rationales of ``model`` for every train example, each marked ``correct`` by the task's
        own answer extraction. ``samples`` > 1 draws that many sampled rationales per question
        (``temperature`` must then be > 0); ``description`` replaces the task's instruction (a
        "perspective" prompt). Cached by everything that determines the output; answered requests
        are kept in a ledger as they arrive, so a killed generation resumes where it stopped."""
        ref = resolve(model) if isinstance(model, str) else model
        rules.check_student_smaller(self.student, [ref])  # whoever writes training data is larger (scripted exempt)
        task = self.train_task()
        gen = self._config.generation
        max_new = max_new_tokens or gen.budget_for(ref.spec)
        backend = "api" if ref.kind == "api" else generation.pick_backend(gen.backend)
        engine_args = gen.engine_args(ref.spec) if backend == "vllm" else None
        key = key_of(
            {
                "model": ref.fingerprint,
                "task": self._task_settings.name,
                "split": "train",
                "task_config": task_fingerprint(task),
                "data": asdict(self._task_settings),
                "samples": samples,
                "temperature": temperature,
                "description": description,
                # sampled rationales depend on the run's seed (replicates must not share them); greedy ones do not
                **({"seed": self._config.seed} if temperature > 0 else {}),
                "max_new_tokens": max_new,
                "backend": backend,
                **({"engine": engines.output_key(engine_args)} if engine_args else {}),
                **({"hf_batch_size": gen.hf_batch_size} if backend == "hf" else {}),
            }
        )
        path = self._cache_dir / "generations" / f"{ref.slug}-{key}.jsonl"
        records = gencache.read(path, key, task=task, scoring=self._task_settings.scoring, samples=samples, log=self.log)
        if records is not None:
            self._book.generation_stats["reused"] += 1
            self.log(f"  generations of {ref.spec}: reused cache {path.name}")
            for r in records:  # the cache is shared across strategies: label with *this* caller's source
                r.update(source=source or ref.spec, model=ref.spec)
            self._count_generated(ref, records, sent=0)
            return records
        self._book.generation_stats["computed"] += 1
        ledger = RequestLedger(self._cache_dir / "requests" / f"{ref.slug}-{key}.jsonl")
        resumed = f", {len(ledger)} answered requests kept from an interrupted run" if len(ledger) else ""
        self.log(f"  generating rationales with {ref.spec} on {len(evaluation.docs(task))} train examples × {samples}{resumed}")
        inner = generation.open_lm(
            "" if ref.kind == "api" else ref.path(log=self.log),
            backend=gen.backend,
            seed=self._config.seed,
            engine_args=engine_args,
            api=ref.api,
            batch_size=gen.hf_batch_size,
            label=ref.spec,
        )
        if hasattr(inner, "chunk_size"):
            inner.chunk_size = gen.ledger_chunk
        lm = LedgeredLM(inner, ledger)
        records = self._generate_samples(lm, ref, source, samples, temperature, description, max_new)
        self.log(f"  {ref.spec}: {lm.sent} requests sent, {lm.reused} answered from the ledger")
        self._count_generated(ref, records, sent=lm.sent)
        gencache.write(path, key, records)
        ledger.remove()  # the finished generation file supersedes it
        return records

    def _count_generated(self, ref: ModelRef, records: list[dict], sent: int) -> None:
        """The compute ledger's generation counts: the rationales' tokens (the teacher's tokenizer
        where it has one, the student's for the scripted teacher and API models), whether generated
        now or taken from the cache (the data costs them either way), and requests sent to an API."""
        from cotgap.pipeline import compute

        own = ref.kind not in ("scripted", "api")
        try:
            tokenizer = compute.tokenizer_of(ref.path(log=self.log) if own else self.student.path(log=self.log))
        except (OSError, ValueError):
            return  # no tokenizer to count with: the ledger shows 0 rather than a guess
        n = sum(len(tokenizer(str(r.get("response", "")), add_special_tokens=False)["input_ids"]) for r in records)
        self._book.compute.add("generate", teacher_tokens_generated=n)
        if ref.kind == "api":
            self._book.compute.add("generate", api_requests=sent, api_tokens=n)

    def _generate_samples(self, lm, ref: ModelRef, source, samples, temperature, description, max_new) -> list[dict]:
        records: list[dict] = []
        for s in range(samples):
            t = evaluation.load_task(self._task_settings, split="train")
            kw = dict(t.config.generation_kwargs or {})
            if max_new:
                kw["max_gen_toks"] = max_new
            if temperature > 0:
                kw.update(do_sample=True, temperature=temperature, seed=self._config.seed + s)
            t.set_config(key="generation_kwargs", value=kw)
            if description is not None:
                t.set_config(key="description", value=description)
            try:
                _, recs = evaluation.run(lm, t, scoring=self._task_settings.scoring)
            except Exception as exc:
                if ref.kind != "api":
                    raise
                raise ServiceError(
                    f"API teacher {ref.spec} failed ({type(exc).__name__}: {str(exc)[:160]}); "
                    f"{len(lm.ledger)} answered requests are kept — re-run to send only the rest"
                ) from None
            for r in recs:
                r.update(sample=s, source=source or ref.spec, model=ref.spec)
            records.extend(recs)
        return records

    # -- training ----------------------------------------------------------------------------------
    def training_config(self, **overrides) -> TrainConfig:
        cfg = TrainConfig(**{**asdict(self._config.training), **overrides})
        return cfg

    def training_examples(self, records: list[dict], tokenizer, *, train_shots: int | None = None) -> list[dict]:
        """prompt -> rationale pairs in the student's own chat format (lm-eval builds the prompt).

        ``messages`` holds the example as chat turns — what the trainer tokenises
        (:mod:`cotgap.backends.sft_tokens`): for a student with a chat template, the turns lm-eval
        handed the template (system = the task's instruction, the ``train_shots`` exemplars as
        user/assistant turns, the question) and the teacher's turn (:mod:`assistant_turn`: the
        rationale, and a reasoning model's reasoning unless ``generation.reasoning: drop``); for
        one without, one user turn holding the plain prompt. ``prompt`` / ``completion`` are the
        same as two texts. (The turns are caught as the template renders them: a second
        ``fewshot_context`` call could draw other exemplars from a random sampler.) ``train_shots``
        overrides the run's (e.g. a model other than the student trained on its generation prompt)."""
        from cotgap.pipeline import assistant_turn

        task = self.train_task()
        docs = evaluation.docs(task)
        chat = bool(getattr(tokenizer, "chat_template", None))
        thinking = assistant_turn.has_thinking_block(tokenizer)
        turns: list[list[dict]] = []

        def template(history, add_generation_prompt=True):
            turns.append([dict(m) for m in history])
            return tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=add_generation_prompt)

        out = []
        for r in records:
            prompt = task.fewshot_context(
                docs[r["doc_id"]],
                num_fewshot=self._config.train_shots if train_shots is None else train_shots,
                apply_chat_template=chat,
                fewshot_as_multiturn=chat,
                chat_template=template if chat else None,
            )
            reply = assistant_turn.assistant_message(r, self._config.generation.reasoning, thinking)
            history = turns.pop() if chat else [{"role": "user", "content": prompt}]
            ex = {
                "prompt": prompt,
                "completion": assistant_turn.trained_text(reply),
                "doc_id": r["doc_id"],
                "source": r.get("source"),
                "messages": [*history, reply],
            }
            if "weight" in r:
                ex["weight"] = r["weight"]
            out.append(ex)
        return out

    def train_student(
        self,
        records: list[dict],
        *,
        trainer_cls=None,
        callbacks=(),
        trainer_kwargs=None,
        base: ModelRef | None = None,
        **cfg_overrides,
    ) -> TrainResult:
        """Fine-tune the student on kept records; returns where the merged model is. Only a model
        made here can be evaluated as the distilled student (the core checks)."""
        if base is not None and base.fingerprint != self.student.fingerprint:
            raise ProtocolError(
                f"train_student fine-tunes the student only, not {base.spec}; "
                "train other models with ctx.train_model (they can never be evaluated as the student)"
            )
        per_source: dict[str, int] = {}
        for r in records:  # the student's training set, per source (report.json -> training)
            per_source[str(r.get("source"))] = per_source.get(str(r.get("source")), 0) + 1
        stop = self._budget_stop(self.training_config(**cfg_overrides))
        with tracking.training_environment(self.training_config(**cfg_overrides).report_to, self._run.path):
            result = self._fine_tune(
                self.student,
                records,
                self._run.path / "student",
                trainer_cls=trainer_cls,
                callbacks=[*callbacks, *stop],
                trainer_kwargs=trainer_kwargs,
                keep_examples=True,
                **cfg_overrides,
            )
        self.record("training.examples_per_source", per_source)
        self._book.accept_student(result.path)
        return result

    def train_student_with(self, run_training, records: list[dict], **cfg_overrides) -> TrainResult:
        """Fine-tune the student with the strategy's own training loop — a library trainer that does
        not take prompt -> completion rows (e.g. TRL's distillation trainers, which sample from the
        student and score with a teacher). The core supplies what ``train_student`` would: the
        examples in the student's chat format, the ``training`` config and the output folder;
        ``run_training(base_path, examples, out_dir, cfg, tokenizer)`` trains, writes the merged
        model to ``out_dir/model`` and returns its ``TrainResult``. That model is then the student's
        (the only one evaluated), and the examples are stored beside it as for ``train_student``."""
        from transformers import AutoTokenizer

        if not records:
            raise UserError(
                "no correct rationales survived the filter: nothing to train the student on "
                "(try a stronger teacher, more examples, or a larger --limit)"
            )
        path = self.student.path(log=self.log)
        generation.close()
        tokenizer = AutoTokenizer.from_pretrained(path)
        examples = self.training_examples(records, tokenizer)
        cfg = self.training_config(**cfg_overrides)
        out_dir = self._run.path / "student"
        stop = self._budget_stop(cfg)
        extra = {}
        if stop:  # a grid's cost budget: the strategy's trainer must take the stop
            if "callbacks" not in inspect.signature(run_training).parameters:
                raise UserError(
                    f"strategy {self._config.strategy}: its training function takes no callbacks, so it "
                    "cannot be held to training.stop_teacher_tokens / stop_seconds (a grid budget)"
                )
            extra["callbacks"] = stop
        with tracking.training_environment(cfg.report_to, self._run.path):
            result = run_training(path, examples, out_dir, cfg, tokenizer, **extra)
        # the strategy's trainer tokenised in its own way: the stored set's cutoff facts are cotgap's
        trained_set.write(out_dir, records, examples, encode(tokenizer, examples, cfg).cuts, tokenizer)
        per_source: dict[str, int] = {}
        for r in records:
            per_source[str(r.get("source"))] = per_source.get(str(r.get("source")), 0) + 1
        self.record("training.examples_per_source", per_source)
        self._book.accept_student(result.path)
        return result

    def _budget_stop(self, cfg) -> list:
        """The student's budget stop (a grid's cost budget: ``training.stop_teacher_tokens`` /
        ``stop_seconds``), metering the train stage's teacher tokens in the compute ledger, live
        (a library trainer's counts are watched: ``ctx.compute.watch``); [] when there is none."""
        from cotgap.pipeline import budgets

        ledger = self._book.compute
        cb = budgets.stop_callback(
            cfg, lambda: budgets.teacher_tokens(ledger.running("train")), lambda rec: self.record("training.budget", rec)
        )
        return [cb] if cb is not None else []

    def train_model(
        self,
        base: ModelRef,
        records: list[dict],
        out_dir: Path,
        *,
        trainer_cls=None,
        callbacks=(),
        trainer_kwargs=None,
        train_shots: int | None = None,
        **cfg_overrides,
    ) -> TrainResult:
        """Fine-tune a model other than the student (e.g. a long-CoT parent to merge) into ``out_dir``.
        Its result is never accepted as the distilled student. ``training.max_steps`` is the
        student's update budget (equal-updates comparisons): other models train at their epochs
        unless ``max_steps`` is passed here; ``train_shots`` (None: the run's) sets its prompts' exemplars."""
        cfg_overrides.setdefault("max_steps", -1)
        cfg_overrides.setdefault("report_to", "none")  # trackers follow the student's training
        return self._fine_tune(
            base,
            records,
            Path(out_dir),
            trainer_cls=trainer_cls,
            callbacks=callbacks,
            trainer_kwargs=trainer_kwargs,
            train_shots=train_shots,
            **cfg_overrides,
        )

    def _fine_tune(
        self,
        base: ModelRef,
        records: list[dict],
        out_dir: Path,
        *,
        trainer_cls,
        callbacks,
        trainer_kwargs,
        keep_examples: bool = False,
        train_shots: int | None = None,
        **cfg_overrides,
    ) -> TrainResult:
        """Fine-tune ``base`` on ``records`` into ``out_dir``; with ``keep_examples`` (the student) the
        examples handed to the trainer are stored beside the model (``trained_set``), inside the
        train stage's output folder, so ``cotgap export --what training`` gives exactly them."""
        from transformers import AutoTokenizer

        if not records:
            raise UserError(
                "no correct rationales survived the filter: nothing to train the student on "
                "(try a stronger teacher, more examples, or a larger --limit)"
            )
        path = base.path(log=self.log)
        generation.close()  # free the generation engine before training
        tokenizer = AutoTokenizer.from_pretrained(path)
        examples = self.training_examples(records, tokenizer, train_shots=train_shots)
        cfg = self.training_config(**cfg_overrides)
        self.log(
            f"  training {base.spec} ({cfg.method}) on {len(examples)} rationales, "
            f"{cfg.updates(len(examples))} optimizer updates (global batch {cfg.global_batch()}, "
            f"{cfg.loss_average}-level loss)"
        )
        from cotgap.backends import train_progress

        bars, library_bar = train_progress.for_policy()  # the output policy's progress (cotgap.output)
        job = TrainJob.build(  # the examples tokenised here, once
            path,
            examples,
            out_dir,
            cfg,
            tokenizer=tokenizer,
            trainer_cls=trainer_cls,
            callbacks=[*callbacks, *bars],
            trainer_kwargs=trainer_kwargs,
        )
        result = run_job(job, progress=library_bar, log=self.log)
        if keep_examples:  # after the training, which replaces out_dir whole
            trained_set.write(job.out_dir, records, job.examples, job.tokens.cuts, tokenizer)
        return result


class FilterView:
    """What a ``filter`` hook sees: the run's strategy parameters and the one source it filters —
    not the other sources, the run directory or the generation cache (no cross-teacher filtering;
    the named ablation is done by the core)."""

    __slots__ = ("params", "source", "log")

    def __init__(self, params: dict, source: str, log):
        self.params = params  # the strategy's validated parameters (read-only)
        self.source = source
        self.log = log
