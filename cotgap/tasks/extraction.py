"""Answer extraction — ONE code path shared by evaluation and the teacher correctness filter.

Teacher generations are produced by running the task through lm-eval on the train split, so a
rationale is "correct" exactly when the evaluation would score it correct: both use the
task YAML's filter pipeline, which calls :func:`robust_filter` below (math tasks:
:mod:`cotgap.tasks.math_answers`, which reads the final statement with :func:`last_answer` too).
Every task has two filters, both computed on every run:

``strict`` reproduces lm-eval's ``bbh_cot_fewshot`` scoring: the generation cut at lm-eval's stop
strings (``"</s>"``, ``"Q"``, ``"\n\n"``), then its regex ``(?<=the answer is )(.*)(?=.)``. Its two
traps are kept on purpose: any capital ``Q`` ends the generation, and an answer with no period
after it loses its last character.

``robust`` scoring credits a generation only when it finishes with one statement of one answer,
and that answer is the gold. Scoring never guesses what the model meant: every shape it cannot
read as exactly one un-qualified answer scores wrong. Its rules:

- **The final statement** is the last "answer is" / "final answer:" / ``####`` phrase or the last
  ``\\boxed{…}`` / ``\\fbox{…}``, whichever comes later (a box inside the phrase's own sentence
  belongs to it: "the answer is $\\boxed{5}$"). A phrase's answer is the first sentence after it: it
  ends at the end of the line, at a full stop followed by a space, or at a full-width stop
  ``。``/``．``; a stop inside brackets or braces does not end it; when the phrase ends its line,
  the answer is the first sentence of the next non-empty line. A box's answer is its content, braces
  balanced (``\\boxed{\\frac{1}{2}}`` whole). A phrase that is a check, not a statement, is skipped:
  one inside a conditional clause ("if the answer is 27, …", "whether the answer is …") and a verdict
  ("so our answer is correct"). Without any statement there is no answer: the last number of the
  text is never read.
- **Unfinished.** The filter sees only the text, not why generation stopped, so "unfinished" is
  what the text itself shows. The final statement is unfinished when it is cut inside its own
  syntax — a ``\\boxed{`` never closed, a ``{`` in the answer never closed, a phrase with nothing
  after it — or when text follows it and the response ends mid-sentence (its last character a
  letter, digit or one of ``,;:-+=/\\({[``): the model was still working when it was cut (typically
  at ``max_gen_toks``), so what it would have concluded is unknown, and such a rationale is no
  training example either. An unfinished final statement scores wrong; scoring never falls back
  to an earlier statement. An answer that runs to the very end of the text is read as finished —
  a model that stops on its end-of-sequence token often leaves the period out — which is the one
  cut the text cannot show: a generation cut inside the answer itself ("the answer is 1", cut
  from "12") reads as the answer it shows.
- **Qualified statements.** A negation before the phrase in its clause ("I don't think the answer
  is (C)") makes the clause the answer; a box negated right before it ("is not $\\boxed{5}$",
  "x \\neq \\boxed{5}"), judged wrong right after it ("\\boxed{5} is wrong") or sharing its
  sentence with a box of different content ("\\boxed{5} or \\boxed{6}") makes the sentence the
  answer; the type rules below then refuse it. Other words around a box are not read: "can have at
  most $\\boxed{2}$ pencils" and "…, or $\\boxed{1.25}$" are how correct solutions state answers
  (reading the whole clause refused 14 of the 500 MATH-500 reference solutions; this reading
  refuses none).
- **Closed answer types** (inferred from the gold target): options ``(A)``…, Yes/No, True/False,
  valid/invalid, integers. The answer must mention exactly one answer of that type; nothing before
  that mention may negate it ("not", "never", "n't", ``\\neq``, …) and nothing right after it may
  judge it wrong ("(A) is wrong.", "63 is not possible"). So a hedge ("(C) or (B)", "63 or 64",
  "either True or False"), a negation ("not (C)", "not 63"), a second option ("B (A)", "(A) (not
  (C))", "(B) (C is wrong)") all score wrong, whichever of the answers is the gold. Words after the
  one answer are allowed ("(A) 01/08/2000", "No, Vina lies", "12 apples"). An option is a
  parenthesised letter, a bare letter after "(" or a hedge word ("or C"), "option C", a capital
  letter opening the answer ("C, the gray car", "B (A)"), or an answer that is just the letter.
- **Integers** additionally refuse a hedge anywhere ("or", "either": "63 or more"), a bound or an
  approximation before the number ("at least", "more than", "up to", "about", "≥", "~", …) and a
  bound after it ("63+", "63 and up"). A number is digits with an optional decimal part, thousands
  separated by commas only in groups of three ("1,234"; "6,3" is two numbers). Numbers compare
  exactly (``63.0`` == ``63``; ``1,450,001`` != ``1,450,000``), as fractions, never as floats.
- **Free text** (word_sorting, dyck_languages): the answer must equal the gold after whitespace
  normalisation, which already refuses any hedge, negation or extra option.

When the generation is credited the filter returns the target string itself, so lm-eval's
``exact_match`` scores it 1. Otherwise it returns the answer as written (``[invalid]`` when there
is no finished final statement): for a refused hedge that answer holds more than the bare answer,
so it can never equal the target, and it shows a reader of the records what the model actually said.
"""

