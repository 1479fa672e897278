"""``multistep_arithmetic_two``: evaluate a two-level nested integer expression.

Input format (BBH): ``((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) =``; target an integer.
Each inner group has ``group_size`` integers in ``[-max_abs, max_abs]`` joined by ``+ - *``;
``n_groups`` groups are joined the same way inside one outer pair of parentheses.

Knobs: ``n_groups`` (default 2), ``group_size`` (default 4), ``max_abs`` (default 9).
"""

from __future__ import annotations

import random
import re

from .base import SyntheticTask

_OPS = ("+", "-", "*")
_LETTERS = "ABCDEFGH"


def _fmt(tokens: list) -> str:
    return " ".join(str(t) for t in tokens)


class _Calc:
    """Reduces operator/operand lists with precedence, optionally slipping on one step."""

    def __init__(self, slip_at: int | None = None, slip: int = 0):
        self.slip_at, self.slip = slip_at, slip
        self.n_ops = 0

    def _apply(self, a: int, op: str, b: int) -> int:
        res = a * b if op == "*" else a + b if op == "+" else a - b
        if self.n_ops == self.slip_at:
            res += self.slip
        self.n_ops += 1
        return res

    def reduce(self, toks: list) -> list[tuple]:
        """Steps ``(a, op, b, result, tokens_after)`` until one number is left."""
        toks, steps = list(toks), []
        for ops in (("*",), ("+", "-")):
            while any(t in ops for t in toks[1::2]):
                i = next(j for j in range(1, len(toks), 2) if toks[j] in ops)
                a, op, b = toks[i - 1], toks[i], toks[i + 1]
                toks[i - 1 : i + 2] = [self._apply(a, op, b)]
                steps.append((a, op, b, toks[i - 1], list(toks)))
        return steps


def _parse(text: str) -> tuple[list[list], list[str]]:
    """Split an input into its inner groups (token lists) and the outer operators."""
    m = re.fullmatch(r"\((.*)\) =", text)
    if not m:
        raise ValueError(f"not a multistep_arithmetic input: {text!r}")
    body = m.group(1)
    groups = [[int(t) if i % 2 == 0 else t for i, t in enumerate(g.split())] for g in re.findall(r"\(([^()]*)\)", body)]
    outer = re.findall(r"\)\s*([-+*])\s*\(", body)
    return groups, outer


def _evaluate(groups, outer, calc: _Calc):
    """Returns (per-group steps, per-group values, outer steps, final value)."""
    g_steps, values = [], []
    for g in groups:
        steps = calc.reduce(g)
        g_steps.append(steps)
        values.append(steps[-1][3] if steps else g[0])
    outer_toks = [values[0]]
    for op, v in zip(outer, values[1:]):
        outer_toks += [op, v]
    o_steps = calc.reduce(outer_toks)
    final = o_steps[-1][3] if o_steps else values[0]
    return g_steps, values, o_steps, final


class MultistepArithmetic(SyntheticTask):
    """Nested integer arithmetic with + - * (BBH's ``multistep_arithmetic_two``)."""

    name = "synthetic_multistep_arithmetic_two"
    bbh_name = "multistep_arithmetic_two"
    description = "Compute the value of a bracketed arithmetic expression made of small integers."
    answer_type = "integer"
    knobs = {"n_groups": 2, "group_size": 4, "max_abs": 9}

    def _check_knobs(self, p: dict) -> None:
        if p["n_groups"] < 1 or p["group_size"] < 1 or p["max_abs"] < 1:
            raise ValueError("n_groups, group_size and max_abs must be >= 1")
        if p["n_groups"] > len(_LETTERS):
            raise ValueError(f"n_groups must be <= {len(_LETTERS)}")

    def _sample(self, rng: random.Random, p: dict) -> dict:
        def group() -> str:
            toks = [rng.randint(-p["max_abs"], p["max_abs"])]
            for _ in range(p["group_size"] - 1):
                toks += [rng.choice(_OPS), rng.randint(-p["max_abs"], p["max_abs"])]
            return f"({_fmt(toks)})"

        body = group()
        for _ in range(p["n_groups"] - 1):
            body += f" {rng.choice(_OPS)} {group()}"
        text = f"({body}) ="
        return {"input": text, "target": self._solve(text)}

    def _solve(self, text: str) -> str:
        groups, outer = _parse(text)
        return str(_evaluate(groups, outer, _Calc())[3])

    def _reason(self, text, target, verbosity, wrong, rng):
        groups, outer = _parse(text)
        calc = _Calc()
        result = _evaluate(groups, outer, calc)
        if wrong:
            slots = list(range(calc.n_ops))
            rng.shuffle(slots)
            for slot in slots:
                slip = rng.choice((-10, -2, -1, 1, 2, 10))
                cand = _evaluate(groups, outer, _Calc(slot, slip))
                if str(cand[3]) != target:
                    result = cand
                    break
            else:  # single number, no operation: misread its sign or size
                result = (result[0], result[1], result[2], int(target) + 1)
        g_steps, values, o_steps, final = result
        long = verbosity == "long"
        names = _LETTERS[: len(groups)]
        outer_form = names[0] + "".join(f" {op} {n}" for op, n in zip(outer, names[1:]))
        lines = [
            "Brackets come first; inside a bracket, multiplication is done before addition and "
            "subtraction, and otherwise we go from left to right.",
        ]
        if len(groups) > 1:
            defs = ", ".join(f"{n} = ({_fmt(g)})" for n, g in zip(names, groups))
            lines.append(f'The expression has the form "{outer_form}", where {defs}.')
        for n, g, steps, v in zip(names, groups, g_steps, values):
            if long:
                lines.append(f"Work out {n} = ({_fmt(g)}).")
                for a, op, b, res, after in steps:
                    lines.append(f"  {a} {op} {b} = {res}, so {n} becomes ({_fmt(after)}).")
                lines.append(f"  So {n} = {v}.")
            else:
                chain = " = ".join([f"({_fmt(g)})"] + [f"({_fmt(s[4])})" for s in steps[:-1]] + [str(v)])
                lines.append(f"{n} = {chain}.")
        if len(groups) > 1:
            outer_vals = _fmt([values[0]] + [x for op, v in zip(outer, values[1:]) for x in (op, v)])
            if long:
                lines.append(f"Substituting, {outer_form} = {outer_vals}.")
                for a, op, b, res, after in o_steps:
                    lines.append(f"  {a} {op} {b} = {res}, leaving {_fmt(after)}.")
            else:
                chain = " = ".join([outer_vals] + [_fmt(s[4]) for s in o_steps])
                lines.append(f"Finally, {outer_form} = {chain}.")
        if long:
            checks = "; ".join(f"{a} {op} {b} = {res}" for steps in g_steps + [o_steps] for a, op, b, res, _ in steps)
            got = ", ".join(f"{n} = {v}" for n, v in zip(names, values))
            lines.append(f"Double-checking each operation: {checks}. With {got}, the value of the whole expression is {final}.")
        return "\n".join(lines), str(final)
