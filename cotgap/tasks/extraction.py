"""Answer extraction — ONE code path shared by evaluation and the teacher correctness filter.

Teacher generations are produced by running the task through lm-eval on the train split, so a
rationale is "correct" exactly when the evaluation would score it correct: both use the
task YAML's filter pipeline, which calls :func:`robust_filter` below (math tasks:
:mod:`cotgap.tasks.math_answers`). Every task has two filters, both computed on every run:

``strict`` reproduces lm-eval's ``bbh_cot_fewshot`` scoring: the generation cut at lm-eval's stop
strings (``"</s>"``, ``"Q"``, ``"\n\n"``), then its regex ``(?<=the answer is )(.*)(?=.)``. Its two
traps are kept on purpose: any capital ``Q`` ends the generation, and an answer with no period
after it loses its last character.

``robust`` scoring credits a generation only when it states one answer, and that answer is the
gold. Its rules:

- **Where the answer is.** The first sentence after the last "the answer is" (case-insensitive,
  a colon allowed): it ends at the end of the line, at a full stop followed by a space, or at a
  full-width stop ``。``/``．``; a stop inside parentheses does not end it. Without any "the
  answer is", the content of the last ``\\boxed{…}`` (braces balanced, so ``\\boxed{\\frac{1}{2}}``
  is read whole). Bold, backticks, quotes, ``$`` and a ``\\boxed{}`` wrapper are ignored.
- **Closed answer types** (inferred from the gold target): options ``(A)``…, Yes/No, True/False,
  valid/invalid, integers. The sentence must mention exactly one answer of that type, and nothing
  before that mention may negate it ("not", "never", "n't", …). So a hedge ("(C) or (B)", "63 or
  64", "either True or False"), a negation ("not (C)", "not 63") and a wrong option followed by
  another in a parenthetical ("(A) (not (C))", "(B) (C is wrong)") all score wrong, whichever of
  the answers is the gold — scoring does not guess which one the model meant. Words after the
  one answer are allowed ("(A) 01/08/2000", "No, Vina lies", "12 apples"). An option is a
  parenthesised letter, a bare letter after "(" or a hedge word ("or C"), "option C", or a
  sentence that is just the letter. Integers compare as numbers (``12.0`` == ``12``).
- **Free text** (word_sorting, dyck_languages): the sentence must equal the gold after
  whitespace normalisation, which already refuses any hedge, negation or extra option.

When the generation is credited the filter returns the target string itself, so lm-eval's
``exact_match`` scores it 1. Otherwise it returns the answer sentence as written (``[invalid]``
when there is none): for a refused hedge that sentence holds more than the bare answer, so it can
never equal the target, and it shows a reader of the records what the model actually said.
"""

from __future__ import annotations

import re

INVALID = "[invalid]"

# lm-eval's bbh_cot_fewshot, verbatim (lm_eval/tasks/bbh/cot_fewshot/_cot_fewshot_template_yaml): its stop
# strings and answer regex. ``strict`` scoring applies exactly these; ``robust`` generates with safe stops
# (``\nQ:`` instead of any capital ``Q``) and does not drop the last character of an unterminated answer.
LM_EVAL_BBH_UNTIL = ("</s>", "Q", "\n\n")
LM_EVAL_BBH_REGEX = r"(?<=the answer is )(.*)(?=.)"

ANSWER_PHRASE_RE = re.compile(r"answer is[:\s]*", re.IGNORECASE)
BOXED = "\\boxed{"
FULL_WIDTH_STOPS = "。．"
DECORATION = "*`\"'“”‘’$ \t"  # stripped from both ends of an answer
TRAILING = ".,;:!" + FULL_WIDTH_STOPS  # stripped from its end
OPTION_RE = re.compile(r"^\([A-Z]\)$")
# An option mentioned in an answer: "(C)", or a capital letter right after "(" or after a hedge,
# negation or "option"/"choice" ("(C is wrong)", "or C", "not C", "option C"). Group 1 or 2 is the letter.
OPTION_MENTION_RE = re.compile(
    r"\(([A-Za-z])\)"
    r"|(?:\(|\b(?i:or|nor|not|than|maybe|perhaps|either|neither|option|choice)\s+\(?)([A-Z])(?![\w'’])")
NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
NEGATION_RE = re.compile(r"\b(?:not|cannot|never|neither|nor)\b|n['’]t\b", re.IGNORECASE)
WORD_FAMILIES = (("yes", "no"), ("true", "false"), ("valid", "invalid"))
WORD_ANSWERS = {w for family in WORD_FAMILIES for w in family}


def answer_type(target: str) -> str:
    """The gold target's answer type: ``option``, ``word`` (Yes/No, True/False, valid/invalid),
    ``number`` or ``free_text``."""
    t = target.strip()
    if OPTION_RE.match(t):
        return "option"
    if t.lower() in WORD_ANSWERS:
        return "word"
    if re.fullmatch(r"-?\d+(?:\.\d+)?", t):
        return "number"
    return "free_text"


