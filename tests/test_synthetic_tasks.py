"""Tests for cotgap.tasks.synthetic: every generated target is re-derived by an
independent solver that only parses the input text."""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cotgap.tasks.synthetic import TASKS, SyntheticTask, get  # noqa: E402
from cotgap.tasks.synthetic.object_counting import category_of  # noqa: E402

BBH_DIR = Path(os.environ.get("COTGAP_BBH_DIR", "/work/shared/data/bbh"))
NAMES = sorted(TASKS)


@functools.cache
def _gen(name: str, n: int, seed: int, knobs: tuple = ()) -> tuple:
    return tuple((e["input"], e["target"]) for e in get(name).generate(n, seed, **dict(knobs)))


# --------------------------------------------------------------------------- independent solvers
def _safe_eval(node):
    """Evaluate a tiny AST subset: bool/int constants, not/and/or, unary minus, + - *."""
    if isinstance(node, ast.Expression):
        return _safe_eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (bool, int):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        v = _safe_eval(node.operand)
        return (not v) if isinstance(node.op, ast.Not) else -v
    if isinstance(node, ast.BoolOp):
        vals = [_safe_eval(v) for v in node.values]
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        a, b = _safe_eval(node.left), _safe_eval(node.right)
        return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
    raise ValueError(f"unexpected node {ast.dump(node)}")


def solve_boolean(text: str) -> str:
    assert text.endswith(" is")
    expr = text[:-3]
    assert set(expr.split()) <= {"True", "False", "not", "and", "or", "(", ")"}
    return str(_safe_eval(ast.parse(expr, mode="eval")))


def solve_arithmetic(text: str) -> str:
    assert re.fullmatch(r"\(\(.*\)\) =", text)
    return str(_safe_eval(ast.parse(text[:-2], mode="eval")))


_NUM = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}


def solve_counting(text: str) -> str:
    m = re.fullmatch(r"I have (.+)\. How many (.+) do I have\?", text)
    listing, cat = m.groups()
    parts = re.split(r", and |, | and ", listing)
    total = 0
    for part in parts:
        word, noun = part.split(" ", 1)
        if category_of(noun) == cat:
            total += _NUM[word]
    return str(total)


def solve_sorting(text: str) -> str:
    prefix = "Sort the following words alphabetically: List: "
    assert text.startswith(prefix)
    return " ".join(sorted(text[len(prefix) :].split()))


def solve_dyck(text: str) -> str:
    seq = text.split("Input: ", 1)[1].split()
    pairs = dict(zip("([{<", ")]}>"))
    stack = []
    for t in seq:
        if t in pairs:
            stack.append(t)
        else:
            assert pairs[stack.pop()] == t
    assert stack
    return " ".join(pairs[t] for t in reversed(stack))


def solve_tracking(text: str) -> str:
    head, opts = text.split("\nOptions:\n")
    options = [line[4:] for line in opts.split("\n")]
    names = re.findall(r"[A-Z][a-z]+", head.split(" are ", 1)[0])
    holding = dict(zip(names, options))
    for a, b in re.findall(r"(?:First|Then|Finally), (\w+) and (\w+) (?:swap|switch|trade)", head):
        holding[a], holding[b] = holding[b], holding[a]
    who = re.search(r"At the end of the \w+, (\w+) [a-z ]+$", head).group(1)
    return "(" + "ABCDEFG"[options.index(holding[who])] + ")"


def solve_web(text: str) -> str:
    m = re.fullmatch(r"Question: (\w+) (lies|tells the truth)\. (.*) Does (\w+) tell the truth\?", text)
    truth = {m.group(1): m.group(2) == "tells the truth"}
    for a, b, c in re.findall(r"(\w+) says (\w+) (lies|tells the truth)\.", m.group(3)):
        truth[a] = truth[b] == (c == "tells the truth")
    return "Yes" if truth[m.group(4)] else "No"


def solve_navigate(text: str) -> str:
    q = "If you follow these instructions, do you return to the starting point? "
    assert text.startswith(q) and text.endswith("\nOptions:\n- Yes\n- No")
    body = text[len(q) : -len("\nOptions:\n- Yes\n- No")]
    pos, facing = 0j, 1j
    dirs = {"forward": 1j, "backward": -1j, "left": -1, "right": 1}
    for instr in re.findall(r"[^.]+\.", body):
        instr = instr.strip()
        if m := re.fullmatch(r"Take (\d+) steps?(?: (\w+))?\.", instr):
            pos += int(m.group(1)) * (dirs[m.group(2)] if m.group(2) else facing)
        elif instr == "Turn left.":
            facing *= 1j
        elif instr == "Turn right.":
            facing *= -1j
        elif instr == "Turn around.":
            facing *= -1
        else:
            assert instr == "Always face forward.", instr
    return "Yes" if pos == 0 else "No"


