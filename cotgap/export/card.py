"""The dataset card of an export (Markdown): what the data is, from which run, under which protocol.

It states the task, the teachers and the student with their parameter counts, the strategy, the
protocol facts the core enforced for the run (per-teacher filtering, no cross-teacher filtering
unless the labelled ablation, the 3:2 split and its seed, the student smaller than every teacher,
the scoring whose answer extraction decided ``correct``), the config hash, the columns and how the
chat turns were built, and — for BIG-Bench-Hard — the benchmark's canary and that the data must
not be used to train models that are released publicly.
"""

from __future__ import annotations

import json
from collections import Counter

from cotgap.export import benchmark, turns
from cotgap.export.run_source import RunInfo
from cotgap.protocol.constants import CROSS_TEACHER_FILTER, TRAIN_FRACTION

TITLES = {
    "generations": "every rationale the teachers generated",
    "kept": "the rationales the per-teacher filter kept",
    "training": "exactly the examples the student was trained on",
}


def render(run: RunInfo, what: str, fmt: str, rows: list[dict], bench: benchmark.Benchmark) -> str:
    """The card's Markdown text."""
    c = run.config
    parts = [
        f"# cotgap export: {what} — {TITLES[what]}\n",
        f"Task **{c['task']}**, student **{c['student']}**, teacher(s) **{', '.join(map(str, c['teachers']))}**, "
        f"strategy **{run.manifest['strategy']['name']}**; {len(rows)} records. "
        f"Run `{run.path.name}`, config hash `{run.key}` (`run.json`; every record's `config_hash`).\n",
        _bbh(bench),
        _models(run),
        _protocol(run),
        _contents(run, what, fmt, rows),
        _provenance(run),
    ]
    return "\n".join(p for p in parts if p)


def _bbh(bench: benchmark.Benchmark) -> str:
    if not bench.is_bbh:
        return ""
    canary = (
        f"The task's data file ({bench.data_file}) carries the BIG-bench canary, repeated here and in every "
        f"record's `canary` column:\n\n    {bench.canary}\n"
        if bench.canary
        else "The task's data carries the BIG-bench canary GUID (see the BIG-Bench-Hard data files); its data file "
        "was not on this machine at export, so the string is not repeated here.\n"
    )
    return (
        "## BIG-Bench-Hard: benchmark data, not for training public models\n\n"
        "These records are built from BIG-Bench-Hard (questions, targets and few-shot exemplars). "
        + canary
        + "\nThey must not be used to train models that are released publicly, nor be published "
        "where web crawls collect training data without the canary.\n"
    )


def _size(run: RunInfo, spec: str) -> str:
    api = (run.manifest.get("api_teachers") or {}).get(spec) or {}
    if api.get("parameters_b"):
        return f"{api['parameters_b']}B parameters (declared)"
    n = (run.manifest.get("parameters") or {}).get(spec)
    if n:
        return f"{int(n):,} parameters"
    return (
        "not a model (scripted reference teacher: the size rule does not apply)"
        if str(spec).startswith("scripted")
        else "size not recorded"
    )


def _models(run: RunInfo) -> str:
    c = run.config
    lines = ["## Models\n", f"- student: `{c['student']}` — {_size(run, c['student'])}"]
    lines += [f"- teacher: `{t}` — {_size(run, t)}" for t in c["teachers"]]
    return "\n".join(lines) + "\n"


def _protocol(run: RunInfo) -> str:
    c, m = run.config, run.manifest
    split = (m.get("seeds") or {}).get("split")
    data = m.get("data") or {}
    ablation = c.get("ablation")
    filtering = (
        "each teacher's rationales were filtered on that teacher's records alone (the strategy's `filter` "
        "hook is called once per teacher); no cross-teacher filtering"
    )
    if ablation == CROSS_TEACHER_FILTER:
        filtering = (
            f"**ABLATION `{CROSS_TEACHER_FILTER}`**: a rationale was kept only for questions every compared "
            "teacher solved — the one labelled exception to per-teacher filtering"
        )
    elif ablation:
        filtering += f" (ablation `{ablation}`)"
    train_pct = round(100 * TRAIN_FRACTION)
    return "\n".join(
        [
            "## Protocol (enforced by cotgap's core for this run)\n",
            f"- filtering: {filtering};",
            f"- `correct` is the task's `{c.get('scoring')}` scoring — the evaluation's own answer extraction (the "
            "teacher's generation is an lm-eval run on the train split);",
            f"- split: train:test {train_pct}:{100 - train_pct} (3:2) with seed {split} for single-split tasks; teachers saw "
            f"the train split only (train n={(data.get('train') or {}).get('n')}, test n={(data.get('test') or {}).get('n')}; "
            "a train prompt also in test is refused);",
            "- the student is strictly smaller than every teacher (parameter counts above, checked before the run started);",
            f"- seeds: run {c.get('seed')}, training {(c.get('training') or {}).get('seed')}; "
            f"train_shots {c.get('train_shots')}.",
            "",
        ]
    )


