"""Math answer extraction and scoring (GSM8K, MATH-500, AMC23, AIME24): fast, no models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotgap.tasks import math_answers as m
from cotgap.tasks.datasets import gsm8k_target, number_text
from tests.conftest import SHARED_DATA
from tests.test_tasks import _canned, _settings

needs_math = pytest.mark.skipif(
    not (SHARED_DATA / "gsm8k" / "test.jsonl").exists() or not (SHARED_DATA / "math500" / "test.jsonl").exists(),
    reason=f"GSM8K/MATH-500 data not found under {SHARED_DATA}",
)


# ------------------------------------------------------------------------------------------ GSM8K
def test_gsm8k_gold_and_answer_extraction():
    assert gsm8k_target("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 18") == "18"
    assert gsm8k_target("... so $1,200.\n#### 1,200") == "1,200"
    docs = [{"target": "42"}] * 6
    resps = [
        ["So 6 * 7 = 42. The answer is 42."],
        ["The answer is $42.00."],
        ["the answer is 41. The answer is 42"],
        ["#### 42"],
        ["The answer is 43."],
        ["no number"],
    ]
    out = [r[0] for r in m.gsm8k_robust_filter(resps, docs)]
    assert out[:4] == ["42"] * 4 and out[4] == "43" and out[5] == "[invalid]"
    assert [r[0] for r in m.gsm8k_robust_filter([["The answer is 1,234."]], [{"target": "1234"}])] == ["1234"]


# ------------------------------------------------------------------------------------------ MATH / AMC / AIME
@pytest.mark.parametrize(
    "response,gold",
    [
        ("so the result is $\\boxed{0.5}$", "\\frac{1}{2}"),
        ("Final Answer: The final answer is $\\frac12$. I hope it is correct.", "0.5"),
        ("thus \\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{(3, \\pi/2)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("\\boxed{12.0}", "12"),
        ("\\boxed{033}", "33"),
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}"),
        ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}"),
    ],
)
def test_robust_math_equivalence(response, gold):
    assert m.competition_equivalent(response, gold)


@pytest.mark.parametrize(
    "response,gold",
    [
        ("\\boxed{0.6}", "\\frac{1}{2}"),
        ("\\boxed{13}", "12"),
        ("no boxed answer at all", "12"),
        ("\\boxed{(3, \\pi)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ],
)
def test_robust_math_rejects(response, gold):
    assert not m.competition_equivalent(response, gold)


def test_boxed_extraction_balances_braces():
    assert m.last_boxed("a \\boxed{1} then \\boxed{\\frac{a}{b}} end") == "\\frac{a}{b}"
    assert m.competition_answer("Final Answer: The final answer is $7$. I hope it is correct.") == "7"
    assert m.last_boxed("nothing") is None


def test_amc_float_answers_compare_as_numbers():
    """AMC stores 12 as 12.0: lm-eval's string scoring (strict) loses the point, robust does not."""
    assert number_text(12.0) == "12" and number_text(2.5) == "2.5" and number_text("12.0") == "12"
    doc = {"target": number_text(12.0), "answer": 12.0}
    resps = [["so \\boxed{12}"], ["\\boxed{12.0}"], ["\\boxed{11}"]]
    strict = [r[0] for r in m.math_strict_filter(resps, [doc] * 3)]
    robust = [r[0] for r in m.math_robust_filter(resps, [doc] * 3)]
    assert strict[0] != "12" and strict[1] == "12" and strict[2] == "11"  # lm-eval: "12" != str(12.0)
    assert robust == ["12", "12", "11"]
    assert m.lm_eval_aime_correct("so \\boxed{12}", 12.0) is False  # lm-eval's own code, the published trap