SOLVERS = {
    "synthetic_boolean_expressions": solve_boolean,
    "synthetic_multistep_arithmetic_two": solve_arithmetic,
    "synthetic_object_counting": solve_counting,
    "synthetic_word_sorting": solve_sorting,
    "synthetic_dyck_languages": solve_dyck,
    "synthetic_tracking_shuffled_objects_three_objects": solve_tracking,
    "synthetic_tracking_shuffled_objects_five_objects": solve_tracking,
    "synthetic_tracking_shuffled_objects_seven_objects": solve_tracking,
    "synthetic_web_of_lies": solve_web,
    "synthetic_navigate": solve_navigate,
}

# Non-default knob settings exercised by the solver test.
ALT_KNOBS = {
    "synthetic_boolean_expressions": [{"min_operands": 1, "max_operands": 6, "max_nots": 1}],
    "synthetic_multistep_arithmetic_two": [{"n_groups": 3, "group_size": 3, "max_abs": 20}],
    "synthetic_object_counting": [{"min_items": 1, "max_items": 4, "max_quantity": 10}],
    "synthetic_word_sorting": [{"min_words": 2, "max_words": 4}, {"min_words": 30, "max_words": 40}],
    "synthetic_dyck_languages": [{"max_depth": 3, "min_length": 10, "max_length": 12}, {"length": 41, "max_close": 5}],
    "synthetic_tracking_shuffled_objects_three_objects": [{"n_swaps": 8}],
    "synthetic_tracking_shuffled_objects_five_objects": [{"n_objects": 4, "n_swaps": 2}],
    "synthetic_tracking_shuffled_objects_seven_objects": [{"n_swaps": 12}],
    "synthetic_web_of_lies": [{"n_people": 3}, {"n_people": 9}],
    "synthetic_navigate": [
        {"min_steps": 6, "max_steps": 12, "max_distance": 3, "face_forward_prob": 0.0},
        {"face_forward_prob": 1.0},
    ],
}


def _answer(rationale: str) -> str:
    m = re.search(r"So the answer is (.+)\.\Z", rationale)
    assert m, rationale[-200:]
    return m.group(1)


# --------------------------------------------------------------------------- registry / interface
def test_registry():
    assert len(TASKS) == 10
    for name, task in TASKS.items():
        assert isinstance(task, SyntheticTask)
        assert name == task.name == f"synthetic_{task.bbh_name}"
        assert task.answer_type in ("option", "yes_no", "true_false", "integer", "free_text")
        assert task.description and "\n" not in task.description
        assert isinstance(task.knobs, dict) and task.knobs
    assert get("synthetic_navigate") is TASKS["synthetic_navigate"]
    assert TASKS["synthetic_tracking_shuffled_objects_five_objects"].knobs == {"n_objects": 5, "n_swaps": 5}
    with pytest.raises(KeyError, match="synthetic_navigate"):
        get("navigate")


def test_unknown_knob_is_rejected():
    with pytest.raises(TypeError, match="known knobs"):
        get("synthetic_navigate").generate(3, 0, n_swaps=2)


# --------------------------------------------------------------------------- correctness
@pytest.mark.parametrize("name", NAMES)
def test_targets_match_independent_solver(name):
    solver = SOLVERS[name]
    settings = [((), 0, 300), ((), 1, 300), ((), 7, 100)]
    settings += [(tuple(sorted(k.items())), 3, 150) for k in ALT_KNOBS[name]]
    for knobs, seed, n in settings:
        examples = _gen(name, n, seed, knobs)
        assert len(examples) == n
        for text, target in examples:
            assert solver(text) == target, (knobs, text, target)


def test_knobs_take_effect():
    for text, _ in _gen("synthetic_word_sorting", 50, 0, (("max_words", 4), ("min_words", 3))):
        assert 3 <= len(text.split("List: ")[1].split()) <= 4
    for text, target in _gen("synthetic_dyck_languages", 50, 0, (("length", 41), ("max_close", 5))):
        assert len(text.split("Input: ")[1].split()) == 41 and 1 <= len(target.split()) <= 5
    for text, _ in _gen("synthetic_web_of_lies", 50, 0, (("n_people", 9),)):
        assert text.count(" says ") == 8
    for text, _ in _gen("synthetic_tracking_shuffled_objects_five_objects", 50, 0, (("n_objects", 4), ("n_swaps", 2))):
        assert text.count("\n(") == 4 and text.count("Finally, ") == 1 and "Then, " not in text


