"""Answer extraction and scoring for the math tasks (GSM8K, MATH-500, AMC 2023, AIME 2024).

Like :mod:`cotgap.tasks.extraction`, these are lm-eval ``custom`` filters used by the task YAMLs,
so teacher correctness and evaluation share one code path. Each filter returns the doc's
``target`` when the response is scored correct (lm-eval's ``exact_match`` then scores 1), else
the extracted answer (or ``[invalid]``).

``strict`` — what lm-eval itself would score:

- GSM8K: lm-eval's ``gsm8k_cot`` "strict-match" (regex ``The answer is (\\-?[0-9\\.\\,]+).`` and
  its exact_match options), written directly in the YAML;
- MATH-500, AMC, AIME: lm-eval's ``aime`` scoring (``lm_eval/tasks/aime/utils.process_results``:
  the last ``\\boxed{}`` or ``$…$`` span, Hendrycks string normalisation, compared with
  ``str(answer)`` as stored). That comparison is the known trap: AMC answers stored as floats
  (``12.0``) never equal ``12``, so ``strict`` loses those points exactly as lm-eval does.

``robust`` — equivalence, not string equality:

- GSM8K: the last "the answer is X" (else ``\\boxed{X}``, else ``#### X``), compared as numbers;
  a hedged or negated number ("63 or 64", "not 63") scores wrong, as for the BBH integers;
- MATH-500, AMC, AIME: the answer is compared as a number when both sides are plain numbers
  (``12.0`` == ``12``, ``033`` == ``33``), otherwise by ``math-verify`` (the maintained
  Hugging Face library: ``\\frac{1}{2}`` == ``0.5``, tuples, intervals, …).
"""

from __future__ import annotations

import logging
import re

from cotgap.tasks.extraction import INVALID, last_answer, stated_answer

_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FINAL_RE = re.compile(r"final answer is[:\s]*\$?(.+?)\$?(?:\.\s*I hope|\.\s*$|\n|$)", re.IGNORECASE)

logging.getLogger("math_verify").setLevel(logging.ERROR)


# --------------------------------------------------------------------------------- helpers
def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}`` / ``\\fbox{…}`` (balanced braces), via lm-eval's helpers."""
    from lm_eval.tasks.hendrycks_math.utils import last_boxed_only_string, remove_boxed

    boxed = last_boxed_only_string(text)
    if boxed is None:
        return None
    try:
        return remove_boxed(boxed)
    except (AssertionError, IndexError):
        return None


def plain_number(s: str | None) -> float | None:
    """``s`` as a number when it is one (``$``, ``,``, ``\\!`` and spaces ignored), else None."""
    if s is None:
        return None
    t = str(s).strip().strip("$").replace(",", "").replace("\\!", "").replace(" ", "").rstrip(".")
    t = re.sub(r"^\\text\{(.*)\}$", r"\1", t)
    if _PLAIN_NUMBER.fullmatch(t):
        return float(t)
    return None


def numbers_equal(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


# --------------------------------------------------------------------------------- GSM8K
def gsm8k_answer(text: str) -> str | None:
    pred = last_answer(text)
    if pred is None:
        m = re.findall(r"####\s*(\S+)", text)
        pred = m[-1] if m else None
    return pred


def gsm8k_equivalent(pred: str | None, target: str) -> bool:
    """Whether ``pred`` states the target's number: one number, not negated ("63 or 64" and
    "not 63" state none), read as the BBH integers are (:func:`cotgap.tasks.extraction.stated_answer`)."""
    if pred is None:
        return False
    a, b = stated_answer(pred, "number"), stated_answer(target, "number")
    return a is not None and b is not None and numbers_equal(a, b)


def gsm8k_robust_filter(resps, docs):
    out = []
    for rs, doc in zip(resps, docs):
        row = []
        for r in rs:
            pred = gsm8k_answer(r)
            row.append(doc["target"] if gsm8k_equivalent(pred, doc["target"]) else (pred or INVALID))
        out.append(row)
    return out


# --------------------------------------------------------------------------------- MATH / AMC / AIME
def competition_answer(text: str) -> str | None:
    """The response's final answer for display: last ``\\boxed{}``, else "final answer is", else "answer is"."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    hits = _FINAL_RE.findall(text)
    if hits:
        return hits[-1].strip()
    return last_answer(text)


def lm_eval_aime_correct(response: str, stored_answer) -> bool:
    """lm-eval's own ``aime`` scoring of ``response`` against the answer as stored."""
    from lm_eval.tasks.aime.utils import process_results

    return bool(process_results({"answer": stored_answer}, [response])["exact_match"])


def math_verify_equal(gold: str, response: str) -> bool:
    from math_verify import parse, verify

    try:
        g = parse(f"${gold}$")
        if not g:
            g = parse(str(gold))
        p = parse(response)
        return bool(g and p and verify(g, p))
    except Exception:  # noqa: BLE001 — math-verify's parser gives up on some inputs: not equivalent
        return False


def competition_equivalent(response: str, target: str) -> bool:
    pred = competition_answer(response)
    if pred is not None and pred.strip().strip("$").strip() == str(target).strip():
        return True
    a, b = plain_number(pred), plain_number(target)
    if a is not None and b is not None:
        return numbers_equal(a, b)
    if pred is not None and b is not None:
        # a latex number ("\frac{24}{2}", "1.2\times10^1") or units: let math-verify decide
        return math_verify_equal(target, f"${pred}$") or math_verify_equal(target, response)
    return math_verify_equal(target, response)


def math_strict_filter(resps, docs):
    out = []
    for rs, doc in zip(resps, docs):
        stored = doc.get("answer", doc["target"])
        row = []
        for r in rs:
            if lm_eval_aime_correct(r, stored):
                row.append(doc["target"])
                continue
            pred = competition_answer(r) or INVALID
            # scored wrong although it reads like the target (e.g. "12" against a stored 12.0): keep it wrong
            row.append(pred if pred != doc["target"] else f"{pred} [strict: not {stored}]")
        out.append(row)
    return out


def math_robust_filter(resps, docs):
    out = []
    for rs, doc in zip(resps, docs):
        out.append([doc["target"] if competition_equivalent(r, doc["target"]) else (competition_answer(r) or INVALID)
                    for r in rs])
    return out
