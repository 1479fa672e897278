"""``dyck_languages``: close the still-open brackets of a Dyck-4 prefix.

Input format (BBH): ``Complete the rest of the sequence, making sure that the parentheses
are closed properly. Input: [ [``; the target is the closing brackets, e.g. ``] ]``.

Knobs: ``min_length``/``max_length`` (tokens in the input, default 2-30),
``max_depth`` (deepest nesting, default 8) and ``max_close`` (how many brackets are
left open, i.e. length of the target; default 3, as in BBH).  ``length=L`` may be passed to
``generate`` as a shorthand for ``min_length=max_length=L``.
"""

from __future__ import annotations

import random

from .base import SyntheticTask

PREFIX = "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: "
PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _parse(text: str) -> list[str]:
    if not text.startswith(PREFIX):
        raise ValueError(f"not a dyck_languages input: {text!r}")
    return text[len(PREFIX) :].split()


def _trace(tokens: list[str], misread: int | None = None, as_: str | None = None):
    """Stack after each token; token ``misread`` is taken to be the opener ``as_``."""
    stack, shown, states = [], [], []
    for i, t in enumerate(tokens):
        if i == misread:
            t = as_
        shown.append(t)
        if t in PAIRS:
            stack.append(t)
        else:
            if not stack or PAIRS[stack[-1]] != t:
                raise ValueError(f"bracket {t!r} at position {i + 1} does not match")
            stack.pop()
        states.append(list(stack))
    return shown, states


def _surviving_openers(tokens: list[str]) -> list[int]:
    """Indices of the openers that are still open at the end."""
    stack = []
    for i, t in enumerate(tokens):
        if t in PAIRS:
            stack.append(i)
        else:
            stack.pop()
    return stack


class DyckLanguages(SyntheticTask):
    """Finish a prefix of a well-nested sequence over ( ) [ ] { } < >."""

    name = "synthetic_dyck_languages"
    bbh_name = "dyck_languages"
    description = "Complete a sequence of brackets so that every opened bracket is properly closed."
    answer_type = "free_text"
    knobs = {"min_length": 2, "max_length": 30, "max_depth": 8, "max_close": 3}

    def generate(self, n, seed, **knobs):
        """As :meth:`SyntheticTask.generate`; ``length=L`` fixes the input length to L."""
        if "length" in knobs:
            length = knobs.pop("length")
            knobs["min_length"] = knobs["max_length"] = length
        return super().generate(n, seed, **knobs)

    def _check_knobs(self, p: dict) -> None:
        if not 1 <= p["min_length"] <= p["max_length"]:
            raise ValueError("need 1 <= min_length <= max_length")
        if p["max_depth"] < 1 or p["max_close"] < 1:
            raise ValueError("max_depth and max_close must be >= 1")

    def _sample(self, rng: random.Random, p: dict) -> dict:
        top = min(p["max_close"], p["max_depth"])
        while True:
            length = rng.randint(p["min_length"], p["max_length"])
            options = [s for s in range(1, top + 1) if s <= length and (length - s) % 2 == 0]
            if options:
                break
        s = rng.choice(options)
        # random walk of the stack depth from 0 to s in `length` steps, within [0, max_depth]
        tokens, stack = [], []
        for step in range(length):
            left = length - step - 1  # steps remaining after this one
            d = len(stack)
            can_open = d + 1 <= p["max_depth"] and abs(d + 1 - s) <= left
            can_close = d >= 1 and abs(d - 1 - s) <= left
            if can_open and (not can_close or rng.random() < 0.5):
                stack.append(rng.choice(tuple(PAIRS)))
                tokens.append(stack[-1])
            else:
                tokens.append(PAIRS[stack.pop()])
        text = PREFIX + " ".join(tokens)
        return {"input": text, "target": self._solve(text)}

    def _solve(self, text: str) -> str:
        _, states = _trace(_parse(text))
        return " ".join(PAIRS[b] for b in reversed(states[-1] if states else []))

    def _reason(self, text, target, verbosity, wrong, rng):
        tokens = _parse(text)
        misread = as_ = None
        if wrong:
            misread = rng.choice(_surviving_openers(tokens))
            as_ = rng.choice([b for b in PAIRS if b != tokens[misread]])
        shown, states = _trace(tokens, misread, as_)
        long = verbosity == "long"
        lines = ["Read the symbols from left to right, keeping a stack of the brackets that are still open.", "0: stack is empty"]
        prev: list[str] = []
        for i, (t, st) in enumerate(zip(shown, states), start=1):
            content = " ".join(st) if st else "empty"
            if not long:
                lines.append(f"{i}: {t} ; stack: {content}")
            elif t in PAIRS:
                lines.append(f"{i}: {t} opens a bracket, so push it; stack: {content} (depth {len(st)})")
            else:
                lines.append(f"{i}: {t} closes the {prev[-1]} on top, so pop it; stack: {content} (depth {len(st)})")
            prev = st
        final = states[-1]
        closers = [PAIRS[b] for b in reversed(final)]
        answer = " ".join(closers)
        lines.append(f'All symbols are read. The stack still holds "{" ".join(final)}".')
        lines.append(
            "Closing from the top of the stack down, " + ", ".join(f'"{b}" needs "{PAIRS[b]}"' for b in reversed(final)) + "."
        )
        if long:
            lines.append(
                f'Check: appending "{answer}" to the input empties the stack, because each added '
                "bracket matches the opener on top at that moment and the depth returns to 0."
            )
        return "\n".join(lines), answer
