"""Robust scoring, shape by shape: which ways of writing a final answer are credited and which are refused.

Two tables. ``ROWS`` goes through :func:`cotgap.tasks.extraction.robust_filter`, the function the BBH and
synthetic task YAMLs call for their ``robust`` filter; ``MATH_ROWS`` through the math YAMLs' filters
(:mod:`cotgap.tasks.math_answers`). Both filters are also the teacher correctness filter. A row is credited
when the filter returns the gold target itself (lm-eval's ``exact_match`` then scores 1), refused when it
returns anything else. The rules being pinned (see the modules' docstrings): a finished final statement
of exactly one answer of the gold's type, not negated, hedged, bounded or judged wrong, equal to the gold
exactly; free text must equal the gold.
"""

from __future__ import annotations

import pytest

from cotgap.tasks import math_answers
from cotgap.tasks.extraction import INVALID, answer_type, robust_filter

# The table's answer types, and the type extraction infers for each from its gold target.
INFERRED = {
    "options": "option",
    "yes_no": "word",
    "true_false": "word",
    "valid_invalid": "word",
    "integers": "number",
    "free_text": "free_text",
}

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
    row("options", "leading_letter_then_text", "So the answer is C, the gray car.", "(C)", True),
    row("options", "option_text_opens_with_Not", "So the answer is (A) Not Another Teen Movie.", "(A)", True),
    row("options", "answer_on_next_line", "So the answer is:\n**(C)**", "(C)", True),
    row("options", "conditional_phrase_is_no_statement", "So the answer is (C). If the answer is (C), all fits.", "(C)", True),
    row("options", "verdict_phrase_is_no_statement", "So the answer is (C). Our answer is correct.", "(C)", True),
    row("options", "letter_then_gold", "So the answer is B (A).", "(A)", False),
    row("options", "gold_judged_wrong", "So the answer is (A) is wrong.", "(A)", False),
    row("options", "gold_isnt", "So the answer is (A) isn't right.", "(A)", False),
    row("options", "article_not_a_letter", "So the answer is A bird.", "(A)", False),
    row("options", "negated_phrase", "I don't think the answer is (C).", "(C)", False),
    row("options", "phrase_cut", "The answer is (C). Checking again, the answer is", "(C)", False),
    row("options", "cut_after_statement", "The answer is (C). Now let me double-check the", "(C)", False),
    row("options", "boxes_differ", "Hence \\boxed{(B)}, \\boxed{(C)}", "(C)", False),
    row("options", "negated_box", "It is not \\boxed{(C)}", "(C)", False),
    row("options", "box_never_closed", "The answer is (A). Hence \\boxed{(C", "(A)", False),
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
    row("yes_no", "explained_with_negation", "So the answer is No, Vina is not telling the truth.", "No", True),
    row("yes_no", "judged_wrong", "So the answer is Yes is wrong.", "Yes", False),
    row("yes_no", "negated_phrase", "I can't say the answer is Yes.", "Yes", False),
    # ------------------------------------------------------------------ True / False
    row("true_false", "plain", "So the answer is True.", "True", True),
    row("true_false", "bold", "So the answer is **False**.", "False", True),
    row("true_false", "lower_case", "so the answer is false", "False", True),
    row("true_false", "either_or", "So the answer is either True or False.", "True", False),
    row("true_false", "both", "So the answer is True and False.", "True", False),
    row("true_false", "negated_even_if_it_means_the_gold", "So the answer is not True.", "False", False),
    row("true_false", "wrong_then_gold_parenthetical", "So the answer is False (True).", "True", False),
    row("true_false", "wrong", "So the answer is False.", "True", False),
    row("true_false", "boxed", "Evaluating gives \\boxed{True}", "True", True),
    row("true_false", "judged_wrong", "So the answer is True is incorrect.", "True", False),
    # ------------------------------------------------------------------ valid / invalid
    row("valid_invalid", "plain", "So the answer is valid.", "valid", True),
    row("valid_invalid", "bold", "So the answer is **invalid**.", "invalid", True),
    row("valid_invalid", "capitalised", "So the answer is Invalid.", "invalid", True),
    row("valid_invalid", "hedge", "So the answer is valid or invalid.", "valid", False),
    row("valid_invalid", "negated_even_if_it_means_the_gold", "So the answer is not valid.", "invalid", False),
    row("valid_invalid", "invalid_is_not_valid", "So the answer is invalid.", "valid", False),
    row("valid_invalid", "cut_after_statement", "So the answer is valid. But premise 2 says", "valid", False),
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
    row("integers", "thousands_then_clause", "So the answer is 1,234, which is a lot.", "1234", True),
    row("integers", "digit_group_is_two_numbers", "So the answer is 6,3.", "63", False),
    row("integers", "bad_thousands_group", "So the answer is 1,2345.", "12345", False),
    row("integers", "at_least", "So the answer is at least 63.", "63", False),
    row("integers", "more_than", "So the answer is more than 63.", "63", False),
    row("integers", "plus_sign", "So the answer is 63+.", "63", False),
    row("integers", "or_more", "So the answer is 63 or more.", "63", False),
    row("integers", "about", "So the answer is about 63.", "63", False),
    row("integers", "tilde", "So the answer is ~63.", "63", False),
    row("integers", "judged_wrong", "So the answer is 63 is not possible.", "63", False),
    row("integers", "exact_not_within_tolerance", "So the answer is 1,450,001.", "1450000", False),
    row("integers", "decimal_tail_counts", "So the answer is 63.0000001.", "63", False),
    row("integers", "negated_box", "so x \\neq \\boxed{63}", "63", False),
    row("integers", "boxes_differ", "so \\boxed{63} or \\boxed{64}", "63", False),
    row("integers", "phrase_cut", "So the answer is 63. Wait, so the answer is", "63", False),
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
    row("free_text", "wrong_then_gold_parenthetical", f"So the answer is cherry banana apple ({FRUIT}).", FRUIT, False),
    row("free_text", "word_missing", "So the answer is apple cherry.", FRUIT, False),
    row("free_text", "missing", "The words are hard to sort.", FRUIT, False),
    row("free_text", "cut_after_statement", f"So the answer is {FRUIT}. Let me verify that apple", FRUIT, False),
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