def _contents(run: RunInfo, what: str, fmt: str, rows: list[dict]) -> str:
    per_source = Counter(str(r["source"]) for r in rows)
    correct = sum(bool(r.get("correct")) for r in rows)
    where = (
        "a Hugging Face `datasets` folder (`datasets.load_from_disk`)"
        if fmt == "hf"
        else 'JSON Lines, one record a line (`datasets.load_dataset("json", data_files=...)`)'
    )
    columns = ", ".join(f"`{k}`" for k in (rows[0] if rows else {}))
    lines = [
        "## Contents\n",
        f"Format: {where}. Records: {len(rows)} ({correct} marked correct); per source: "
        + ", ".join(f"`{s}` {n}" for s, n in per_source.items())
        + f". Columns: {columns}.\n",
        "`messages` is the record as chat turns (`role` system/user/assistant, `content`), the assistant's "
        "rationale last: the turns lm-eval built for the prompt (system = the task's instruction, the few-shot "
        "exemplars as user/assistant turns, then the question); for a model without a chat template, one user "
        "turn holding the plain prompt as it was given.\n",
    ]
    lines.append(_training_notes(run, rows) if what == "training" else _generated_notes(rows))
    return "\n".join(lines)


def _training_notes(run: RunInfo, rows: list[dict]) -> str:
    train = (run.stages.get("train") or {}).get("result") or {}
    cut = sum(1 for r in rows if r.get("prompt_tokens_cut") or r.get("response_tokens_cut"))
    eos = _student_eos(run)
    semantics = (train.get("extra") or {}).get("semantics") or {}
    weighted = any(r.get("weight") is not None for r in rows)
    return "\n".join(
        [
            "These are the examples handed to the trainer (stored by the train stage, `student/examples.jsonl`), in "
            f"order (optimizer updates: {train.get('updates')}; examples the trainer kept: {train.get('examples')}). "
            "The loss covered the assistant turns only. `messages` were tokenised turn by turn with the student's chat "
            "template, as LLaMA-Factory's supervised processor does: each assistant turn through the template's own end "
            f"of turn (a student without a template: the completion and its EOS {json.dumps(eos) if eos else '(none)'}); "
            "the exemplars' answers were "
            + (
                "not trained (`mask_history: true`)"
                if semantics.get("mask_history")
                else "trained too (`mask_history: false`, LLaMA-Factory's default)"
            )
            + f". Examples longer than `training.max_length` were cut as LLaMA-Factory's `cutoff_len` cuts ({cut} records, "
            "`prompt_tokens_cut` / `response_tokens_cut`). In the hf format `prompt` / `completion` are the same "
            "example as two texts.",
            "To reproduce with LLaMA-Factory: the chat-jsonl `messages` with the student's template, `cutoff_len` = "
            f"{semantics.get('cutoff_len', 'training.max_length')}"
            + (", `mask_history: true`" if semantics.get("mask_history") else "")
            + ".",
            (
                "`weight` holds the static per-example weights the trainer was given."
                if weighted
                else "No static per-example weights (`weight` is null)."
            )
            + " A strategy's own trainer may also reweight "
            "examples while training (see `strategy_records` in the run's report.json).",
            "",
        ]
    )


def _generated_notes(rows: list[dict]) -> str:
    checks = Counter(r["messages_check"] for r in rows if r.get("messages_check"))
    missing = Counter(r["messages_note"] for r in rows if r.get("messages") is None)
    lines = [
        "`answer` is what the task's filter extracted from the rationale; in the hf format `prompt` is the prompt "
        "as the teacher received it and `response` its rationale as generated. The turns are used only when they "
        "give back exactly the prompt as sent (" + ", ".join(f"{n} {how}" for how, n in checks.items()) + ")."
    ]
    if missing:
        lines.append(
            "Records without turns (`messages` null, reason in `messages_note`): "
            + "; ".join(f"{n}: {why}" for why, n in missing.items())
            + "."
        )
    lines.append(
        f"Possible checks: {turns.AS_SENT}; {turns.PLAIN}; {turns.RENDERED}. `extra` holds the record's "
        "other fields as JSON text.\n"
    )
    return "\n".join(lines)


def _student_eos(run: RunInfo) -> str | None:
    """The trained student's EOS token, from its saved tokenizer config (no tokenizer is loaded)."""
    path = run.path / "student" / "model" / "tokenizer_config.json"
    try:
        eos = json.loads(path.read_text()).get("eos_token")
    except (OSError, ValueError):
        return None
    return eos.get("content") if isinstance(eos, dict) else eos


def _provenance(run: RunInfo) -> str:
    packages = run.manifest.get("packages") or {}
    made = ", ".join(f"{p} {packages[p]}" for p in ("cotgap", "lm-eval", "transformers", "datasets") if p in packages)
    return (
        "## Provenance and licence\n\n"
        f"Made by cotgap from run `{run.path.name}` ({made}). The questions and targets come from the task's "
        "dataset, under its licence; the rationales are the teachers' outputs, under their terms of use. No "
        "licence is granted here beyond those.\n"
    )
