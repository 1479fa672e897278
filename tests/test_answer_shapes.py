"""Robust scoring, shape by shape: which ways of writing a final answer are credited and which are refused.

Every row goes through :func:`cotgap.tasks.extraction.robust_filter`, the function the BBH and synthetic
task YAMLs call for their ``robust`` filter (and so the teacher correctness filter): a row is credited
when the filter returns the gold target itself (lm-eval's ``exact_match`` then scores 1), refused when
it returns anything else. The rule being pinned (see the module's docstring): the answer sentence must
state exactly one answer of the gold's type, not negated; free text must equal the gold.
"""

from __future__ import annotations

import pytest

from cotgap.tasks import math_answers
from cotgap.tasks.extraction import INVALID, answer_type, robust_filter

# The table's answer types, and the type extraction infers for each from its gold target.
INFERRED = {"options": "option", "yes_no": "word", "true_false": "word", "valid_invalid": "word",
            "integers": "number", "free_text": "free_text"}

FRUIT = "apple banana cherry"


def row(kind: str, name: str, text: str, gold: str, credited: bool):
    return pytest.param(kind, text, gold, credited, id=f"{kind}-{'ok' if credited else 'refused'}-{name}")


ROWS = [
    # ------------------------------------------------------------------ options
    row("options", "plain", "So the answer is (C).", "(C)", True),
    row("options", "no_period", "So the answer is (C)", "(C)", True),
    row("options", "bold", "So the answer is **(C)**.", "(C)", True),
    row("options", "colon", "The answer is: (C)", "(C)", True),
    row("options", "capitalised_phrase", "So The Answer Is (C).", "(C)", True),
    row("options", "bare_letter", "So the answer is C.", "(C)", True),
    row("options", "lower_case", "so the answer is (c).", "(C)", True),
    row("options", "with_option_text", "So the answer is (C) 01/08/2000.", "(C)", True),
    row("options", "option_text_with_or", "So the answer is (C) Negation or Antonyms.", "(C)", True),
    row("options", "option_text_with_capital_letter", "So the answer is (C) Star Wars Episode V.", "(C)", True),
    row("options", "option_word", "So the answer is Option C.", "(C)", True),
    row("options", "same_option_restated", "So the answer is (C) (option C).", "(C)", True),
    row("options", "boxed", "So the answer is $\\boxed{(C)}$.", "(C)", True),
    row("options", "boxed_without_phrase", "Checking each option leaves \\boxed{(C)}", "(C)", True),
    row("options", "full_width_stop", "So the answer is (C)。", "(C)", True),
    row("options", "further_sentence", "So the answer is (C). I hope this helps.", "(C)", True),
    row("options", "last_answer_counts", "The answer is (A). Checking again, the answer is (C).", "(C)", True),
    row("options", "hedge", "So the answer is (C) or (B).", "(C)", False),
    row("options", "hedge_gold_second", "So the answer is (B) or (C).", "(C)", False),
    row("options", "either_or", "So the answer is either (B) or (C).", "(C)", False),
    row("options", "negated", "So the answer is not (C).", "(C)", False),
    row("options", "negated_adverb", "So the answer is definitely not (C).", "(C)", False),
    row("options", "wrong_then_gold_not", "So the answer is (A) (not (C)).", "(C)", False),
    row("options", "wrong_then_gold_maybe", "So the answer is (A) (or maybe (C)).", "(C)", False),
    row("options", "wrong_then_gold_bare_letter", "So the answer is (B) (C is wrong).", "(C)", False),
    row("options", "bare_wrong_then_gold", "So the answer is A (not (C)).", "(C)", False),
    row("options", "gold_then_other_in_parenthetical", "So the answer is (B) (C is wrong).", "(B)", False),
    row("options", "gold_then_not_other", "So the answer is (C), not B.", "(C)", False),
    row("options", "question_then_other", "So the answer is (A)? No, (C).", "(C)", False),
    row("options", "gold_only_in_further_sentence", "So the answer is (A). Actually (C).", "(C)", False),
    row("options", "gold_then_later_wrong", "The answer is (C). Then the answer is (B).", "(C)", False),
    row("options", "wrong", "So the answer is (B).", "(C)", False),
    row("options", "missing", "I am not sure which option it is.", "(C)", False),
    # ------------------------------------------------------------------ yes / no
    row("yes_no", "plain", "So the answer is Yes.", "Yes", True),
    row("yes_no", "lower_case_no_period", "so the answer is yes", "Yes", True),
    row("yes_no", "bold", "So the answer is **No**.", "No", True),
    row("yes_no", "explained_after", "So the answer is No, Vina does not tell the truth.", "No", True),
    row("yes_no", "full_width_stop", "The answer is: Yes。", "Yes", True),
    row("yes_no", "boxed_without_phrase", "Hence \\boxed{Yes}", "Yes", True),
    row("yes_no", "hedge", "So the answer is Yes or No.", "Yes", False),
    row("yes_no", "hedge_gold_second", "So the answer is No or Yes.", "Yes", False),
    row("yes_no", "negated", "So the answer is not Yes.", "Yes", False),
    row("yes_no", "wrong_then_gold_parenthetical", "So the answer is No (Yes).", "Yes", False),
    row("yes_no", "wrong", "So the answer is No.", "Yes", False),
    row("yes_no", "no_answer_word", "So the answer is plausible.", "Yes", False),
    # ------------------------------------------------------------------ True / False
    row("true_false", "plain", "So the answer is True.", "True", True),
    row("true_false", "bold", "So the answer is **False**.", "False", True),
    row("true_false", "lower_case", "so the answer is false", "False", True),
    row("true_false", "either_or", "So the answer is either True or False.", "True", False),
    row("true_false", "both", "So the answer is True and False.", "True", False),
    row("true_false", "negated_even_if_it_means_the_gold", "So the answer is not True.", "False", False),
    row("true_false", "wrong_then_gold_parenthetical", "So the answer is False (True).", "True", False),
    row("true_false", "wrong", "So the answer is False.", "True", False),
    # ------------------------------------------------------------------ valid / invalid
    row("valid_invalid", "plain", "So the answer is valid.", "valid", True),
    row("valid_invalid", "bold", "So the answer is **invalid**.", "invalid", True),
    row("valid_invalid", "capitalised", "So the answer is Invalid.", "invalid", True),
    row("valid_invalid", "hedge", "So the answer is valid or invalid.", "valid", False),
    row("valid_invalid", "negated_even_if_it_means_the_gold", "So the answer is not valid.", "invalid", False),
    row("valid_invalid", "invalid_is_not_valid", "So the answer is invalid.", "valid", False),
    # ------------------------------------------------------------------ integers
    row("integers", "plain", "So the answer is 63.", "63", True),
    row("integers", "no_period", "So the answer is 63", "63", True),
    row("integers", "colon", "The answer is: 63", "63", True),
    row("integers", "bold", "So the answer is **63**.", "63", True),
    row("integers", "boxed", "So the answer is $\\boxed{63}$.", "63", True),
    row("integers", "boxed_without_phrase", "Adding up gives \\boxed{63}", "63", True),
    row("integers", "as_float", "So the answer is 63.0.", "63", True),
    row("integers", "negative", "So the answer is -12.", "-12", True),
    row("integers", "thousands_separator", "So the answer is 1,234.", "1234", True),
    row("integers", "with_unit", "So the answer is 7 apples.", "7", True),
    row("integers", "full_width_stop", "So the answer is 63。", "63", True),
    row("integers", "further_sentence", "So the answer is 63. Double-checking, 64 was a slip.", "63", True),
    row("integers", "hedge", "So the answer is 63 or 64.", "63", False),
    row("integers", "hedge_gold_second", "So the answer is 64 or 63.", "63", False),
    row("integers", "negated", "So the answer is not 63.", "63", False),
    row("integers", "cannot_be", "So the answer is: it cannot be 63.", "63", False),
    row("integers", "wrong_then_gold_parenthetical", "So the answer is 64 (not 63).", "63", False),
    row("integers", "several_numbers_an_equation", "So the answer is 6 + 57 = 63.", "63", False),
    row("integers", "sign_matters", "So the answer is -63.", "63", False),
    row("integers", "wrong", "So the answer is 62.", "63", False),
    row("integers", "missing", "There are many of them.", "63", False),
    # ------------------------------------------------------------------ free text (word_sorting, dyck_languages)
    row("free_text", "plain", f"So the answer is {FRUIT}.", FRUIT, True),
    row("free_text", "no_period", f"So the answer is {FRUIT}", FRUIT, True),
    row("free_text", "further_sentence", f"So the answer is {FRUIT}. I hope this helps.", FRUIT, True),
    row("free_text", "full_width_stop", f"So the answer is {FRUIT}。", FRUIT, True),
    row("free_text", "extra_whitespace", "So the answer is apple  banana\tcherry.", FRUIT, True),
    row("free_text", "bold", f"So the answer is **{FRUIT}**.", FRUIT, True),
    row("free_text", "quoted", f'So the answer is "{FRUIT}".', FRUIT, True),
    row("free_text", "boxed", f"So the answer is $\\boxed{{{FRUIT}}}$.", FRUIT, True),
    row("free_text", "dyck", "So the answer is ] ) }.", "] ) }", True),
    row("free_text", "dyck_no_period", "So the answer is ] ) }", "] ) }", True),
    row("free_text", "boxed_nested_braces", "so the value is \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", True),
    row("free_text", "boxed_set_braces", "the set is \\boxed{{1,2}}", "{1,2}", True),
    row("free_text", "reordered", "So the answer is banana apple cherry.", FRUIT, False),
    row("free_text", "hedge", f"So the answer is {FRUIT} or apple cherry banana.", FRUIT, False),
    row("free_text", "negated", f"So the answer is not {FRUIT}.", FRUIT, False),
    row("free_text", "wrong_then_gold_parenthetical", f"So the answer is cherry banana apple ({FRUIT}).", FRUIT,
        False),
    row("free_text", "word_missing", "So the answer is apple cherry.", FRUIT, False),
    row("free_text", "missing", "The words are hard to sort.", FRUIT, False),
]