from __future__ import annotations

import re
from fractions import Fraction

INVALID = "[invalid]"

# lm-eval's bbh_cot_fewshot, verbatim (lm_eval/tasks/bbh/cot_fewshot/_cot_fewshot_template_yaml): its stop
# strings and answer regex. ``strict`` scoring applies exactly these; ``robust`` generates with safe stops
# (``\nQ:`` instead of any capital ``Q``) and does not drop the last character of an unterminated answer.
LM_EVAL_BBH_UNTIL = ("</s>", "Q", "\n\n")
LM_EVAL_BBH_REGEX = r"(?<=the answer is )(.*)(?=.)"

# "answer is", "Final Answer:" / "**Final Answer**:", and GSM8K's own "#### 42".
ANSWER_PHRASE_RE = re.compile(r"(?:answer\s+is|final\s+answer\s*\**\s*[:：]|####)[:\s]*", re.IGNORECASE)
BOXES = ("\\boxed{", "\\fbox{")
FULL_WIDTH_STOPS = "。．"
DECORATION = "*`\"'“”‘’$ \t"  # stripped from both ends of an answer
TRAILING = ".,;:!" + FULL_WIDTH_STOPS  # stripped from its end
DISPLAY_MATH = (("\\[", "\\]"), ("\\(", "\\)"))
CLAUSE_END = ".!?;:,\n" + FULL_WIDTH_STOPS
MID_SENTENCE_END = ",;:-+=/\\({["  # a text ending in one of these (or a letter or digit) was cut mid-sentence
OPTION_RE = re.compile(r"^\([A-Z]\)$")
# An option mentioned in an answer: "(C)", or a capital letter right after "(" or after a hedge,
# negation or "option"/"choice" ("(C is wrong)", "or C", "not C", "option C"), or a capital letter opening
# the answer and followed by punctuation, a bracket or another capital ("C, the car", "B (A)", "C The car").
OPTION_MENTION_RE = re.compile(
    r"\(([A-Za-z])\)"
    r"|(?:\(|\b(?i:or|nor|not|than|maybe|perhaps|either|neither|option|choice)\s+\(?)([A-Z])(?![\w'’])"
    r"|^([A-Z])(?=\s*[.,;:!)(\[]|\s+[A-Z(])"
)
# Digits with an optional decimal part; commas only between groups of three ("1,234"; "6,3" is two numbers).
NUMBER_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+(?!\d|,\d)|\d+)(?:\.\d+)?(?!\d)")
NEGATION_RE = re.compile(r"\b(?:not|cannot|never|neither|nor)\b|n['’]t\b|\\neq?(?![a-z])|\\not(?![a-z])|≠", re.IGNORECASE)
# Right before a box: a negation ("is not $\\boxed{5}$", "x \\neq \\boxed{5}", "isn't \\boxed{5}").
NEGATED_BOX_RE = re.compile(r"(?:\b(?:not|never)|n['’]t|\\neq?|\\not|≠)[\s$\\(\[]*$", re.IGNORECASE)
# A phrase that is a check, not a statement: inside a conditional ("if the answer is 27, …", "whether the
# answer is …") or a verdict on an answer ("so our answer is correct").
CONDITIONAL_RE = re.compile(r"\b(?:if|whether|unless|suppose|supposing|assuming)\b", re.IGNORECASE)
VERDICT_RE = re.compile(
    r"(?:indeed\s+|also\s+|probably\s+)?(?:correct|right|reasonable|consistent|plausible|confirmed"
    r"|verified|accurate)\b",
    re.IGNORECASE,
)
HEDGE_RE = re.compile(r"\b(?:or|either)\b", re.IGNORECASE)
BOUND_BEFORE_RE = re.compile(
    r"\b(?:at\s+(?:least|most)|(?:more|less|fewer|greater|larger|smaller|higher|lower)\s+than|up\s+to|over|under"
    r"|approximately|approx|about|around|roughly|nearly|almost)\b|[<>≤≥≈~]|\\(?:geq?|leq?|gt|lt|approx|sim)(?![a-z])",
    re.IGNORECASE,
)
BOUND_AFTER_RE = re.compile(
    r"^\s*(?:\+(?!\s*\d)|and\s+(?:up|above|over|more|higher)\b|plus\b|at\s+(?:least|most)\b|or\s+(?:more|less|fewer)\b)",
    re.IGNORECASE,
)
# Right after an answer: a judgement that it is wrong ("(A) is wrong.", "63 is not possible", "(A) isn't").
# Lower case only, so option text such as "(A) Not Another Teen Movie" is not read as one.
_CLOSE = r"^[\s)\]*`'\"”’}$]*"
JUDGED_WRONG_RE = re.compile(
    _CLOSE + r"(?:(?:is|are|was|were|seems|would\s+be|must\s+be|can\s+be|could\s+be)\s+)?(?:(?:\w+ly|also)\s+)?"
    r"(?:not|never|wrong|incorrect|impossible|ruled\s+out|eliminated|excluded)\b"
    r"|" + _CLOSE + r"(?:(?:isn|aren|wasn|weren|can|couldn)['’]t|cannot)\b"
)
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


