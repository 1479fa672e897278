"""``web_of_lies``: follow a chain of people vouching for (or accusing) each other.

Input format (BBH): ``Question: A lies. B says A tells the truth. C says B lies. ...
Does E tell the truth?``; the target is ``Yes`` or ``No``.

Knobs: ``n_people`` (length of the chain, default 5 as in BBH).
"""

from __future__ import annotations

import random
import re

from .base import SyntheticTask

# Our own list of first names (single words, capitalised).
NAMES = (
    "Abigail",
    "Bartholomew",
    "Cordelia",
    "Dmitri",
    "Esme",
    "Florian",
    "Guinevere",
    "Horatio",
    "Isadora",
    "Jasper",
    "Katarina",
    "Leopold",
    "Marguerite",
    "Nikolai",
    "Octavia",
    "Percival",
    "Quentin",
    "Rosalind",
    "Sebastian",
    "Theodora",
    "Ulysses",
    "Valentina",
    "Winifred",
    "Xavier",
    "Yolanda",
    "Zachariah",
    "Anselm",
    "Bettina",
    "Casimir",
    "Delphine",
    "Evander",
    "Fenella",
    "Gideon",
    "Henrietta",
    "Ignatius",
    "Juniper",
    "Lysander",
    "Mirabel",
    "Oswin",
    "Perpetua",
    "Rupert",
    "Seraphina",
    "Tiberius",
    "Ursula",
    "Wendell",
    "Zenobia",
)


def _says(truthful: bool) -> str:
    return "tells the truth" if truthful else "lies"


def _parse(text: str):
    """(first person, whether they tell the truth, [(speaker, subject, claim)], asked person)."""
    m = re.fullmatch(r"Question: (\w+) (lies|tells the truth)\. (.*)Does (\w+) tell the truth\?", text)
    if not m:
        raise ValueError(f"not a web_of_lies input: {text!r}")
    claims = re.findall(r"(\w+) says (\w+) (lies|tells the truth)\. ", m.group(3))
    claims = [(a, b, c == "tells the truth") for a, b, c in claims]
    return m.group(1), m.group(2) == "tells the truth", claims, m.group(4)


def _truths(first: str, base: bool, claims, flip_at: int | None = None) -> dict[str, bool]:
    """Truthfulness of each person; ``flip_at`` (index into the chain) gets it backwards."""
    truth = {first: base if flip_at != 0 else not base}
    for i, (speaker, subject, claim) in enumerate(claims, start=1):
        value = claim == truth[subject]
        truth[speaker] = value if flip_at != i else not value
    return truth


class WebOfLies(SyntheticTask):
    """'Question: X lies. Y says X tells the truth. ... Does Z tell the truth?'"""

    name = "synthetic_web_of_lies"
    bbh_name = "web_of_lies"
    description = (
        "Work out whether the last person in a chain of statements about who lies and who tells the truth is telling the truth."
    )
    answer_type = "yes_no"
    knobs = {"n_people": 5}

    def _check_knobs(self, p: dict) -> None:
        if not 2 <= p["n_people"] <= len(NAMES):
            raise ValueError(f"n_people must be in 2..{len(NAMES)}")

    def _sample(self, rng: random.Random, p: dict) -> dict:
        people = rng.sample(NAMES, p["n_people"])
        parts = [f"{people[0]} {_says(rng.random() < 0.5)}."]
        for prev, cur in zip(people, people[1:]):
            parts.append(f"{cur} says {prev} {_says(rng.random() < 0.5)}.")
        text = f"Question: {' '.join(parts)} Does {people[-1]} tell the truth?"
        return {"input": text, "target": self._solve(text)}

    def _solve(self, text: str) -> str:
        first, base, claims, asked = _parse(text)
        return "Yes" if _truths(first, base, claims)[asked] else "No"

    def _reason(self, text, target, verbosity, wrong, rng):
        first, base, claims, asked = _parse(text)
        chain = [first] + [s for s, _, _ in claims]
        # a slip at step i flips everyone from i on; only slips upstream of `asked` matter
        flip = rng.randrange(chain.index(asked) + 1) if wrong else None
        truth = _truths(first, base, claims, flip)
        step = {first: 1}
        long = verbosity == "long"
        lines = [f"(1) {first} {_says(base)}. So {first} {_says(truth[first])}."]
        if long:
            lines[0] += f" Known so far: {first} {_says(truth[first])}."
        for i, (speaker, subject, claim) in enumerate(claims, start=2):
            step[speaker] = i
            known = truth[subject]
            if long:
                lines.append(
                    f"({i}) {speaker} says {subject} {_says(claim)}. From ({step[subject]}), "
                    f"{subject} {_says(known)}. If {speaker} told the truth, {subject} would "
                    f"{'tell the truth' if claim else 'lie'}; if {speaker} lied, {subject} would "
                    f"{'lie' if claim else 'tell the truth'}. The statement is "
                    f"{'true' if claim == known else 'false'}, so {speaker} {_says(truth[speaker])}. "
                    f"Known so far: " + ", ".join(f"{p} {_says(truth[p])}" for p in chain[:i]) + "."
                )
            else:
                lines.append(
                    f"({i}) {speaker} says {subject} {_says(claim)}. From ({step[subject]}), "
                    f"{subject} {_says(known)}, so the statement is "
                    f"{'true' if claim == known else 'false'} and {speaker} "
                    f"{_says(truth[speaker])}."
                )
        answer = "Yes" if truth[asked] else "No"
        lines.append(f"The question is whether {asked} tells the truth. From ({step[asked]}), {asked} {_says(truth[asked])}.")
        if long:
            lines.append(
                "Re-check along the chain: each statement that matches the speaker's subject marks a "
                "truth-teller, and each mismatch a liar; going through it again gives "
                + ", ".join(f"{p}: {'truth' if truth[p] else 'lie'}" for p in chain)
                + "."
            )
        return "\n".join(lines), answer