# --------------------------------------------------------------------------------- where the answer is
def closing_brace(text: str, open_at: int) -> int | None:
    """Index of the ``}`` that closes the ``{`` at ``open_at`` (nested braces counted), or None."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}``, read by balancing braces so that ``\\boxed{\\frac{1}{2}}``
    and ``\\boxed{{1,2}}`` come back whole; None when there is none or it is never closed."""
    start = text.rfind(BOXED)
    if start < 0:
        return None
    end = closing_brace(text, start + len(BOXED) - 1)
    return text[start + len(BOXED):end].strip() if end is not None else None


def first_sentence(line: str) -> str:
    """``line`` up to its first sentence end outside parentheses: a full stop followed by a space or
    the end of the line, or a full-width stop. A decimal point ("12.5") or a stop inside a
    parenthetical ("(not (C).)") does not end the sentence."""
    depth = 0
    for i, ch in enumerate(line):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and (ch in FULL_WIDTH_STOPS or (ch == "." and line[i + 1:i + 2].strip() == "")):
            return line[:i]
    return line


def last_answer(text: str) -> str | None:
    """The answer sentence after the last "answer is" (else the last ``\\boxed{}`` content), or None.

    The sentence, not the rest of the line: a further sentence ("… cherry. I hope this helps.")
    is the model talking, not part of its answer."""
    for m in reversed(list(ANSWER_PHRASE_RE.finditer(text))):
        sentence = first_sentence(text[m.end():].split("\n", 1)[0]).strip()
        if sentence:
            return sentence
    return last_boxed(text) or None


def unwrap(answer: str) -> str:
    """``answer`` without its decoration: bold, backticks, quotes, ``$``, trailing stops and a
    ``\\boxed{}`` wrapping the whole of it (``**(C)**.`` → ``(C)``, ``$\\boxed{63}$`` → ``63``)."""
    prev = None
    while answer != prev:
        prev = answer
        answer = answer.strip(DECORATION).rstrip(TRAILING)
        if answer.startswith(BOXED) and closing_brace(answer, len(BOXED) - 1) == len(answer) - 1:
            answer = answer[len(BOXED):-1]
    return answer


# --------------------------------------------------------------------------------- what the answer says
def option_mentions(answer: str) -> list[tuple[int, str]]:
    """(position, ``"(X)"``) of every option the answer mentions; a bare letter alone is one too."""
    found = [(m.start(1) if m.group(1) else m.start(2), f"({(m.group(1) or m.group(2)).upper()})")
             for m in OPTION_MENTION_RE.finditer(answer)]
    if not found and re.fullmatch(r"[A-Za-z]", answer):
        found = [(0, f"({answer.upper()})")]
    return found


def word_mentions(answer: str, family: tuple[str, ...]) -> list[tuple[int, str]]:
    """(position, lower-case word) of every word of ``family`` (e.g. yes/no) in the answer."""
    return [(m.start(), m.group(0).lower()) for m in re.finditer(r"[A-Za-z]+", answer)
            if m.group(0).lower() in family]


def number_mentions(answer: str) -> list[tuple[int, float]]:
    """(position, value) of every number in the answer (``1,234`` is one number)."""
    return [(m.start(), float(m.group(0).replace(",", ""))) for m in NUMBER_RE.finditer(answer)]


def sole_answer(answer: str, mentions: list[tuple[int, object]]):
    """The one answer ``mentions`` agree on, or None when they name none, several (a hedge:
    "(C) or (B)"; a correction in a parenthetical: "(A) (not (C))"), or the text before the first
    of them negates it ("not 63")."""
    if len({value for _, value in mentions}) != 1:
        return None
    position, value = mentions[0]
    return None if NEGATION_RE.search(answer[:position]) else value


def stated_answer(answer: str, kind: str, family: tuple[str, ...] = ()):
    """What ``answer`` states, as a value comparable across spellings of the same answer of type
    ``kind``; None when it states no single un-negated answer (closed types only)."""
    answer = unwrap(answer)
    if kind == "free_text":
        return " ".join(answer.split())
    if kind == "number":
        return sole_answer(answer, number_mentions(answer))
    if kind == "word":
        return sole_answer(answer, word_mentions(answer, family))
    return sole_answer(answer, option_mentions(answer))


def equivalent(answer: str, target: str) -> bool:
    """Whether ``answer`` states the gold ``target``: both read the same way, as the gold's type."""
    kind = answer_type(target)
    family = next((f for f in WORD_FAMILIES if target.strip().lower() in f), ())
    gold = stated_answer(target, kind, family)
    return gold is not None and stated_answer(answer, kind, family) == gold


def robust_extract(text: str, target: str) -> str:
    """What lm-eval compares to the target: the target itself when the generation states it, else
    the answer sentence as written (``[invalid]`` when there is none)."""
    answer = last_answer(text)
    if answer is None:
        return INVALID
    return target if equivalent(answer, target) else answer


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
