"""Shared machinery for the synthetic BBH-style task generators.

Every task family subclasses :class:`SyntheticTask` and implements three hooks:

* ``_sample(rng, params)`` -> ``{"input": str, "target": str}`` — draw one example;
* ``_solve(text)`` -> target string — re-derive the answer from the input text;
* ``_reason(text, target, verbosity, wrong, rng)`` -> rationale body (without the
  final ``So the answer is ...`` sentence) and the answer it arrives at.

Rationales are always rebuilt by *parsing the input text*, so ``rationale()`` works
for any well-formed example of the family, not only for ones produced by ``generate()``.

Few-shot / evaluation disjointness
----------------------------------
A fixed slice (1/16) of every task's input space, selected by a salted SHA-256 hash of
the input text (:func:`is_reserved`), is reserved for few-shot exemplars.
``generate()`` rejects every reserved input and ``fewshot_prompt()`` accepts *only*
reserved inputs, so an exemplar can never coincide with a generated evaluation or
training example, for any seed and any knob setting.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from cotgap.protocol.constants import FEWSHOT_K, FEWSHOT_SEED

VERBOSITIES = ("short", "long")
COT_TRIGGER = "Let's think step by step."
FEWSHOT_BUCKETS = 16  # 1/16 of the input space is reserved for few-shot exemplars
_RESERVE_SALT = b"cotgap-synthetic-fewshot-reserve:"

NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def is_reserved(text: str) -> bool:
    """True if ``text`` lies in the slice of input space reserved for few-shot exemplars."""
    digest = hashlib.sha256(_RESERVE_SALT + text.encode("utf-8")).digest()
    return digest[0] % FEWSHOT_BUCKETS == 0


def make_rng(*parts: Any) -> random.Random:
    """A ``random.Random`` seeded from ``parts`` (string seeding is stable across runs)."""
    return random.Random("\x1f".join(repr(p) for p in parts))


def join_list(items: list[str]) -> str:
    """English list with an Oxford comma: 'a', 'a and b', 'a, b, and c'."""
    items = list(items)
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"


def split_list(text: str) -> list[str]:
    """Inverse of :func:`join_list` (items must not contain ', ' or ' and ')."""
    if ", " in text:
        head, _, last = text.rpartition(", and ")
        return head.split(", ") + [last]
    return text.split(" and ")


class SyntheticTask:
    """Base class of a seeded procedural generator for one BBH task family."""

    name: str = ""
    bbh_name: str = ""
    description: str = ""
    answer_type: str = "free_text"
    knobs: dict = {}

    def __init__(self) -> None:
        self.knobs = dict(type(self).knobs)  # per-instance copy of the defaults

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} knobs={self.knobs}>"

    # ------------------------------------------------------------------ public API
    def generate(self, n: int, seed: int, **knobs: Any) -> list[dict]:
        """``n`` distinct examples ``{"input", "target"}``, deterministic in (n, seed, knobs).

        Inputs reserved for few-shot exemplars (see :func:`is_reserved`) are never returned.
        Raises ``ValueError`` if the knobs do not allow ``n`` distinct examples.
        """
        if n < 0:
            raise ValueError("n must be non-negative")
        params = self._resolve_knobs(knobs)
        rng = make_rng("cotgap-synthetic", self.bbh_name, "generate", seed, sorted(params.items()))
        return self._collect(n, rng, params, reserved=False)

    def rationale(self, example: dict, verbosity: str = "short", wrong: bool = False) -> str:
        """Step-by-step reasoning for ``example`` ending with ``So the answer is <answer>.``

        ``verbosity`` is ``"short"`` (official-exemplar level of detail) or ``"long"``
        (restates the state after each step and re-checks the work).  With ``wrong=True``
        the reasoning contains one plausible slip and ends with a wrong answer of the
        right type.  Deterministic in (example, verbosity, wrong).
        """
        if verbosity not in VERBOSITIES:
            raise ValueError(f"verbosity must be one of {VERBOSITIES}, got {verbosity!r}")
        text = example["input"]
        solved = self._solve(text)
        target = example.get("target", solved)
        if target != solved:
            raise ValueError(f"{self.name}: target {target!r} disagrees with the solved answer {solved!r}")
        rng = make_rng("cotgap-synthetic", self.bbh_name, "wrong", text)
        body, answer = self._reason(text, target, verbosity, wrong, rng)
        if (answer == target) == bool(wrong):
            raise AssertionError(f"{self.name}: rationale produced {answer!r} for target {target!r} (wrong={wrong})")
        body = body.rstrip()
        sep = " " if body and not body.endswith("\n") else ""
        return f"{body}{sep}So the answer is {answer}."

    def fewshot_prompt(self, k: int = FEWSHOT_K, seed: int = FEWSHOT_SEED, verbosity: str = "short") -> str:
        """Task description followed by ``k`` worked exemplars (default knobs).

        Exemplars come from a separate rng stream and are drawn only from the reserved
        slice of the input space, which ``generate()`` never emits.
        """
        exemplars = self.fewshot_examples(k, seed=seed)
        blocks = [f"Q: {ex['input']}\nA: {COT_TRIGGER}\n{self.rationale(ex, verbosity=verbosity)}" for ex in exemplars]
        return self.description + "\n\n" + "\n\n".join(blocks)

    def fewshot_examples(self, k: int = FEWSHOT_K, seed: int = FEWSHOT_SEED) -> list[dict]:
        """The ``k`` exemplar examples (input/target) that :meth:`fewshot_prompt` works through."""
        rng = make_rng("cotgap-synthetic", self.bbh_name, "fewshot", seed)
        return self._collect(k, rng, dict(self.knobs), reserved=True)

    def solve(self, text: str) -> str:
        """The correct target for an input text of this family."""
        return self._solve(text)

    # ------------------------------------------------------------------ helpers
    def _resolve_knobs(self, overrides: dict) -> dict:
        unknown = sorted(set(overrides) - set(self.knobs))
        if unknown:
            raise TypeError(f"{self.name}: unknown knob(s) {unknown}; known knobs: {sorted(self.knobs)}")
        params = {**self.knobs, **overrides}
        self._check_knobs(params)
        return params

    def _check_knobs(self, params: dict) -> None:
        """Validate knob values (raise ``ValueError``); subclasses extend this."""

    def _collect(self, n: int, rng: random.Random, params: dict, reserved: bool) -> list[dict]:
        out: list[dict] = []
        seen: set[str] = set()
        tries, budget = 0, 400 * n + 4000
        while len(out) < n:
            tries += 1
            if tries > budget:
                raise ValueError(
                    f"{self.name}: could only produce {len(out)} of {n} distinct examples "
                    f"with knobs {params}; ask for fewer or widen the knobs"
                )
            ex = self._sample(rng, params)
            text = ex["input"]
            if text in seen or is_reserved(text) != reserved:
                continue
            if reserved and not self._diverse(out, ex, n):
                continue
            seen.add(text)
            out.append({"input": text, "target": ex["target"]})
        return out

    def _diverse(self, chosen: list[dict], candidate: dict, k: int) -> bool:
        """For binary answer types, keep few-shot exemplar sets from being all one label."""
        if self.answer_type not in ("yes_no", "true_false") or k < 2 or len(chosen) != k - 1:
            return True
        return any(ex["target"] != candidate["target"] for ex in chosen)

    # ------------------------------------------------------------------ hooks
    def _sample(self, rng: random.Random, params: dict) -> dict:
        raise NotImplementedError

    def _solve(self, text: str) -> str:
        raise NotImplementedError

    def _reason(self, text: str, target: str, verbosity: str, wrong: bool, rng: random.Random) -> tuple[str, str]:
        raise NotImplementedError
