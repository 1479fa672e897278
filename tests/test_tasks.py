"""Task listing, data loading, splits, canary hygiene, offline errors and user tasks (no models)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cotgap.errors import UserError
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
BBH = SHARED_DATA / "bbh"
needs_bbh = pytest.mark.skipif(
    not (BBH / "word_sorting.json").exists(), reason=f"BBH data not found at {BBH} (shared/data absent; set COTGAP_SHARED_DATA)"
)
needs_math = pytest.mark.skipif(
    not (SHARED_DATA / "gsm8k" / "test.jsonl").exists() or not (SHARED_DATA / "math500" / "test.jsonl").exists(),
    reason=f"GSM8K/MATH-500 data not found under {SHARED_DATA}",
)

BBH_27 = {
    "boolean_expressions",
    "causal_judgement",
    "date_understanding",
    "disambiguation_qa",
    "dyck_languages",
    "formal_fallacies",
    "geometric_shapes",
    "hyperbaton",
    "logical_deduction_five_objects",
    "logical_deduction_seven_objects",
    "logical_deduction_three_objects",
    "movie_recommendation",
    "multistep_arithmetic_two",
    "navigate",
    "object_counting",
    "penguins_in_a_table",
    "reasoning_about_colored_objects",
    "ruin_names",
    "salient_translation_error_detection",
    "snarks",
    "sports_understanding",
    "temporal_sequences",
    "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects",
    "tracking_shuffled_objects_three_objects",
    "web_of_lies",
    "word_sorting",
}


def _settings(name, **kw):
    from cotgap.backends.evaluation import TaskSettings

    return TaskSettings(name=name, **kw)


# ------------------------------------------------------------------------------------------ listing
def test_cli_tasks_lists_every_builtin_group_fast():
    out = subprocess.run(
        [sys.executable, "-m", "cotgap", "tasks", "--json", "--data-dir", str(BBH)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {r["task"]: r for r in json.loads(out.stdout)}
    assert BBH_27 <= set(rows)
    assert {"gsm8k", "math500", "amc23", "aime24"} <= set(rows)
    assert {"synthetic_navigate", "synthetic_word_sorting"} <= set(rows)
    assert {rows[t]["group"] for t in BBH_27} == {"bbh"}
    assert rows["gsm8k"]["group"] == rows["aime24"]["group"] == "math"
    assert rows["synthetic_navigate"]["group"] == "synthetic"
    assert (rows["synthetic_navigate"]["train"], rows["synthetic_navigate"]["test"]) == (30, 20)
    if (BBH / "word_sorting.json").exists():
        assert (rows["word_sorting"]["train"], rows["word_sorting"]["test"]) == (150, 100)
        assert rows["penguins_in_a_table"]["train"] + rows["penguins_in_a_table"]["test"] == 146
    if (SHARED_DATA / "gsm8k" / "test.jsonl").exists():  # found as a sibling of the bbh folder
        assert (rows["gsm8k"]["train"], rows["gsm8k"]["test"]) == (7473, 1319)
        assert (rows["math500"]["train"], rows["math500"]["test"]) == (300, 200)
    assert rows["aime24"]["train"] is None and "hub" in rows["aime24"]["data"]  # absent locally: no failure


def test_bbh_yamls_reproduce_lm_eval_prompts():
    """Description, exemplars and prompt layout are lm-eval's bbh_cot_fewshot's, for all 27 tasks."""
    import lm_eval
    from lm_eval.tasks._yaml_loader import load_yaml

    src = Path(lm_eval.__file__).parent / "tasks" / "bbh" / "cot_fewshot"
    for name in BBH_27:
        ours = load_yaml(ROOT / "task_configs" / "bbh" / f"{name}.yaml", resolve_func=False)
        theirs = load_yaml(src / f"{name}.yaml", resolve_func=False)
        for key in ("description", "doc_to_text", "doc_to_target", "target_delimiter", "num_fewshot"):
            assert ours[key] == theirs[key], (name, key)
        assert ours["fewshot_config"]["samples"] == theirs["fewshot_config"]["samples"], name
        assert {f["name"] for f in ours["filter_list"]} == {"strict", "robust"}
        assert ours["generation_kwargs"]["max_gen_toks"] == theirs["generation_kwargs"]["max_gen_toks"]


def test_every_builtin_task_has_strict_and_robust():
    from lm_eval.tasks._yaml_loader import load_yaml

    for path in (ROOT / "task_configs").rglob("*.yaml"):
        cfg = load_yaml(path, resolve_func=False)
        assert {f["name"] for f in cfg["filter_list"]} == {"strict", "robust"}, path


# ------------------------------------------------------------------------------------------ splits
@needs_bbh
def test_bbh_split_is_3_2_seeded_disjoint_and_limit_is_a_prefix():
    from cotgap.tasks.datasets import load_splits

    a = load_splits("bbh_date_understanding", data_dir=str(BBH))
    b = load_splits("bbh_date_understanding", data_dir=str(BBH))
    assert a == b and (len(a["train"]), len(a["test"])) == (150, 100)
    assert not {e["input"] for e in a["train"]} & {e["input"] for e in a["test"]}
    small = load_splits("bbh_date_understanding", data_dir=str(BBH), limit=7)
    assert small["train"] == a["train"][:7] and small["test"] == a["test"][:7]
    other = load_splits("bbh_date_understanding", data_dir=str(BBH), seed=99)
    assert other["test"] != a["test"]


@needs_bbh
def test_data_dir_from_environment_and_parent_folder(monkeypatch):
    from cotgap.tasks.datasets import load_splits

    monkeypatch.setenv("COTGAP_DATA_DIR", str(SHARED_DATA))
    via_env = load_splits("bbh_word_sorting", limit=3)
    assert via_env == load_splits("bbh_word_sorting", data_dir=str(BBH), limit=3)


@needs_math
def test_gsm8k_keeps_its_own_split_and_gold_number():
    from cotgap.tasks.datasets import load_splits

    s = load_splits("gsm8k", data_dir=str(SHARED_DATA), limit=5)
    assert s["test"][0]["target"] == "18" and s["test"][0]["input"].startswith("Janet")
    assert all(re.fullmatch(r"-?[\d,.]+", e["target"]) for e in s["train"] + s["test"])


# ------------------------------------------------------------------------------------------ canary
@needs_bbh
def test_canary_examples_are_dropped(tmp_path):
    """An example carrying the file's canary string never reaches a split."""
    from cotgap.tasks.datasets import load_splits

    real = json.loads((BBH / "formal_fallacies.json").read_text())
    canary = real["canary"]
    examples = real["examples"][:20] + [{"input": f"leaked {canary}", "target": "valid"}]
    (tmp_path / "bbh").mkdir()
    (tmp_path / "bbh" / "formal_fallacies.json").write_text(json.dumps({"canary": canary, "examples": examples}))
    s = load_splits("bbh_formal_fallacies", data_dir=str(tmp_path))
    docs = s["train"] + s["test"]
    assert len(docs) == 20 and not any(canary in d["input"] or canary in d["target"] for d in docs)