def last_box_start(text: str) -> tuple[int, int]:
    """(index, marker length) of the last ``\\boxed{`` or ``\\fbox{``; index -1 when there is none."""
    return max((text.rfind(box), len(box)) for box in BOXES)


def box_contents(text: str) -> list[str]:
    """The content of every closed ``\\boxed{…}`` / ``\\fbox{…}`` in ``text``, in order."""
    found = []
    for box in BOXES:
        at = text.find(box)
        while at >= 0:
            close = closing_brace(text, at + len(box) - 1)
            if close is not None:
                found.append((at, text[at + len(box) : close].strip()))
            at = text.find(box, at + 1)
    return [content for _, content in sorted(found)]


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}`` (or ``\\fbox{…}``), read by balancing braces so that
    ``\\boxed{\\frac{1}{2}}`` and ``\\boxed{{1,2}}`` come back whole; None when there is none or it is
    never closed."""
    start, width = last_box_start(text)
    if start < 0:
        return None
    end = closing_brace(text, start + width - 1)
    return text[start + width : end].strip() if end is not None else None


def first_sentence(line: str) -> str:
    """``line`` up to its first sentence end outside brackets and braces: a full stop followed by a
    space or the end of the line, or a full-width stop. A decimal point ("12.5") or a stop inside a
    parenthetical ("(not (C).)") does not end the sentence."""
    depth = 0
    for i, ch in enumerate(line):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and (ch in FULL_WIDTH_STOPS or (ch == "." and line[i + 1 : i + 2].strip() == "")):
            return line[:i]
    return line


def sentence_span(text: str, pos: int) -> tuple[int, int] | None:
    """(start, end) of the first sentence at or after ``pos``: on ``pos``'s own line, or on the next
    non-empty line when the rest of that line is blank or decoration; None when nothing follows."""
    while pos < len(text):
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        line = text[pos:line_end]
        if line.strip(DECORATION):
            start = pos + len(line) - len(line.lstrip())
            return start, start + len(first_sentence(text[start:line_end]).rstrip())
        pos = line_end + 1
    return None


def clause_start(text: str, pos: int) -> int:
    """Where the clause holding ``pos`` begins: after the last sentence or clause mark before it."""
    return max(text.rfind(mark, 0, pos) for mark in CLAUSE_END) + 1


def sentence_start(text: str, pos: int) -> int:
    """Where the sentence holding ``pos`` begins: after the last line break or sentence stop before it."""
    return max(text.rfind(mark, 0, pos) + len(mark) for mark in ("\n", ". ", "! ", "? ", *FULL_WIDTH_STOPS))


def leaves_brace_open(answer: str) -> bool:
    """Whether a ``{`` in ``answer`` is never closed ("\\frac{1}{", cut); stray closers ("] ) }", a
    Dyck answer) are no sign of a cut."""
    depth = 0
    for ch in answer:
        depth = depth + 1 if ch == "{" else max(0, depth - 1) if ch == "}" else depth
    return depth > 0


def ends_mid_sentence(text: str) -> bool:
    """Whether ``text`` stops in the middle of a sentence (a letter, digit or an open operator last)."""
    tail = text.rstrip()
    return bool(tail) and (tail[-1].isalnum() or tail[-1] in MID_SENTENCE_END)


def phrase_statements(text: str):
    """(phrase start, answer span) of every answer phrase, last first. A check is no statement and is
    skipped: a phrase in a conditional clause ("if the answer is 27, …") or followed by a verdict ("so our
    answer is correct"). The span is None when nothing follows the phrase."""
    for m in reversed(list(ANSWER_PHRASE_RE.finditer(text))):
        span = sentence_span(text, m.end())
        if CONDITIONAL_RE.search(text[clause_start(text, m.start()) : m.start()]):
            continue
        if span is not None and VERDICT_RE.match(unwrap(text[span[0] : span[1]])):
            continue
        yield m.start(), span


def box_is_qualified(text: str, start: int, close: int, end: int) -> bool:
    """Whether the box at ``start``…``close`` is negated right before it ("is not $\\boxed{5}$", "x \\neq
    \\boxed{5}"), judged wrong right after it ("\\boxed{5} is wrong"), or shares its sentence (up to
    ``end``) with a box of different content ("\\boxed{5} or \\boxed{6}"). Other words around a box are
    not read: "at most $\\boxed{2}$ pencils" and "…, or $\\boxed{1.25}$" are how correct solutions state
    their answers."""
    contents = {" ".join(c.split()) for c in box_contents(text[sentence_start(text, start) : end])}
    negated = NEGATED_BOX_RE.search(text[max(0, start - 40) : start])
    return bool(negated or JUDGED_WRONG_RE.search(text[close + 1 : end]) or len(contents) > 1)


def phrase_answer(text: str, phrase_at: int, span: tuple[int, int]) -> tuple[str, int]:
    """A phrase's answer and its end; from the clause start when the clause negates the phrase
    ("I don't think the answer is (C)"), so that the type rules see the negation."""
    clause = clause_start(text, phrase_at)
    start = clause if NEGATION_RE.search(text[clause:phrase_at]) else span[0]
    return text[start : span[1]], span[1]


def box_answer(text: str, box: int, width: int) -> tuple[str, int] | None:
    """A box's answer (its content; its whole sentence when qualified) and the end of its sentence;
    None when the box never closes."""
    close = closing_brace(text, box + width - 1)
    if close is None:
        return None
    rest = sentence_span(text, close + 1)
    end = rest[1] if rest is not None and "\n" not in text[close + 1 : rest[0]] else close + 1
    if box_is_qualified(text, box, close, end):
        return text[sentence_start(text, box) : end], end
    return text[box + width : close], end


def final_statement(text: str) -> tuple[str, int] | None:
    """(answer as written, end of its sentence) of the final statement; None when there is none or it is
    unfinished (see the module docstring)."""
    phrase = next(phrase_statements(text), None)
    box, width = last_box_start(text)
    if phrase is not None and (phrase[1] is None or box < phrase[1][1]):
        found = phrase_answer(text, *phrase) if phrase[1] is not None else None
    else:
        found = box_answer(text, box, width) if box >= 0 else None
    if found is None:
        return None
    answer, end = found
    if leaves_brace_open(answer):
        return None
    if text[end:].strip(DECORATION + TRAILING + "\n") and ends_mid_sentence(text):
        return None
    return answer.strip(), end


def last_answer(text: str) -> str | None:
    """The answer of the final statement, as written; None when there is no finished one.

    The sentence, not the rest of the line: a further sentence ("… cherry. I hope this helps.")
    is the model talking, not part of its answer."""
    found = final_statement(text)
    return found[0] or None if found is not None else None


def unwrap(answer: str) -> str:
    """``answer`` without its decoration: bold, backticks, quotes, ``$``, trailing stops and a
    ``\\boxed{}``, ``\\[…\\]`` or ``\\(…\\)`` wrapping the whole of it (``**(C)**.`` → ``(C)``,
    ``$\\boxed{63}$`` → ``63``)."""
    prev = None
    while answer != prev:
        prev = answer
        answer = answer.strip(DECORATION).rstrip(TRAILING)
        for box in BOXES:
            if answer.startswith(box) and closing_brace(answer, len(box) - 1) == len(answer) - 1:
                answer = answer[len(box) : -1]
        for left, right in DISPLAY_MATH:
            if answer.startswith(left) and answer.endswith(right) and len(answer) >= len(left + right):
                answer = answer[len(left) : -len(right)]
    return answer


# --------------------------------------------------------------------------------- what the answer says
# A mention: (start, end, value) of one answer of the gold's type inside the answer text.
def option_mentions(answer: str) -> list[tuple[int, int, str]]:
    """Every option the answer mentions; an answer that is just a letter is one too."""
    found = []
    for m in OPTION_MENTION_RE.finditer(answer):
        group = next(g for g in (1, 2, 3) if m.group(g))
        found.append((m.start(group), m.end(), f"({m.group(group).upper()})"))
    if not found and re.fullmatch(r"[A-Za-z]", answer):
        found = [(0, 1, f"({answer.upper()})")]
    return found


def word_mentions(answer: str, family: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """Every word of ``family`` (e.g. yes/no) in the answer, lower-cased."""
    return [(m.start(), m.end(), m.group(0).lower()) for m in re.finditer(r"[A-Za-z]+", answer) if m.group(0).lower() in family]


def number_mentions(answer: str) -> list[tuple[int, int, Fraction]]:
    """Every number in the answer, as an exact fraction (``1,234`` is one number, ``6,3`` two)."""
    return [(m.start(), m.end(), Fraction(m.group(0).replace(",", ""))) for m in NUMBER_RE.finditer(answer)]


def number_is_qualified(answer: str, mentions) -> bool:
    """Whether a number answer hedges ("or", "either" anywhere) or bounds its number ("at least 63",
    "about 63", "≥ 63" before it; "63+", "63 and up" after it)."""
    return bool(
        HEDGE_RE.search(answer)
        or BOUND_BEFORE_RE.search(answer[: mentions[0][0]])
        or BOUND_AFTER_RE.search(answer[mentions[-1][1] :])
    )


def sole_answer(answer: str, mentions: list[tuple[int, int, object]], kind: str = ""):
    """The one answer ``mentions`` agree on, or None when they name none or several (a hedge:
    "(C) or (B)"; a correction in a parenthetical: "(A) (not (C))"), the text before the first of them
    negates it ("not 63"), the text right after one of them judges it wrong ("(A) is wrong"), or, for
    numbers, the answer hedges or bounds it ("63 or more", "at least 63")."""
    if len({value for _, _, value in mentions}) != 1:
        return None
    if NEGATION_RE.search(answer[: mentions[0][0]]):
        return None
    if any(JUDGED_WRONG_RE.search(answer[end:]) for _, end, _ in mentions):
        return None
    if kind == "number" and number_is_qualified(answer, mentions):
        return None
    return mentions[0][2]


def stated_answer(answer: str, kind: str, family: tuple[str, ...] = ()):
    """What ``answer`` states, as a value comparable across spellings of the same answer of type
    ``kind``; None when it states no single un-negated answer (closed types only)."""
    answer = unwrap(answer)
    if kind == "free_text":
        return " ".join(answer.split())
    if kind == "number":
        return sole_answer(answer, number_mentions(answer), kind)
    if kind == "word":
        return sole_answer(answer, word_mentions(answer, family), kind)
    return sole_answer(answer, option_mentions(answer), kind)


def equivalent(answer: str, target: str) -> bool:
    """Whether ``answer`` states the gold ``target``: both read the same way, as the gold's type."""
    kind = answer_type(target)
    family = next((f for f in WORD_FAMILIES if target.strip().lower() in f), ())
    gold = stated_answer(target, kind, family)
    return gold is not None and stated_answer(answer, kind, family) == gold


def robust_extract(text: str, target: str) -> str:
    """What lm-eval compares to the target: the target itself when the generation states it, else
    the answer as written (``[invalid]`` when there is no finished final statement)."""
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
