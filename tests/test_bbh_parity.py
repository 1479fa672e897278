"""cotgap's ``strict`` BBH scoring equals lm-eval's own ``bbh_cot_fewshot_<task>``, sample by sample.

lm-eval's task is built from its installed YAML (``lm_eval/tasks/bbh/cot_fewshot/<task>.yaml``, its
template included) with only the dataset redirected to a temporary JSON Lines file holding the same
docs as cotgap's test split. Both runs get their generations from the same source:

- a greedy "canned" LM: one fixed continuation per prompt, cut at each request's own stop strings
  by lm-eval's own ``postprocess_generated_text`` (what HFLM/vLLM do), with tricky continuations;
- a tiny random-init Llama through lm-eval's HFLM (real greedy decoding, real stop criteria).

The BBH files are read in place from shared/data; nothing is copied into the repository.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

BBH = SHARED_DATA / "bbh"
TASKS = ["word_sorting", "date_understanding", "formal_fallacies", "dyck_languages", "ruin_names"]
LIMIT = 16

pytestmark = pytest.mark.skipif(
    not (BBH / "word_sorting.json").exists(), reason=f"BBH data not found at {BBH} (shared/data absent; set COTGAP_SHARED_DATA)"
)


def _wrong(target: str) -> str:
    t = target.strip()
    if len(t) == 3 and t.startswith("(") and t.endswith(")"):
        return "(B)" if t != "(B)" else "(C)"
    if t in ("valid", "invalid"):
        return "invalid" if t == "valid" else "valid"
    return " ".join(reversed(t.split())) + " x"


def continuation(doc: dict) -> tuple[int, str]:
    """(case, full greedy continuation) for a doc; the case cycles over known traps."""
    target = doc["target"]
    case = zlib.crc32(doc["input"].encode()) % 9
    return case, [
        f"Let us work through it step by step. So the answer is {target}.",
        f"Working it out. So the answer is {target}",  # trap: no period -> lm-eval regex drops a char
        f"Quite simply, by elimination. So the answer is {target}.",  # trap: capital Q stops lm-eval
        f"Step one.\nStep two. So the answer is {target}.\n\nQ: another question\nA: Let's think",
        f"Hmm. So the answer is {_wrong(target)}.",
        f"First part.\n\nSecond part. So the answer is {target}.",  # blank line inside the reasoning
        "I am not sure about this one.",
        f"So The Answer is {target}.",  # capitalised phrase
        f"The answer is {target}. Then the answer is {_wrong(target)}.",  # lm-eval takes the first line match
    ][case]


class CannedGreedyLM:
    """An lm-eval LM whose generations are a fixed function of the prompt (as greedy decoding is)."""

    def __new__(cls):
        from lm_eval.api.model import LM
        from lm_eval.models.utils import postprocess_generated_text

        class _LM(LM):
            def generate_until(self, requests, disable_tqdm=False):
                out = []
                for req in requests:
                    context, kwargs = req.args
                    _, full = continuation(req.doc)
                    out.append(postprocess_generated_text(full, kwargs.get("until"), None))
                return out

            def loglikelihood(self, requests, disable_tqdm=False):
                raise NotImplementedError

            def loglikelihood_rolling(self, requests, disable_tqdm=False):
                raise NotImplementedError

        return _LM()


def _cotgap_task(name: str, limit: int = LIMIT):
    from cotgap.backends import evaluation

    return evaluation.load_task(evaluation.TaskSettings(name=name, data_dir=str(BBH), limit=limit), split="test")


def _lm_eval_task(name: str, docs: list[dict], tmp_path: Path):
    """lm-eval's own bbh_cot_fewshot_<name>, reading ``docs`` from a temporary JSON Lines file."""
    import lm_eval
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(Path(lm_eval.__file__).parent / "tasks" / "bbh" / "cot_fewshot" / f"{name}.yaml")
    assert cfg["task"] == f"bbh_cot_fewshot_{name}"
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps({"input": d["input"], "target": d["target"]}) + "\n" for d in docs))
    cfg.update(dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": {"test": str(data)}})
    return ConfigurableTask(config=cfg)


def _evaluate(lm, task) -> list[dict]:
    import lm_eval

    from cotgap.backends.evaluation import _task_manager_for_run

    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=[task],
        log_samples=True,
        bootstrap_iters=0,
        apply_chat_template=False,
        fewshot_as_multiturn=False,
        task_manager=_task_manager_for_run(),
    )
    return sorted(out["samples"][task.config.task], key=lambda s: (s["doc_id"], s["filter"]))


def _by_filter(samples, name):
    return [s for s in samples if s["filter"] == name]


@pytest.fixture(scope="module")
def canned_runs(tmp_path_factory):
    from cotgap.backends import evaluation

    tmp = tmp_path_factory.mktemp("parity")
    lm = CannedGreedyLM()
    runs = {}
    for name in TASKS:
        ours = _cotgap_task(name)
        docs = evaluation.docs(ours)
        theirs = _lm_eval_task(name, docs, tmp)
        summary = evaluation.run(lm, ours, scoring="strict")[0] if name in TASKS[:2] else None
        runs[name] = (docs, _evaluate(lm, theirs), _evaluate(lm, _cotgap_task(name)), summary)
    return runs