@needs_bbh
def test_no_canary_in_the_repository():
    guid = re.search(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        json.loads((BBH / "word_sorting.json").read_text())["canary"],
    ).group(0)
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert files
    hits = [f for f in files if (ROOT / f).is_file() and guid in (ROOT / f).read_text(errors="ignore")]
    assert hits == []


# ------------------------------------------------------------------------------------------ errors
def test_missing_local_data_is_a_one_line_user_error(tmp_path):
    from cotgap.backends.evaluation import load_task

    with pytest.raises(UserError, match=r"no local data for bbh_snarks under .*snarks\.json"):
        load_task(_settings("snarks", data_dir=str(tmp_path)))


def test_offline_without_data_dir_says_what_to_do(monkeypatch):
    from cotgap.backends.evaluation import load_task
    from cotgap.tasks import datasets

    monkeypatch.delenv("COTGAP_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "hub_reachable", lambda timeout=3.0: False)
    for name, hub in (("snarks", "lukaemon/bbh"), ("gsm8k", "openai/gsm8k"), ("amc23", "math-ai/amc23")):
        with pytest.raises(UserError) as e:
            load_task(_settings(name))
        msg = str(e.value)
        assert "\n" not in msg and "--data-dir" in msg and "go online" in msg and hub in msg


def test_cli_reports_missing_data_in_one_line(tmp_path, tiny_student):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cotgap",
            "run",
            "--task",
            "snarks",
            "--data-dir",
            str(tmp_path),
            "--student",
            str(tiny_student),
            "--teacher",
            "scripted",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 2, out.stdout[-1000:] + out.stderr[-1000:]
    assert "no local data for bbh_snarks" in out.stderr and "Traceback" not in out.stderr


def test_unknown_task_and_lm_eval_aliases():
    from cotgap.backends.evaluation import resolve_name

    known = ["word_sorting", "gsm8k"]
    assert resolve_name("bbh_cot_fewshot_word_sorting", known) == "word_sorting"
    assert resolve_name("bbh_word_sorting", known) == "word_sorting"
    assert resolve_name("nope", known) == "nope"


# ------------------------------------------------------------------------------------------ user tasks
def _doc_yamls() -> dict[str, str]:
    """The YAML examples of docs/tasks.md, keyed by the file name in their first comment line."""
    text = (ROOT / "docs" / "tasks.md").read_text()
    out = {}
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        first = block.splitlines()[0]
        if first.startswith("# ") and first.endswith(".yaml"):
            out[first[2:].split("/")[-1]] = block
    return out


def test_user_tasks_from_the_docs_work(tmp_path):
    """The two YAMLs shown in docs/tasks.md, added with --include-path: listed, loaded, scored."""
    from cotgap.backends import evaluation

    yamls = _doc_yamls()
    assert set(yamls) == {"my_sorting.yaml", "my_algebra.yaml"}
    inc, data = tmp_path / "my_tasks", tmp_path / "my_data"
    inc.mkdir()
    data.mkdir()
    for fname, body in yamls.items():
        (inc / fname).write_text(body)
    words = [
        "pear apple",
        "fig kiwi date",
        "plum lime",
        "b a c",
        "yam oat",
        "zeta eta beta",
        "x w",
        "nut egg pea",
        "tea gin",
        "one two",
    ]
    (data / "my_sorting.json").write_text(
        json.dumps(
            {
                "examples": [
                    {"input": f"Sort the following words alphabetically: List: {w}", "target": " ".join(sorted(w.split()))}
                    for w in words
                ]
            }
        )
    )
    (data / "my_algebra.jsonl").write_text(
        "".join(json.dumps({"problem": f"What is {i} + {i}?", "answer": float(2 * i)}) + "\n" for i in range(10))
    )

    rows = {r["task"]: r for r in evaluation.list_tasks([str(inc)], data_dir=str(data))}
    assert rows["my_sorting"]["group"] == rows["my_algebra"]["group"] == "user"
    assert (rows["my_sorting"]["train"], rows["my_sorting"]["test"]) == (6, 4)
    assert str(inc) in rows["my_algebra"]["source"]

    lm = _canned(
        lambda doc: (
            f"Sorted. So the answer is {doc['target']}"
            if "List" in doc["input"]
            else f"Adding gives $\\boxed{{{doc['target']}}}$."
        )
    )
    for name in ("my_sorting", "my_algebra"):
        task = evaluation.load_task(_settings(name, include_paths=[str(inc)], data_dir=str(data)))
        summary, records = evaluation.run(lm, task)
        assert summary["accuracy_by_scoring"]["robust"] == 1.0, (name, records)
        assert summary["accuracy_by_scoring"]["strict"] == 0.0  # no period / float-vs-int: the strict traps
        assert all(r["input"] and r["target"] for r in records)


def _canned(fn):
    from lm_eval.api.model import LM
    from lm_eval.models.utils import postprocess_generated_text

    class Canned(LM):
        def generate_until(self, requests, disable_tqdm=False):
            return [postprocess_generated_text(fn(r.doc), r.args[1].get("until"), None) for r in requests]

        def loglikelihood(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

    return Canned()


def test_hub_fallback_when_no_data_dir(monkeypatch):
    """Without a data dir the hub dataset is used (mocked here: the hub is not reachable from CI)."""
    import datasets as hf

    from cotgap.tasks import datasets

    calls = []

    def fake_load(repo, config=None):
        calls.append((repo, config))
        if repo == "lukaemon/bbh":
            return hf.DatasetDict({"test": hf.Dataset.from_list([{"input": f"q{i}", "target": "(A)"} for i in range(10)])})
        if repo == "openai/gsm8k":
            return hf.DatasetDict(
                {
                    k: hf.Dataset.from_list([{"question": f"{k} {i}?", "answer": f"so\n#### {i}"} for i in range(5)])
                    for k in ("train", "test")
                }
            )
        if repo == "math-ai/amc23":
            return hf.DatasetDict(
                {"test": hf.Dataset.from_list([{"id": i, "question": f"p{i}", "answer": float(i), "url": ""} for i in range(10)])}
            )
        raise AssertionError(repo)

    monkeypatch.delenv("COTGAP_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(hf, "load_dataset", fake_load)
    bbh = datasets.load_splits("bbh_snarks")
    assert (len(bbh["train"]), len(bbh["test"])) == (6, 4) and ("lukaemon/bbh", "snarks") in calls
    gsm = datasets.load_splits("gsm8k")
    assert gsm["test"][3] == {"input": "test 3?", "target": "3", "question": "test 3?", "answer": "so\n#### 3"}
    amc = datasets.load_splits("amc23")
    doc = (amc["train"] + amc["test"])[0]
    assert doc["target"] == str(int(doc["answer"])) and isinstance(doc["answer"], float)
