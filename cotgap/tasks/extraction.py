"""Answer extraction — ONE code path shared by evaluation and the teacher correctness filter.

Teacher generations are produced by running the task through lm-eval on the train split, so a
rationale is "correct" exactly when the evaluation would score it correct: both use the
task YAML's filter pipeline, which calls :func:`robust_filter` below.

``robust`` scoring takes the last "the answer is X" (case-insensitive; also accepts
``\\boxed{X}`` as a fallback), strips trailing punctuation, and compares per answer type
inferred from the gold target: options ``(A)``…, Yes/No, True/False, valid/invalid, integers
(compared as numbers, so ``12.0`` == ``12``), and free text (whitespace-normalised; word_sorting
and dyck_languages). When the prediction is equivalent to the gold target the filter returns
the target string itself, so lm-eval's ``exact_match`` scores it 1.
"""

from __future__ import annotations

import re

ANSWER_RE = re.compile(r"answer is[:\s]*(.+?)(?:\.\s*$|\.\s*\n|\n|$)", re.IGNORECASE)
BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")
OPTION_RE = re.compile(r"^\([A-Z]\)$")
NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
WORD_ANSWERS = {"yes", "no", "true", "false", "valid", "invalid"}


def answer_type(target: str) -> str:
    t = target.strip()
    if OPTION_RE.match(t):
        return "option"
    if t.lower() in WORD_ANSWERS:
        return "word"
    if re.fullmatch(r"-?\d+(?:\.\d+)?", t):
        return "number"
    return "free_text"


def last_answer(text: str) -> str | None:
    """The text after the last 'answer is' (or the last \\boxed{}), or None."""
    hits = ANSWER_RE.findall(text)
    if hits:
        return hits[-1].strip()
    boxed = BOXED_RE.findall(text)
    return boxed[-1].strip() if boxed else None


def _as_number(s: str) -> float | None:
    m = NUMBER_RE.search(s)
    if not m:
        return None
    try:
        return float(m.group(0).replace(",", ""))
    except ValueError:
        return None


def normalise(pred: str, kind: str) -> str:
    p = pred.strip().strip("*` ").rstrip(".").strip()
    if kind == "option":
        m = re.search(r"\(([A-Za-z])\)", p) or re.fullmatch(r"([A-Za-z])", p)
        return f"({m.group(1).upper()})" if m else p
    if kind == "word":
        m = re.match(r"[A-Za-z]+", p)
        return m.group(0).lower() if m else p.lower()
    if kind == "free_text":
        return " ".join(p.split())
    return p


def is_correct(text: str, target: str) -> bool:
    pred = last_answer(text)
    return pred is not None and equivalent(pred, target)


def equivalent(pred: str, target: str) -> bool:
    kind = answer_type(target)
    if kind == "number":
        a, b = _as_number(pred), _as_number(target)
        return a is not None and b is not None and abs(a - b) < 1e-9
    if kind == "word":
        return normalise(pred, kind) == target.strip().lower()
    return normalise(pred, kind) == normalise(target, kind)


def robust_extract(text: str, target: str) -> str:
    """What lm-eval compares to the target: the target itself when equivalent, else the answer."""
    pred = last_answer(text)
    if pred is None:
        return "[invalid]"
    return target if equivalent(pred, target) else pred


def robust_filter(resps, docs):
    """lm-eval ``custom`` filter: ``resps`` is a list (per doc) of lists of generations."""
    return [[robust_extract(r, doc["target"]) for r in rs] for rs, doc in zip(resps, docs)]
