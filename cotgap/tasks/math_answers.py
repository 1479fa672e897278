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

``robust`` — one stated answer, exactly equal to the gold; never a guess:

- **Which answer.** The final statement, read by :func:`cotgap.tasks.extraction.last_answer`: the last
  "answer is" / "final answer:" / ``####`` phrase or ``\\boxed{}``, whichever is later. No statement,
  or an unfinished one (a box never closed, a phrase with nothing after it, text after the statement
  that stops mid-sentence — cut at ``max_gen_toks``), scores wrong: the last number of a response cut
  off mid-solution is never read, and no earlier statement stands in for an unfinished last one.
- **GSM8K** reads that answer as the BBH integers are (:func:`cotgap.tasks.extraction.stated_answer`):
  exactly one number, not negated, hedged ("63 or 64", "63 or more"), bounded ("at least 63", "63+",
  "about 63") or judged wrong ("63 is wrong"), equal to the gold as an exact fraction
  (``1,450,001`` != ``1,450,000``).
- **MATH-500, AMC, AIME.** The answer is refused when it is qualified in a way the gold is not
  (:func:`qualified`): a negation ("not 27", ``\\neq 27``), a hedge ("27 or 28", "either"), a bound or an
  approximation ("at least", "more than", ``\\geq``, ``\\approx``, "27+"; relation symbols only
  against a single-value gold — an interval gold may be answered by an inequality) or a judgement
  ("wrong", "incorrect"). An answer-choice label is read as AMC solutions write it
  (``\\boxed{\\textbf{(C) }27}``, ``(C) 27``): against a choice gold (``\\text{(C)}``) the letter
  decides; against a value gold the value after the label does, and a bare label states no value.
  Then the answer and the gold compare **exactly**: both plain numbers (``033``, ``12.0``,
  ``10,\\!080``, ``90^\\circ``, ``5.4 \\text{ cents}``) as fractions; anything else by math-verify
  (``\\frac{1}{2}`` == ``0.5``, ``2\\sqrt2`` == ``\\sqrt8``, tuples, intervals) with every decimal
  rewritten as the fraction it is (``3.21`` → ``\\frac{321}{100}``), since math-verify alone rounds
  floats to 6 places (it would take ``0.333333`` for ``\\frac{1}{3}`` and ``0.0000671`` for
  ``0.0000672``). So an integer gold is only ever matched by a value exactly equal to it.
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction

from cotgap.tasks.extraction import (
    HEDGE_RE,
    INVALID,
    NEGATION_RE,
    box_contents,
    last_answer,
    last_boxed,  # noqa: F401 — the one box reader, also math_answers.last_boxed
    stated_answer,
    unwrap,
)

logging.getLogger("math_verify").setLevel(logging.ERROR)

# A plain number: digits (thousands in comma groups of three), an optional decimal part, or ".5".
_PLAIN_NUMBER = re.compile(r"-?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)")
_LATEX_SPACE = re.compile(r"\\[!,;: ]|\\q?quad\b|~")
# A unit after a plain number: degrees, a \text{}/\mbox{} unit, or plain words that are not maths.
_UNIT = re.compile(
    r"\s*(?:\^\s*\{?\\circ\}?|°|\\(?:text|mbox|textrm|mathrm)\{\s*[A-Za-z][A-Za-z ]*\}(?:\^\d)?"
    r"|\s(?!(?:pi|and|plus|minus|times|over|up|above|more|less|to|by)\b)[A-Za-z]{2,}(?:\s+[A-Za-z]{2,})*)$"
)
_TEXT_WRAPPER = re.compile(r"^\\(?:text|textbf|mbox|mathrm|textrm)\{([^{}]*)\}$")
_DECIMAL = re.compile(r"(?<![\d.])(\d*)\.(\d+)(?![\d.])")
# Qualifiers a math answer must not carry unless the gold carries them too (see ``qualified``).
_WORD_QUALIFIERS = (
    NEGATION_RE,
    HEDGE_RE,
    re.compile(
        r"\b(?:at\s+(?:least|most)|(?:more|less|fewer|greater|larger|smaller)\s+than|up\s+to|approximately"
        r"|approx|about|around|roughly|nearly|almost|wrong|incorrect)\b|\d\s*\+\s*$|≈|\\approx(?![a-z])",
        re.IGNORECASE,
    ),
)
_RELATION = re.compile(r"[<>≤≥]|\\(?:geq?|leq?|gt|lt|geqslant|leqslant|sim)(?![a-z])")
_MANY_VALUES = re.compile(r",|\\cup|\\infty|\\in(?![a-z])")
# An answer-choice label opening an answer: \textbf{(C)}, \text{(C) }, (C), or a label wrapping the value.
_CHOICE_LABEL = re.compile(r"^(?:\\(?:textbf|text|mathrm|mathbf|textrm)\s*\{\s*\(?([A-Z])\)?\s*\}|\(([A-Z])\))")
_CHOICE_WRAPPING = re.compile(r"^\\(?:textbf|text|mathrm|mathbf|textrm)\s*\{\s*\(([A-Z])\)\s*(.+)\}$")


# --------------------------------------------------------------------------------- helpers
def exact_number(s: str | None) -> Fraction | None:
    """``s`` as an exact number when it is a plain one (``$``, ``\\!``, spaces, a thousands comma, a unit
    and a ``\\text{}`` wrapper ignored: ``10,\\!080``, ``90^\\circ``, ``5.4 \\text{ cents}``), else None."""
    if s is None:
        return None
    t = _LATEX_SPACE.sub("", unwrap(str(s)).replace("\\$", "")).strip()
    t = _TEXT_WRAPPER.sub(r"\1", t).strip()
    t = _UNIT.sub("", t).strip()
    return Fraction(t.replace(",", "")) if _PLAIN_NUMBER.fullmatch(t) else None