@pytest.mark.parametrize("name", TASKS)
def test_strict_equals_lm_eval_per_sample(canned_runs, name):
    docs, theirs, ours, _ = canned_runs[name]
    lm_eval_samples = _by_filter(theirs, "get-answer")
    strict = _by_filter(ours, "strict")
    assert len(lm_eval_samples) == len(strict) == len(docs) == LIMIT
    for a, b in zip(lm_eval_samples, strict):
        assert a["doc"]["input"] == b["doc"]["input"] and a["target"] == b["target"]
        assert a["arguments"][0][0] == b["arguments"][0][0], "prompt differs"  # description + 3 exemplars + question
        assert a["filtered_resps"] == b["filtered_resps"], (a["resps"], b["resps"])
        assert a["exact_match"] == b["exact_match"]


def test_parity_cases_cover_the_traps(canned_runs):
    """The canned continuations hit every case, and lm-eval gets some of the correct ones wrong."""
    cases = {continuation(d)[0] for docs, *_ in canned_runs.values() for d in docs}
    assert cases == set(range(9))
    total_strict = sum(s["exact_match"] for _, _, ours, _ in canned_runs.values() for s in _by_filter(ours, "strict"))
    total_robust = sum(s["exact_match"] for _, _, ours, _ in canned_runs.values() for s in _by_filter(ours, "robust"))
    assert 0 < total_strict < total_robust


def test_robust_fixes_the_two_traps(canned_runs):
    for docs, _, ours, _ in canned_runs.values():
        strict = {s["doc_id"]: s for s in _by_filter(ours, "strict")}
        robust = {s["doc_id"]: s for s in _by_filter(ours, "robust")}
        for i, doc in enumerate(docs):
            case, _ = continuation(doc)
            if case == 1:  # "So the answer is X" without a period: lm-eval keeps X minus its last character
                assert strict[i]["exact_match"] == 0 and strict[i]["filtered_resps"][0] == doc["target"][:-1].strip()
                assert robust[i]["exact_match"] == 1
            if case == 2:  # a capital Q in the reasoning: lm-eval stops generating there
                assert strict[i]["exact_match"] == 0 and robust[i]["exact_match"] == 1
                assert "Quite" in robust[i]["resps"][0][0]  # robust generation does not stop at Q
            if case in (0, 3):
                assert strict[i]["exact_match"] == robust[i]["exact_match"] == 1
            if case in (4, 6):
                assert strict[i]["exact_match"] == robust[i]["exact_match"] == 0


def test_run_summary_reports_both_scorings(canned_runs):
    summaries = [run for run in canned_runs.values() if run[3] is not None]
    assert summaries
    for docs, _, ours, summary in summaries:
        by = summary["accuracy_by_scoring"]
        assert set(by) == {"strict", "robust"}
        assert summary["accuracy"] == pytest.approx(by["strict"])
        expect = sum(s["exact_match"] for s in _by_filter(ours, "robust")) / len(docs)
        assert by["robust"] == pytest.approx(expect)


def test_strict_equals_lm_eval_with_a_real_model(tmp_path, tiny_student):
    """Real greedy decoding (tiny random Llama via HFLM): lm-eval's generation is cotgap's generation cut at
    lm-eval's stop strings, and the scores agree per sample."""
    from lm_eval.models.huggingface import HFLM

    from cotgap.backends import evaluation
    from cotgap.tasks.extraction import LM_EVAL_BBH_UNTIL, truncate_at

    lm = HFLM(pretrained=str(tiny_student), device="cpu", batch_size=1, dtype="float32")
    name = "date_understanding"
    ours = _cotgap_task(name, limit=3)
    theirs = _lm_eval_task(name, evaluation.docs(ours), tmp_path)
    # Same extra settings for both: a smaller budget (speed), and no special tokens / no repeated token, so
    # that the random model writes long varied text instead of stopping at once or repeating one token.
    extra = {"max_gen_toks": 96, "suppress_tokens": [0, 1, 2, 3], "no_repeat_ngram_size": 1}
    for t in (ours, theirs):
        t.set_config(key="generation_kwargs", value={**t.config.generation_kwargs, **extra})
    a_all, b_all = _evaluate(lm, theirs), _evaluate(lm, ours)
    assert all(len(b["resps"][0][0]) > 50 for b in _by_filter(b_all, "strict"))
    for a, b in zip(_by_filter(a_all, "get-answer"), _by_filter(b_all, "strict"), strict=True):
        assert a["arguments"][0][0] == b["arguments"][0][0]
        assert a["resps"][0][0] == truncate_at(b["resps"][0][0], LM_EVAL_BBH_UNTIL)
        assert a["filtered_resps"] == b["filtered_resps"] and a["exact_match"] == b["exact_match"]
