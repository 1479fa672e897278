"""``boolean_expressions``: evaluate a random Boolean expression.

Input format (BBH): space-separated tokens over ``True False not and or ( )`` followed by
`` is``, e.g. ``not ( True ) and ( True ) is``; the target is ``True`` or ``False``.

Knobs: ``min_operands``/``max_operands`` (number of True/False literals, default 2-4)
and ``max_nots`` (longest chain of ``not`` in front of a sub-expression, default 3).
"""

from __future__ import annotations

import random

from .base import SyntheticTask

_VALUES = ("True", "False")
_NOT_PROB = 0.35  # chance that a sub-expression gets a chain of "not"
_PAREN_PROB = 0.4  # chance that a compound sub-expression is parenthesised


def _gen_tokens(rng: random.Random, n: int, max_nots: int, top: bool = True) -> list[str]:
    """Random token list with ``n`` literals (semantics come from evaluating the string)."""
    if n == 1:
        toks = [rng.choice(_VALUES)]
        if rng.random() < _PAREN_PROB / 2:
            toks = ["(", *toks, ")"]
    else:
        k = rng.randint(1, n - 1)
        toks = [*_gen_tokens(rng, k, max_nots, False), rng.choice(("and", "or")), *_gen_tokens(rng, n - k, max_nots, False)]
        if not top and rng.random() < _PAREN_PROB:
            toks = ["(", *toks, ")"]
    if max_nots > 0 and toks[0] != "not" and rng.random() < _NOT_PROB:
        toks = ["not"] * rng.randint(1, max_nots) + toks
    return toks


class _Reducer:
    """Evaluates a token list step by step, optionally flipping the result of one step.

    ``events`` collects ``(kind, inner_tokens, steps, value, expression_after)`` where kind
    is ``"group"`` (an innermost parenthesised group) or ``"top"``; each step is
    ``(operator, operation_text, result, local_tokens_after, full_tokens_after)``.
    """

    def __init__(self, flip_at: int | None = None):
        self.flip_at = flip_at
        self.n_ops = 0
        self.events: list[tuple] = []

    def _apply(self, op: str, args: list[str]) -> str:
        vals = [a == "True" for a in args]
        if op == "not":
            res = not vals[0]
        elif op == "and":
            res = vals[0] and vals[1]
        else:
            res = vals[0] or vals[1]
        if self.n_ops == self.flip_at:
            res = not res
        self.n_ops += 1
        return str(res)

    def _flat(self, toks: list[str], frame) -> list[tuple]:
        toks, steps = list(toks), []
        while "not" in toks:  # leftmost chain of "not"s first, innermost "not" of it first
            i = toks.index("not")
            while toks[i + 1] == "not":
                i += 1
            text = f"not {toks[i + 1]}"
            toks[i : i + 2] = [self._apply("not", [toks[i + 1]])]
            steps.append(("not", text, toks[i], list(toks), frame(toks)))
        for op in ("and", "or"):
            while op in toks:
                i = toks.index(op)
                text = f"{toks[i - 1]} {op} {toks[i + 1]}"
                toks[i - 1 : i + 2] = [self._apply(op, [toks[i - 1], toks[i + 1]])]
                steps.append((op, text, toks[i - 1], list(toks), frame(toks)))
        return steps

    def run(self, toks: list[str]) -> str:
        toks = list(toks)
        while "(" in toks:
            close = toks.index(")")
            opn = max(i for i in range(close) if toks[i] == "(")
            inner = toks[opn + 1 : close]
            pre, post = toks[:opn], toks[close + 1 :]
            steps = self._flat(inner, lambda t, pre=pre, post=post: [*pre, "(", *t, ")", *post])
            value = steps[-1][2] if steps else inner[0]
            toks = [*pre, value, *post]
            self.events.append(("group", inner, steps, value, list(toks)))
        steps = self._flat(toks, list)
        value = steps[-1][2] if steps else toks[0]
        self.events.append(("top", toks, steps, value, [value]))
        return value