# ------------------------------------------------------------------------------------------ math
# The math YAMLs' robust filters, one per answer type: GSM8K numbers, and the competition golds (MATH-500,
# AMC, AIME) by type. A row's gold is the doc's ``target`` as the loaders store it.
MATH_TYPES = ("gsm8k", "integer", "decimal", "expression", "choice", "tuple_interval", "text")
CUT = "We have 3 * 9 = 27 and"  # a solution cut at max_gen_toks, its last number the gold


def math_row(kind: str, name: str, text: str, gold: str, credited: bool):
    return pytest.param(kind, text, gold, credited, id=f"{kind}-{'ok' if credited else 'refused'}-{name}")


MATH_ROWS = [
    # ------------------------------------------------------------------ GSM8K
    math_row("gsm8k", "plain", "So 6 * 7 = 42. The answer is 42.", "42", True),
    math_row("gsm8k", "dollars_bold", "so **The answer is $42.00.**", "42", True),
    math_row("gsm8k", "hashes", "6 * 7 = 42\n#### 42", "42", True),
    math_row("gsm8k", "boxed_with_working", "So 6 * 7 = \\boxed{42} apples.", "42", True),
    math_row("gsm8k", "thousands", "The answer is 1,450,000.", "1,450,000", True),
    math_row("gsm8k", "no_statement_last_number_gold", "6 * 7 = 42", "42", False),
    math_row("gsm8k", "cut_mid_solution", "The farmer has 6 rows of 7, so 42 and then he", "42", False),
    math_row("gsm8k", "hedge", "The answer is 42 or 43.", "42", False),
    math_row("gsm8k", "negated", "The answer is not 42.", "42", False),
    math_row("gsm8k", "wrong_then_gold_parenthetical", "The answer is 43 (not 42).", "42", False),
    math_row("gsm8k", "at_least", "The answer is at least 42.", "42", False),
    math_row("gsm8k", "plus_sign", "The answer is 42+.", "42", False),
    math_row("gsm8k", "digit_group", "The answer is 4,2.", "42", False),
    math_row("gsm8k", "exact_not_within_tolerance", "The answer is 1,450,001.", "1,450,000", False),
    # ------------------------------------------------------------------ integer golds (MATH-500, AMC, AIME)
    math_row("integer", "boxed", "Thus the sum is $\\boxed{27}$.", "27", True),
    math_row("integer", "minerva_final_answer", "Final Answer: The final answer is $27$. I hope it is correct.", "27", True),
    math_row("integer", "final_answer_colon", "**Final Answer:** 27", "27", True),
    math_row("integer", "display_math_next_line", "Therefore, the final answer is:\n\\[\n\\boxed{27}\n\\]", "27", True),
    math_row("integer", "amc_float_as_stored", "\\boxed{27.0}", "27", True),
    math_row("integer", "aime_zero_padded", "\\boxed{027}", "27", True),
    math_row("integer", "amc_choice_box", "so the answer is $\\boxed{\\textbf{(C) }27}$", "27", True),
    math_row("integer", "amc_choice_box_spaced", "$\\boxed{\\textbf{(C)}\\ 27}$", "27", True),
    math_row("integer", "equal_expression", "\\boxed{\\frac{54}{2}}", "27", True),
    math_row("integer", "unit_words", "The final answer is 27 degrees.", "27", True),
    math_row("integer", "words_around_box", "Zach can have at most $\\boxed{27}$ pencils left over.", "27", True),
    math_row("integer", "restated_boxes", "$\\boxed{27}$, or $\\boxed{27.0}$ in decimals.", "27", True),
    math_row("integer", "verification_after", "So \\boxed{27}. Check: 27 / 3 = 9, so our answer is correct.", "27", True),
    math_row("integer", "not", "The final answer is not 27.", "27", False),
    math_row("integer", "neq", "The final answer is $\\neq 27$.", "27", False),
    math_row("integer", "neq_before_box", "so $x \\neq \\boxed{27}$.", "27", False),
    math_row("integer", "or", "The final answer is 27 or 28.", "27", False),
    math_row("integer", "or_in_box", "\\boxed{27 \\text{ or } 28}", "27", False),
    math_row("integer", "two_boxes", "So $\\boxed{27}$ or $\\boxed{28}$.", "28", False),
    math_row("integer", "either", "The final answer is either 27 or 28.", "27", False),
    math_row("integer", "at_least", "The final answer is at least 27.", "27", False),
    math_row("integer", "more_than", "The final answer is more than 27.", "27", False),
    math_row("integer", "plus_sign", "\\boxed{27+}", "27", False),
    math_row("integer", "geq", "\\boxed{x \\geq 27}", "27", False),
    math_row("integer", "approx", "\\boxed{\\approx 27}", "27", False),
    math_row("integer", "judged_wrong", "Hence \\boxed{27} is wrong.", "27", False),
    math_row("integer", "near_miss", "\\boxed{1450001}", "1450000", False),
    math_row("integer", "decimal_tail_counts", "\\boxed{27.0000001}", "27", False),
    math_row("integer", "times_pi", "\\boxed{27\\pi}", "27", False),
    math_row("integer", "choice_without_value", "\\boxed{\\textbf{(C)}}", "27", False),
    math_row("integer", "no_statement_last_number_gold", CUT.replace(" and", "."), "27", False),
    math_row("integer", "cut_mid_solution", CUT, "27", False),
    math_row("integer", "cut_after_intermediate_box", "Part one gives \\boxed{27}. Now for part two we need", "27", False),
    math_row("integer", "box_never_closed", "So \\boxed{27}. Redoing it, \\boxed{2", "27", False),
    math_row("integer", "phrase_cut", "The answer is 27. Hmm, so the final answer is", "27", False),
    # ------------------------------------------------------------------ decimal golds
    math_row("decimal", "same", "\\boxed{0.0000672}", ".0000672", True),
    math_row("decimal", "fraction_equal", "\\boxed{\\frac{5}{4}}", "1.25", True),
    math_row("decimal", "unit_in_gold", "The final answer is $5.4$.", "5.4 \\text{ cents}", True),
    math_row("decimal", "last_digit_differs", "\\boxed{0.0000671}", ".0000672", False),
    math_row("decimal", "within_six_places", "\\boxed{3.2100001}", "3.21", False),
    math_row("decimal", "hedge", "The final answer is 1.25 or 1.5.", "1.25", False),
    # ------------------------------------------------------------------ expression golds
    math_row("expression", "decimal_for_fraction", "so the result is $\\boxed{0.5}$", "\\frac{1}{2}", True),
    math_row("expression", "dfrac", "thus \\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", True),
    math_row("expression", "radical_form", "\\boxed{2\\sqrt{2}}", "\\sqrt{8}", True),
    math_row("expression", "complex", "\\boxed{6-5i}", "6 - 5i", True),
    math_row("expression", "truncated_decimal", "\\boxed{0.333333}", "\\frac{1}{3}", False),
    math_row("expression", "pi_decimal", "\\boxed{3.14159265}", "\\pi", False),
    math_row("expression", "neq", "\\boxed{\\neq \\frac{1}{2}}", "\\frac{1}{2}", False),
    math_row("expression", "wrong_value", "\\boxed{0.6}", "\\frac{1}{2}", False),
    # ------------------------------------------------------------------ answer-choice golds (MATH-500 stores \text{(C)})
    math_row("choice", "textbf", "\\boxed{\\textbf{(C)}}", "\\text{(C)}", True),
    math_row("choice", "letter", "The final answer is $\\boxed{C}$.", "\\text{(C)}", True),
    math_row("choice", "with_value", "\\boxed{\\textbf{(C) }27}", "\\text{(C)}", True),
    math_row("choice", "box_then_words", "Thus the answer is $\\boxed{\\text{(B)}} 3(1 + r/10)^x = 7$.", "\\text{(B)}", True),
    math_row("choice", "other_letter", "\\boxed{(D)}", "\\text{(C)}", False),
    math_row("choice", "hedge", "\\boxed{\\text{(C) or (D)}}", "\\text{(C)}", False),
    math_row("choice", "two_letters", "\\boxed{\\text{(C)}, \\text{(E)}}", "\\text{(C)}", False),
    # ------------------------------------------------------------------ tuple / interval / set golds
    math_row("tuple_interval", "tuple", "\\boxed{(3, \\pi/2)}", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    math_row("tuple_interval", "interval_phrase", "The final answer is $(3,4]$. I hope it is correct.", "(3,4]", True),
    math_row("tuple_interval", "set_any_order", "\\boxed{7, 5, 3}", "3, 5, 7", True),
    math_row("tuple_interval", "member_of", "\\boxed{[-2,7]}", "x \\in [-2,7]", True),
    math_row("tuple_interval", "plus_minus", "\\boxed{1 \\pm \\sqrt{19}}", "1 \\pm \\sqrt{19}", True),
    math_row("tuple_interval", "tuple_differs", "\\boxed{(3, \\pi)}", "\\left( 3, \\frac{\\pi}{2} \\right)", False),
    math_row("tuple_interval", "missing_member", "\\boxed{3, 5}", "3, 5, 7", False),
    math_row("tuple_interval", "one_of_plus_minus", "\\boxed{1 + \\sqrt{19}}", "1 \\pm \\sqrt{19}", False),
    # ------------------------------------------------------------------ text golds
    math_row("text", "text", "\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", True),
    math_row("text", "plain_word", "The final answer is Evelyn.", "\\text{Evelyn}", True),
    math_row("text", "hedge", "\\boxed{\\text{Evelyn or Navin}}", "\\text{Evelyn}", False),
    math_row("text", "negated", "The final answer is not Evelyn.", "\\text{Evelyn}", False),
]


@pytest.mark.parametrize("kind,text,gold,credited", MATH_ROWS)
def test_math_answer_shape(kind, text, gold, credited):
    robust = math_answers.gsm8k_robust_filter if kind == "gsm8k" else math_answers.math_robust_filter
    out = robust([[text]], [{"target": gold}])[0][0]
    if credited:
        assert out == gold
    else:
        assert out != gold


def test_math_table_covers_every_type_both_ways():
    seen = {(p.values[0], p.values[3]) for p in MATH_ROWS}
    assert seen == {(kind, credited) for kind in MATH_TYPES for credited in (True, False)}


def test_math_yamls_call_these_filters():
    """The math YAMLs' ``utils`` filters are the functions the math table exercises."""
    from task_configs.math import utils as math_utils

    assert math_utils.gsm8k_robust_filter is math_answers.gsm8k_robust_filter
    assert math_utils.math_robust_filter is math_answers.math_robust_filter


def test_task_fingerprint_covers_the_scoring_code(monkeypatch):
    """A task's fingerprint (the cache key of its kept rationales and scored baselines) changes when either
    scoring module changes, so no rationale kept under an older scoring rule is reused."""
    from cotgap.backends.evaluation import TaskSettings, load_task
    from cotgap.pipeline import context
    from cotgap.tasks import extraction

    task = load_task(TaskSettings(name="synthetic_navigate", limit=2))
    before = context.task_fingerprint(task)
    real = context._source_digest
    for module in (extraction, math_answers):
        monkeypatch.setattr(context, "_source_digest", lambda p, f=module.__file__: "edited" if p == f else real(p))
        assert context.task_fingerprint(task) != before, module.__name__
    monkeypatch.setattr(context, "_source_digest", real)
    assert context.task_fingerprint(task) == before


@pytest.mark.parametrize(
    "text,gold,shown",
    [
        pytest.param("So the answer is (C) or (B).", "(C)", "(C) or (B)", id="hedge_shown_as_written"),
        pytest.param("So the answer is not 63.", "63", "not 63", id="negation_shown_as_written"),
        pytest.param("So the answer is (A) (not (C)). Sorry.", "(C)", "(A) (not (C))", id="parenthetical_kept_whole"),
        pytest.param("No answer here.", "63", INVALID, id="missing_is_invalid"),
        pytest.param("So the answer is 63. Let me check the", "63", INVALID, id="unfinished_is_invalid"),
        pytest.param(
            "I don't think the answer is (C).", "(C)", "I don't think the answer is (C)", id="negated_phrase_shown_whole"
        ),
    ],
)
def test_refused_answer_is_returned_as_written(text, gold, shown):
    """A refused generation's filtered answer is its answer sentence, which records show the reader."""
    assert robust_filter([[text]], [{"target": gold}]) == [[shown]]


def test_task_yamls_call_this_filter():
    """The BBH and synthetic YAMLs' ``utils.robust_filter`` is the function the table exercises."""
    from task_configs.bbh import utils as bbh_utils
    from task_configs.synthetic import utils as synthetic_utils

    assert bbh_utils.robust_filter is robust_filter and synthetic_utils.robust_filter is robust_filter