@pytest.mark.parametrize("name", [n for n in NAMES if TASKS[n].answer_type in ("yes_no", "true_false")])
def test_binary_labels_are_roughly_balanced(name):
    targets = [t for _, t in _gen(name, 300, 0)]
    share = max(targets.count(v) for v in set(targets)) / len(targets)
    assert len(set(targets)) == 2 and share < 0.62


# --------------------------------------------------------------------------- determinism / distinctness
@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_distinct(name):
    task = get(name)
    a = task.generate(200, 5)
    assert a == task.generate(200, 5)
    assert a != task.generate(200, 6)
    assert all(set(e) == {"input", "target"} for e in a)
    assert len({e["input"] for e in a}) == 200
    assert task.generate(20, 5) == a[:20]  # prefix-stable in n
    big = _gen(name, 2000, 0)
    assert len({t for t, _ in big}) == 2000


def test_impossible_request_raises():
    with pytest.raises(ValueError, match="distinct"):
        get("synthetic_dyck_languages").generate(50, 0, length=2)


# --------------------------------------------------------------------------- rationales
def _check_wrong(task, text, target, wrong):
    assert wrong != target
    kind = task.answer_type
    if kind == "option":
        n_options = len(re.findall(r"^\([A-Z]\) ", text, flags=re.M))
        assert re.fullmatch(r"\([A-Z]\)", wrong) and "ABCDEFGHIJ".index(wrong[1]) < n_options
    elif kind == "yes_no":
        assert wrong in ("Yes", "No")
    elif kind == "true_false":
        assert wrong in ("True", "False")
    elif kind == "integer":
        int(wrong)
    elif task.bbh_name == "word_sorting":
        assert sorted(wrong.split()) == sorted(target.split())
    elif task.bbh_name == "dyck_languages":
        assert wrong and set(wrong.split()) <= set(")]}>")
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.mark.parametrize("name", NAMES)
def test_rationales(name):
    task = get(name)
    short_len = long_len = 0
    for text, target in _gen(name, 300, 0)[:60]:
        ex = {"input": text, "target": target}
        short = task.rationale(ex)
        long = task.rationale(ex, verbosity="long")
        assert short.endswith(f"So the answer is {target}.") and short.count("So the answer is") == 1
        assert long.endswith(f"So the answer is {target}.")
        assert short == task.rationale(ex, "short")  # deterministic
        short_len, long_len = short_len + len(short), long_len + len(long)
        for verbosity in ("short", "long"):
            bad = task.rationale(ex, verbosity=verbosity, wrong=True)
            assert bad == task.rationale(ex, verbosity=verbosity, wrong=True)
            _check_wrong(task, text, target, _answer(bad))
    assert long_len >= 1.5 * short_len, (name, long_len / short_len)
    with pytest.raises(ValueError):
        task.rationale({"input": text, "target": target}, verbosity="medium")


def test_rationale_rejects_wrong_target():
    task = get("synthetic_web_of_lies")
    text, target = _gen("synthetic_web_of_lies", 1, 0)[0]
    with pytest.raises(ValueError):
        task.rationale({"input": text, "target": "No" if target == "Yes" else "Yes"})


# --------------------------------------------------------------------------- few-shot prompts
@pytest.mark.parametrize("name", NAMES)
def test_fewshot_prompt(name):
    task = get(name)
    prompt = task.fewshot_prompt()
    assert prompt == task.fewshot_prompt(k=3, seed=1234, verbosity="short")
    assert prompt.startswith(task.description + "\n\nQ: ")
    blocks = prompt[len(task.description) + 2 :].split("\n\nQ: ")
    assert len(blocks) == 3
    exemplars = []
    for block, ex in zip(blocks, task.fewshot_examples(3, seed=1234)):
        q, a = block.removeprefix("Q: ").split("\nA: Let's think step by step.\n")
        assert q == ex["input"] and task.solve(q) == _answer(a) == ex["target"]
        assert a == task.rationale(ex)
        exemplars.append(q)
    assert task.fewshot_prompt(k=5, seed=99, verbosity="long").count("\nA: Let's think step by step.\n") == 5
    # exemplars never coincide with generated examples
    for seed in (1234, 0, 1):
        exemplars += re.findall(r"(?:^|\n\n)Q: (.*?)\nA: Let's think", task.fewshot_prompt(k=4, seed=seed), flags=re.S)
    for s in range(4):
        generated = {t for t, _ in _gen(name, 2000, s)}
        assert not generated.intersection(exemplars)