def _tokens(text: str) -> list[str]:
    if not text.endswith(" is"):
        raise ValueError(f"not a boolean_expressions input: {text!r}")
    return text[: -len(" is")].split()


class BooleanExpressions(SyntheticTask):
    """Random Boolean expressions over True/False with not/and/or and parentheses."""

    name = "synthetic_boolean_expressions"
    bbh_name = "boolean_expressions"
    description = "Work out whether a randomly built Boolean expression is True or False."
    answer_type = "true_false"
    knobs = {"min_operands": 2, "max_operands": 4, "max_nots": 3}

    def _check_knobs(self, p: dict) -> None:
        if not 1 <= p["min_operands"] <= p["max_operands"]:
            raise ValueError("need 1 <= min_operands <= max_operands")
        if p["max_nots"] < 0:
            raise ValueError("max_nots must be >= 0")

    def _sample(self, rng: random.Random, p: dict) -> dict:
        want = rng.choice(_VALUES)  # balance the two labels
        for _ in range(100):
            toks = _gen_tokens(rng, rng.randint(p["min_operands"], p["max_operands"]), p["max_nots"])
            value = _Reducer().run(toks)
            if value == want:
                break
        return {"input": " ".join(toks) + " is", "target": value}

    def _solve(self, text: str) -> str:
        return _Reducer().run(_tokens(text))

    def _reason(self, text, target, verbosity, wrong, rng):
        toks = _tokens(text)
        red = _Reducer()
        red.run(toks)
        if wrong:
            flips = list(range(red.n_ops))
            rng.shuffle(flips)
            for f in flips:
                cand = _Reducer(flip_at=f)
                if cand.run(toks) != target:
                    red = cand
                    break
            else:  # a bare literal: there is no step to get wrong, so misread it
                red = _Reducer()
                red.events = [("top", toks, [], "False" if target == "True" else "True", [])]
        answer = red.events[-1][3]
        long = verbosity == "long"
        lines = [
            'Parenthesised parts are worked out first; elsewhere "not" binds tightest, then "and", and "or" binds loosest.',
            f"Call the whole expression Z = {' '.join(toks)}.",
        ]
        all_steps = []
        events = red.events
        for n, (kind, inner, steps, value, after) in enumerate(events):
            all_steps.extend(steps)
            if kind == "group":
                group = f"( {' '.join(inner)} )"
                if not steps:  # brackets around a single value: report a run of these at once
                    if n + 1 < len(events) and events[n + 1][0] == "group" and not events[n + 1][2]:
                        continue
                    lines.append(f"Brackets around a single value can simply be dropped, so Z = {' '.join(after)}.")
                elif long:
                    lines.append(f"The innermost parentheses hold {group}.")
                    for op, op_text, res, _, full in steps:
                        lines.append(f'  Apply "{op}": {op_text} = {res}, so Z = {" ".join(full)}.')
                    lines.append(f"  The group {group} is therefore {value}; dropping the brackets, Z = {' '.join(after)}.")
                else:
                    chain = " = ".join([" ".join(inner)] + [" ".join(s[3]) for s in steps])
                    lines.append(f"Inside {group}: {chain}. So Z = {' '.join(after)}.")
            elif not steps:
                lines.append(f"Nothing is left to combine, so Z = {value}.")
            elif long:
                lines.append(f"No parentheses remain: Z = {' '.join(inner)}.")
                for op, op_text, res, _, full in steps:
                    lines.append(f'  Apply "{op}": {op_text} = {res}, so Z = {" ".join(full)}.')
                lines.append(f"Hence Z = {value}.")
            else:
                chain = " = ".join([" ".join(inner)] + [" ".join(s[3]) for s in steps])
                lines.append(f"Then Z = {chain}.")
        if long:
            if all_steps:
                checks = "; ".join(f"{s[1]} = {s[2]}" for s in all_steps)
                lines.append(f"Re-checking every step in order: {checks}. Each step follows the rules above, so Z = {answer}.")
            else:
                lines.append(f"Re-checking: the expression is the single value {answer}.")
        return "\n".join(lines) + "\n", answer