# ------------------------------------------------------------------------------------------ tasks end to end
@needs_math
def test_gsm8k_task_scores_both_ways():
    from cotgap.backends import evaluation

    task = evaluation.load_task(_settings("gsm8k", data_dir=str(SHARED_DATA), limit=4))
    docs = evaluation.docs(task)
    answers = {d["input"]: d["target"] for d in docs}
    replies = iter(["Thus 18 eggs. The answer is 18.", "The answer is 3", "so **The answer is $70,000.**", "I give up."])
    lm = _canned(lambda doc, it={}: it.setdefault(doc["input"], next(replies)))
    summary, records = evaluation.run(lm, task, scoring="robust")
    assert summary["n"] == 4 and set(summary["accuracy_by_scoring"]) == {"strict", "robust"}
    assert records[0]["prompt"].count("Q: ") == 9 and records[0]["prompt"].endswith("A:")  # 8 exemplars + question
    assert [r["correct"] for r in records] == [True, True, True, False]
    assert answers[records[2]["input"]] == "70000"
    # strict is lm-eval's strict-match: "The answer is 3" with no trailing character fails its regex
    assert summary["accuracy_by_scoring"]["strict"] == pytest.approx(0.25)


@needs_math
def test_math500_task_uses_math_verify():
    from cotgap.backends import evaluation

    task = evaluation.load_task(_settings("math500", data_dir=str(SHARED_DATA), limit=3))
    docs = evaluation.docs(task)
    assert all(d["input"] and d["target"] for d in docs)
    lm = _canned(lambda doc: f"Work. Final answer: $\\boxed{{{doc['target']}}}$.")
    summary, records = evaluation.run(lm, task)
    assert summary["accuracy_by_scoring"] == {"strict": 1.0, "robust": 1.0}
    assert records[0]["prompt"].startswith("Problem:\n") and records[0]["prompt"].endswith("Solution:")
    assert records[0]["prompt"].count("Problem:") == 5  # 4 Minerva exemplars + the problem


def test_amc_and_aime_from_local_files(tmp_path):
    """The AMC/AIME loaders read local JSONL (float answers as on the hub) and split 3:2."""
    from cotgap.backends import evaluation

    (tmp_path / "amc23").mkdir()
    (tmp_path / "amc23" / "test.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "question": f"Compute {i} * 3.", "answer": float(3 * i), "url": "x"}) + "\n" for i in range(10)
        )
    )
    (tmp_path / "aime24").mkdir()
    (tmp_path / "aime24" / "test.jsonl").write_text(
        "".join(json.dumps({"ID": f"2024-I-{i}", "Problem": f"Find {i} + 1.", "Answer": i + 1}) + "\n" for i in range(10))
    )
    lm = _canned(lambda doc: f"So the answer is $\\boxed{{{doc['target']}}}$.")
    for name, strict in (("amc23", 0.0), ("aime24", 1.0)):
        task = evaluation.load_task(_settings(name, data_dir=str(tmp_path)))
        assert len(evaluation.docs(task)) == 4
        summary, _ = evaluation.run(lm, task)
        assert summary["accuracy_by_scoring"] == {"strict": strict, "robust": 1.0}, name


@needs_math
def test_gsm8k_strict_equals_lm_eval_gsm8k_cot(tmp_path):
    """cotgap's gsm8k ``strict`` is lm-eval's gsm8k_cot strict-match, sample by sample (same prompt too)."""
    import lm_eval
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    from cotgap.backends import evaluation
    from tests.test_bbh_parity import _by_filter, _evaluate

    ours = evaluation.load_task(_settings("gsm8k", data_dir=str(SHARED_DATA), limit=8))
    docs = evaluation.docs(ours)
    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(json.dumps({"question": d["question"], "answer": d["answer"]}) + "\n" for d in docs))
    cfg = load_yaml(Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k-cot.yaml")
    cfg.update(dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": {"test": str(data)}})
    theirs = ConfigurableTask(config=cfg)
    variants = [
        "The answer is {t}.",
        "The answer is {t}",
        "So the answer is ${t}.",
        "the answer is {t}.",
        "The answer is {w}.",
        "Q: The answer is {t}.",
        "The answer is {t},000.",
        "It is {t}.",
    ]
    lm = _canned(
        lambda doc: variants[int(doc["answer"].split("####")[-1].replace(",", "")) % len(variants)].format(
            t=doc["answer"].split("####")[-1].strip(), w=7
        )
    )
    a_all, b_all = _evaluate(lm, theirs), _evaluate(lm, ours)
    a, b = _by_filter(a_all, "strict-match"), _by_filter(b_all, "strict")
    assert len(a) == len(b) == 8
    for x, y in zip(a, b):
        assert x["arguments"][0][0] == y["arguments"][0][0]
        assert x["filtered_resps"] == y["filtered_resps"] and x["exact_match"] == y["exact_match"]