# --------------------------------------------------------------------------- formats vs. real BBH
def _bbh(task_name: str) -> list[dict]:
    path = BBH_DIR / f"{task_name}.json"
    if not path.exists():
        pytest.skip(f"real BBH file {path} not available (set COTGAP_BBH_DIR to check formats)")
    return json.loads(path.read_text())["examples"]


def test_format_matches_bbh_dyck():
    real = _bbh("dyck_languages")
    prefix = real[0]["input"].split("Input: ")[0] + "Input: "
    task = get("synthetic_dyck_languages")
    for text, target in _gen("synthetic_dyck_languages", 300, 0):
        assert text.startswith(prefix)
        assert re.fullmatch(r"[\[\]{}()<>](?: [\[\]{}()<>])*", text[len(prefix) :])
        assert re.fullmatch(r"[\]})>](?: [\]})>])*", target)
    lengths = [len(e["target"].split()) for e in real]
    assert max(len(t.split()) for _, t in _gen("synthetic_dyck_languages", 300, 0)) <= max(lengths)
    for e in real:  # the rationale machinery also handles real inputs
        assert task.rationale(e).endswith(f"So the answer is {e['target']}.")


def test_format_matches_bbh_word_sorting():
    real = _bbh("word_sorting")
    prefix = real[0]["input"].split("List: ")[0] + "List: "
    for text, target in _gen("synthetic_word_sorting", 300, 0):
        assert text.startswith(prefix) and "  " not in text
        assert target == " ".join(target.split())
    task = get("synthetic_word_sorting")
    for e in real:
        assert task.solve(e["input"]) == e["target"]
        if len(set(e["input"].split("List: ")[1].split())) == len(e["input"].split("List: ")[1].split()):
            assert task.rationale(e).endswith(f"So the answer is {e['target']}.")


def _skeleton(text: str) -> str:
    options = [line[4:] for line in text.split("\nOptions:\n")[1].split("\n")]
    head = text.split("\nOptions:\n")[0]
    for item in sorted(options, key=len, reverse=True):
        head = head.replace(item, "<ITEM>")
    head = re.sub(r"\b(Alice|Bob|Claire|Dave|Eve|Fred|Gertrude)\b", "<NAME>", head)
    option_lines = "\n".join(re.sub(r"\) .*", ") <ITEM>", line) for line in text.split("\nOptions:\n")[1].split("\n"))
    return head + "\nOptions:\n" + option_lines


@pytest.mark.parametrize("count,n", [("three", 3), ("five", 5), ("seven", 7)])
def test_format_matches_bbh_tracking(count, n):
    name = f"tracking_shuffled_objects_{count}_objects"
    real = _bbh(name)
    real_skeletons = {_skeleton(e["input"]) for e in real}
    task = get(f"synthetic_{name}")
    ours = {_skeleton(t) for t, _ in _gen(task.name, 300, 0)}
    assert ours <= real_skeletons, sorted(ours - real_skeletons)[:2]
    assert len(ours) == 5  # all five BBH scenarios are produced
    for e in real:
        assert task.solve(e["input"]) == e["target"]
        assert task.rationale(e, "long").endswith(f"So the answer is {e['target']}.")


def test_formats_of_other_tasks():
    """Tasks whose BBH files are not shipped locally: check the documented surface format."""
    for text, t in _gen("synthetic_boolean_expressions", 200, 0):
        assert re.fullmatch(r"(?:(?:not|True|False|and|or|\(|\)) )+is", text) and t in ("True", "False")
    for text, t in _gen("synthetic_multistep_arithmetic_two", 200, 0):
        num, op = r"-?\d", r" [-+*] "
        grp = rf"\({num}(?:{op}{num}){{3}}\)"
        assert re.fullmatch(rf"\({grp}{op}{grp}\) =", text) and re.fullmatch(r"-?\d+", t)
    for text, t in _gen("synthetic_object_counting", 200, 0):
        assert re.fullmatch(r"I have [a-z ,]+\. How many [a-z ]+ do I have\?", text) and t.isdigit()
    for text, _t in _gen("synthetic_web_of_lies", 200, 0):
        assert re.fullmatch(
            r"Question: [A-Z]\w+ (lies|tells the truth)\.( [A-Z]\w+ says [A-Z]\w+ "
            r"(lies|tells the truth)\.){4} Does [A-Z]\w+ tell the truth\?",
            text,
        )
    for text, t in _gen("synthetic_navigate", 200, 0):
        assert text.startswith("If you follow these instructions, do you return to the starting point? ")
        assert text.endswith(".\nOptions:\n- Yes\n- No") and t in ("Yes", "No")
