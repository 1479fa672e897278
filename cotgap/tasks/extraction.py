"""Answer extraction — ONE code path shared by evaluation and the teacher correctness filter.

Teacher generations are produced by running the task through lm-eval on the train split, so a
rationale is "correct" exactly when the evaluation would score it correct: both use the
task YAML's filter pipeline, which calls :func:`robust_filter` below (math tasks:
:mod:`cotgap.tasks.math_answers`). Every task has two filters, both computed on every run:

``strict`` reproduces lm-eval's ``bbh_cot_fewshot`` scoring: the generation cut at lm-eval's stop
strings (``"</s>"``, ``"Q"``, ``"\n\n"``), then its regex ``(?<=the answer is )(.*)(?=.)``. Its two
traps are kept on purpose: any capital ``Q`` ends the generation, and an answer with no period
after it loses its last character.

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
ANSWER_PHRASE_RE = re.compile(r"answer is[:\s]*", re.IGNORECASE)

# lm-eval's bbh_cot_fewshot, verbatim (lm_eval/tasks/bbh/cot_fewshot/_cot_fewshot_template_yaml): its stop
# strings and answer regex. ``strict`` scoring applies exactly these; ``robust`` generates with safe stops
# (``\nQ:`` instead of any capital ``Q``) and does not drop the last character of an unterminated answer.
LM_EVAL_BBH_UNTIL = ("</s>", "Q", "\n\n")
LM_EVAL_BBH_REGEX = r"(?<=the answer is )(.*)(?=.)"
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
    for m in reversed(list(ANSWER_PHRASE_RE.finditer(text))):
        # the rest of that line, as ANSWER_RE would take it (a final period dropped)
        hit = ANSWER_RE.match(text, m.start())
        if hit and hit.group(1).strip():
            return hit.group(1).strip()
    boxed = BOXED_RE.findall(text)
    return boxed[-1].strip() if boxed else None


def as_number(s: str) -> float | None:
    m = NUMBER_RE.search(s)
    if not m:
        return None
    try:
        return float(m.group(0).replace(",", ""))
    except ValueError:
        return None


def normalise(pred: str, kind: str) -> str:
    p = pred.strip().strip("*` ").rstrip(".").strip().strip('"').strip()
    if kind == "option":
        m = re.search(r"\(([A-Za-z])\)", p) or re.fullmatch(r"([A-Za-z])", p)
        return f"({m.group(1).upper()})" if m else p
    if kind == "word":
        m = re.match(r"[A-Za-z]+", p)
        return m.group(0).lower() if m else p.lower()
    if kind == "free_text":
        return " ".join(p.split())
    return p


def equivalent(pred: str, target: str) -> bool:
    kind = answer_type(target)
    if kind == "number":
        a, b = as_number(pred), as_number(target)
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


def truncate_at(text: str, stops) -> str:
    """Cut ``text`` at the first occurrence of any stop string, as lm-eval's generate_until does
    (``lm_eval.models.utils.postprocess_generated_text``)."""
    for term in stops:
        if term:
            text = text.split(term)[0]
    return text


def lm_eval_bbh_stops(resps, docs):
    """lm-eval ``custom`` filter, the first step of ``strict`` scoring: the generation as lm-eval's
    ``bbh_cot_fewshot`` would have returned it (stopped at its ``until`` strings, ``"Q"`` included).

    Robust generation stops later than lm-eval's (every robust stop string contains one of lm-eval's),
    so under greedy decoding this truncation reproduces lm-eval's own generation exactly."""
    return [[truncate_at(r, LM_EVAL_BBH_UNTIL) for r in rs] for rs in resps]


def strict_filter(resps, docs):
    """``strict`` scoring in one ``custom`` filter (for users' own YAMLs): lm-eval's stop strings, then
    lm-eval's own RegexFilter with its bbh_cot_fewshot pattern. The built-in YAMLs spell out the same
    two steps (``lm_eval_bbh_stops`` + ``function: regex``)."""
    from lm_eval.filters.extraction import RegexFilter

    return RegexFilter(regex_pattern=LM_EVAL_BBH_REGEX).apply(lm_eval_bbh_stops(resps, docs), docs)