def exact_decimals(latex: str) -> str:
    """``latex`` with every decimal written as the fraction it is (``3.21`` → ``\\frac{321}{100}``), so
    math-verify compares exactly instead of rounding floats."""
    return _DECIMAL.sub(lambda m: f"\\frac{{{int(m.group(1) + m.group(2))}}}{{1{'0' * len(m.group(2))}}}", latex)


def qualified(answer: str, target: str) -> bool:
    """Whether ``answer`` negates, hedges, bounds or judges its value where the gold ``target`` does not
    (a qualifier the gold itself carries, e.g. an inequality gold's ``\\le``, does not count). Relation
    symbols count only against a single-value gold: an interval gold may be answered by an inequality."""
    checks = list(_WORD_QUALIFIERS)
    if not _MANY_VALUES.search(target) and not _RELATION.search(target):
        checks.append(_RELATION)
    return any(rx.search(answer) and not rx.search(target) for rx in checks)


# --------------------------------------------------------------------------------- GSM8K
def gsm8k_answer(text: str) -> str | None:
    """The final statement's answer ("The answer is 42", ``\\boxed{42}``, ``#### 42``), or None."""
    return last_answer(text)


def gsm8k_equivalent(pred: str | None, target: str) -> bool:
    """Whether ``pred`` states the target's number exactly: one number, not negated, hedged, bounded or
    judged wrong, read as the BBH integers are (:func:`cotgap.tasks.extraction.stated_answer`)."""
    if pred is None:
        return False
    a, b = stated_answer(pred, "number"), stated_answer(target, "number")
    return a is not None and a == b


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
    """The response's final answer (see :func:`cotgap.tasks.extraction.last_answer`), undecorated; None
    when it has no finished final statement."""
    answer = last_answer(text)
    return unwrap(answer) or None if answer is not None else None


def choice_split(answer: str) -> tuple[str | None, str]:
    """(answer-choice letter, the rest) of ``answer``: ``\\textbf{(C) }27`` → (C, 27), ``\\text{(C)}`` →
    (C, ""), ``C`` → (C, ""); (None, answer) when it opens with no choice label."""
    m = _CHOICE_WRAPPING.match(answer)
    if m:
        return m.group(1), m.group(2).strip()
    m = _CHOICE_LABEL.match(answer)
    if m:
        return m.group(1) or m.group(2), _LATEX_SPACE.sub(" ", answer[m.end() :]).strip(" :")
    if re.fullmatch(r"[A-Z]", answer):
        return answer, ""
    return None, answer


def math_verify_equal(gold: str, answer: str) -> bool:
    """math-verify's equivalence of the two expressions, decimals compared exactly (:func:`exact_decimals`)."""
    from math_verify import parse, verify

    try:
        g = parse(f"${exact_decimals(gold)}$")
        p = parse(f"${exact_decimals(answer.replace('$', ''))}$")
        return bool(g and p and verify(g, p))
    except Exception:  # noqa: BLE001 — math-verify's parser gives up on some inputs: not equivalent
        return False


def stated_values(answer: str) -> list[str]:
    """The values an answer states: the content of each box it holds ("the answer is $\\boxed{5}$ cm";
    "$\\boxed{15\\frac{39}{40}}$, or $\\boxed{\\frac{639}{40}}$"), or the answer itself when it holds none."""
    return [unwrap(c) for c in box_contents(answer)] or [answer]


def value_equals(value: str, gold: str) -> bool:
    """Whether one stated ``value`` is the (undecorated) ``gold``: answer-choice labels read, then plain numbers
    as exact fractions, anything else by math-verify with exact decimals."""
    gold_letter, gold_rest = choice_split(gold)
    letter, rest = choice_split(value)
    if gold_letter and not gold_rest:  # the gold is an answer choice: the letter decides
        return letter == gold_letter and not re.search(r"\([A-Z]\)|\b[A-Z]\b", rest)
    if letter:  # "(C) 27": the value after the label, if any, is the answer
        if not rest:
            return False
        value = rest
    a, b = exact_number(value), exact_number(gold)
    if a is not None and b is not None:
        return a == b
    return math_verify_equal(gold, value)


def answer_equals(answer: str, target: str) -> bool:
    """Whether the final ``answer`` states the gold ``target``: every value it states (each box in its
    sentence) is the gold and unqualified — "\\boxed{27} or \\boxed{28}" is not 28. With one value or none the
    whole answer must be unqualified ("the answer is $\\boxed{27}$ or more"); with several that all state the
    gold, the words between them are not read ("$\\boxed{15\\frac{39}{40}}$, or $\\boxed{\\frac{639}{40}}$")."""
    gold = unwrap(str(target))
    values = stated_values(answer)
    checked = values if len(values) > 1 else [answer]
    return not any(qualified(t, gold) for t in checked) and all(value_equals(v, gold) for v in values)


def competition_equivalent(response: str, target: str) -> bool:
    """Whether ``response`` finishes with a statement of the gold ``target``."""
    answer = competition_answer(response)
    return answer is not None and answer_equals(answer, target)


def lm_eval_aime_correct(response: str, stored_answer) -> bool:
    """lm-eval's own ``aime`` scoring of ``response`` against the answer as stored."""
    from lm_eval.tasks.aime.utils import process_results

    return bool(process_results({"answer": stored_answer}, [response])["exact_match"])


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
        out.append(
            [doc["target"] if competition_equivalent(r, doc["target"]) else (competition_answer(r) or INVALID) for r in rs]
        )
    return out