@pytest.mark.parametrize("kind,text,gold,credited", ROWS)
def test_answer_shape(kind, text, gold, credited):
    assert answer_type(gold) == INFERRED[kind], "the row's answer type is the one extraction infers from its gold"
    out = robust_filter([[text]], [{"target": gold}])[0][0]
    if credited:
        assert out == gold
    else:
        assert out != gold


def test_table_covers_every_type_both_ways():
    seen = {(p.values[0], p.values[3]) for p in ROWS}
    assert seen == {(kind, credited) for kind in INFERRED for credited in (True, False)}


@pytest.mark.parametrize("text,gold,shown", [
    pytest.param("So the answer is (C) or (B).", "(C)", "(C) or (B)", id="hedge_shown_as_written"),
    pytest.param("So the answer is not 63.", "63", "not 63", id="negation_shown_as_written"),
    pytest.param("So the answer is (A) (not (C)). Sorry.", "(C)", "(A) (not (C))", id="parenthetical_kept_whole"),
    pytest.param("No answer here.", "63", INVALID, id="missing_is_invalid"),
])
def test_refused_answer_is_returned_as_written(text, gold, shown):
    """A refused generation's filtered answer is its answer sentence, which records show the reader."""
    assert robust_filter([[text]], [{"target": gold}]) == [[shown]]


@pytest.mark.parametrize("text,credited", [
    pytest.param("The answer is 42.", True, id="plain"),
    pytest.param("so **The answer is $42.00.**", True, id="dollars_bold"),
    pytest.param("#### 42", True, id="hashes"),
    pytest.param("The answer is 42 or 43.", False, id="hedge"),
    pytest.param("The answer is not 42.", False, id="negated"),
    pytest.param("The answer is 43 (not 42).", False, id="wrong_then_gold_parenthetical"),
])
def test_gsm8k_reads_numbers_the_same_way(text, credited):
    out = math_answers.gsm8k_robust_filter([[text]], [{"target": "42"}])[0][0]
    assert (out == "42") is credited


def test_task_yamls_call_this_filter():
    """The BBH and synthetic YAMLs' ``utils.robust_filter`` is the function the table exercises."""
    from task_configs.bbh import utils as bbh_utils
    from task_configs.synthetic import utils as synthetic_utils

    assert bbh_utils.robust_filter is robust_filter and synthetic_utils.robust_filter is robust_filter
