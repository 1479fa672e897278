"""Engine sessions and predicted engine starts, for a sweep's plan (:mod:`cotgap.pipeline.plan`).

Starting an engine (loading a model's weights, allocating its KV cache, and on GPUs compiling
its kernels) can take longer than the work it is started for: one BBH task's rationales take a
72B teacher well under a minute, its start at tensor parallel 4 minutes. So a sweep runs a
model's jobs in one *engine session*: every generation job (any task, any sampling setting) and
every baseline of one model, with the same backend and engine settings, run one after the other on
one engine (:mod:`cotgap.pipeline.sweep_jobs`, under either executor). The generation cache is
still filled per job, so reuse and resume do not change.

The plan predicts the engine starts two ways:

- ``sessions``: one start per session of a model with an engine (the scripted teacher and API
  models have none), one per generation job the plan cannot predict exactly (``exact: false``:
  its cells generate it themselves), one per *adapter session* (the LoRA students of one base
  model, evaluated as adapters on one engine of that base: :mod:`cotgap.pipeline.sweep_adapters`;
  a cell's ``distilled_session``) and one per other distilled evaluation (a cell that is not
  skipped and not LoRA-trained on vLLM evaluates its own merged model);
- ``per_job``: what the same work costs when every job starts its own engine (cotgap before
  engine sessions): one start per job of a model with an engine, plus the distilled evaluations.

Starts a strategy makes inside its own cells (a merged teacher assistant, a cross-teacher-filter
peer the plan does not see) come on top of both. The adapter sessions are predicted from the
configuration (``training.method: lora``, backend ``auto`` or ``vllm``, no data parallelism): a
student whose strategy does not leave the adapter its merged model was made from, a vLLM without
LoRA, a ``backend: auto`` run where vLLM is absent, or the Ray executor (which evaluates each cell in
a task of its own) evaluate those students merged, one start each.
"""

from __future__ import annotations

from cotgap.models.resolve import resolve

#: Model kinds that are answered without an engine of cotgap's.
NO_ENGINE = ("scripted", "api")


def _model(job: dict) -> str:
    return job.get("teacher") or job["student"]


def has_engine(spec: str) -> bool:
    """Whether answering with ``spec`` starts an engine (a local model) or not (scripted, API)."""
    return resolve(spec).kind not in NO_ENGINE


def sessions(generation_jobs: list[dict], baselines: list[dict]) -> list[dict]:
    """The engine sessions of the plan's jobs, in first-seen order (generations, then baselines):
    id, model, whether it starts an engine, and its jobs' ids (those run as jobs: exact ones)."""
    by_id: dict[str, dict] = {}
    for job in [*generation_jobs, *baselines]:
        if not job.get("exact", True):
            continue
        s = by_id.setdefault(
            job["session"], {"id": job["session"], "model": _model(job), "engine": has_engine(_model(job)), "jobs": []}
        )
        s["jobs"].append(job["id"])
    return list(by_id.values())


def adapter_session(method: str, backend: str, engine_args: dict, session: str) -> str | None:
    """The adapter session of a cell whose student trains with ``method`` and is evaluated with
    ``backend`` and the grid's ``engine_args`` for it (``session``: the student's engine session),
    or None when its distilled evaluation starts an engine of its own."""
    if method != "lora" or backend not in ("auto", "vllm") or int(engine_args.get("data_parallel_size") or 1) > 1:
        return None
    return f"adapters-{session}"


def predict(cells: list[dict], generation_jobs: list[dict], baselines: list[dict]) -> dict:
    """The plan's ``engines`` section: the sessions, and the engine starts with sessions and per
    job, in total and per model; ``distilled``: the distilled evaluations, ``adapter_sessions``
    (id, student, cells) and ``merged_distilled`` (those on an engine of their own)."""
    models: dict[str, dict] = {}

    def add(model: str, way: str, n: int = 1) -> None:
        models.setdefault(model, {"sessions": 0, "per_job": 0})[way] += n

    found = sessions(generation_jobs, baselines)
    for s in found:
        if s["engine"]:
            add(s["model"], "sessions")
    for job in [*generation_jobs, *baselines]:
        if has_engine(_model(job)):
            add(_model(job), "per_job")
            if not job.get("exact", True):
                add(_model(job), "sessions")  # generated inside its first cell, on an engine of its own
    evaluated = [c for c in cells if c["status"] != "skipped"]
    adapters: dict[str, dict] = {}
    for c in evaluated:
        if c.get("distilled_session"):
            a = adapters.setdefault(c["distilled_session"], {"id": c["distilled_session"], "model": c["student"], "cells": []})
            a["cells"].append(c["name"])
    merged = sum(not c.get("distilled_session") for c in evaluated)
    total = {
        "sessions": sum(m["sessions"] for m in models.values()) + len(adapters) + merged,
        "per_job": sum(m["per_job"] for m in models.values()) + len(evaluated),
    }
    return {
        "starts": total,
        "distilled": len(evaluated),
        "merged_distilled": merged,
        "adapter_sessions": list(adapters.values()),
        "models": models,
        "sessions": found,
    }
