"""``tracking_shuffled_objects_{three,five,seven}_objects``: follow a sequence of swaps.

Input format (BBH), e.g. for three objects::

    Alice, Bob, and Claire are playing a game. At the start of the game, they are each
    holding a ball: Alice has a <colour> ball, Bob has a <colour> ball, and Claire has a <colour> ball.
    As the game progresses, pairs of players trade balls. First, Claire and Alice swap balls.
    Then, ... Finally, ... At the end of the game, Bob has the
    Options:
    (A) <colour> ball
    ...

(one line break before "As the ...", none inside it).  Five scenarios are used, as in BBH:
balls, presents, dance partners, books and soccer positions.  The options list the items
in their initial order; the target is the letter of the queried person's final item.

Knobs: ``n_objects`` (people/items, 2-7; default 3, 5 or 7 by variant) and ``n_swaps``
(default equal to ``n_objects``, as in BBH).  Consecutive swaps never repeat a pair.
"""

from __future__ import annotations

import random
import re

from .base import OPTION_LETTERS, SyntheticTask, join_list

PEOPLE = ("Alice", "Bob", "Claire", "Dave", "Eve", "Fred", "Gertrude")
_COUNT_WORDS = {3: "three", 5: "five", 7: "seven"}

# Our own item vocabularies.
COLOURS = (
    "red",
    "blue",
    "green",
    "yellow",
    "purple",
    "orange",
    "pink",
    "brown",
    "black",
    "white",
    "grey",
    "teal",
    "maroon",
    "indigo",
    "silver",
    "gold",
    "cyan",
    "beige",
    "turquoise",
    "lavender",
    "crimson",
    "olive",
)
PARTNERS = (
    "Ingrid",
    "Tobias",
    "Marisol",
    "Kwame",
    "Yusuf",
    "Beatrix",
    "Lorenzo",
    "Anika",
    "Desmond",
    "Priya",
    "Soren",
    "Imogen",
    "Rafael",
    "Noor",
    "Thaddeus",
    "Wilhelmina",
    "Cosmo",
    "Esperanza",
    "Lucan",
    "Odette",
)
BOOKS = (
    "Middlemarch",
    "Jane Eyre",
    "Dracula",
    "Emma",
    "Walden",
    "Persuasion",
    "Don Quixote",
    "Treasure Island",
    "Great Expectations",
    "The Iliad",
    "Little Women",
    "Robinson Crusoe",
    "Anna Karenina",
    "The Time Machine",
    "Heart of Darkness",
    "Wuthering Heights",
    "Oliver Twist",
    "Bleak House",
    "Kidnapped",
    "The Aeneid",
)
POSITIONS = (
    "goalkeeper",
    "striker",
    "sweeper",
    "left back",
    "right back",
    "center back",
    "left winger",
    "right winger",
    "playmaker",
    "holding midfielder",
    "wing back",
    "second striker",
    "substitute",
)

# scenario -> (intro, holding template, transition sentence, swap verb, ending, items, short label)
SCENARIOS = {
    "ball": dict(
        intro="are playing a game. At the start of the game, they are each holding a ball",
        hold="{p} has a {x}",
        transition="As the game progresses, pairs of players trade balls.",
        verb="swap balls",
        end="At the end of the game, {p} has the",
        items=[f"{c} ball" for c in COLOURS],
        suffix=" ball",
    ),
    "present": dict(
        intro=(
            "are holding a white elephant gift exchange. At the start of the event, they are "
            "each holding a present of a different color"
        ),
        hold="{p} has a {x}",
        transition="As the event progresses, pairs of people swap gifts.",
        verb="swap their gifts",
        end="At the end of the event, {p} has the",
        items=[f"{c} present" for c in COLOURS],
        suffix=" present",
    ),
    "dance": dict(
        intro="are dancers at a square dance. At the start of a song, they each have a partner",
        hold="{p} is dancing with {x}",
        transition="Throughout the song, the dancers often trade partners.",
        verb="switch partners",
        end="At the end of the dance, {p} is dancing with",
        items=list(PARTNERS),
        suffix="",
    ),
    "book": dict(
        intro=(
            "are friends and avid readers who occasionally trade books. At the start of the semester, they each buy one new book"
        ),
        hold="{p} gets {x}",
        transition="As the semester proceeds, they start trading around the new books.",
        verb="swap books",
        end="At the end of the semester, {p} has",
        items=list(BOOKS),
        suffix="",
    ),
    "soccer": dict(
        intro=("are on the same team in a soccer match. At the start of the match, they are each assigned to a position"),
        hold="{p} is playing {x}",
        transition="As the game progresses, pairs of players occasionally swap positions.",
        verb="trade positions",
        end="At the end of the match, {p} is playing",
        items=list(POSITIONS),
        suffix="",
    ),
}

_SWAP_RE = re.compile(r"(?:First|Then|Finally), (\w+) and (\w+) (?:swap|switch|trade) ")
_END_RE = re.compile(r"(At the end of the \w+, (\w+) (?:has the|has|is dancing with|is playing))$")


def _connective(i: int, n: int) -> str:
    return "First" if i == 0 else "Finally" if i == n - 1 else "Then"


def _parse(text: str):
    """(people, items-in-initial-order, swaps, queried person, closing phrase)."""
    head, sep, opts = text.partition("\nOptions:\n")
    if not sep:
        raise ValueError(f"not a tracking_shuffled_objects input: {text!r}")
    items = [re.sub(r"^\([A-Z]\) ", "", line) for line in opts.split("\n")]
    people = re.findall(r"\b(?:" + "|".join(PEOPLE) + r")\b", head.split(" are ", 1)[0])
    swaps = _SWAP_RE.findall(head)
    m = _END_RE.search(head)
    if not m or len(people) != len(items):
        raise ValueError(f"cannot parse tracking_shuffled_objects input: {text!r}")
    return people, items, swaps, m.group(2), m.group(1)


def _simulate(people, items, swaps, slip: tuple[int, tuple[str, str] | None] | None = None):
    """States after each swap.  ``slip=(i, pair)`` applies swap ``i`` to ``pair`` instead."""
    state = dict(zip(people, items))
    states = [dict(state)]
    for i, (a, b) in enumerate(swaps):
        if slip is not None and slip[0] == i:
            if slip[1] is None:  # the swap is forgotten
                states.append(dict(state))
                continue
            a, b = slip[1]
        state[a], state[b] = state[b], state[a]
        states.append(dict(state))
    return states


class TrackingShuffledObjects(SyntheticTask):
    """Track items through pairwise swaps; one instance per BBH variant (3, 5 or 7 objects)."""

    answer_type = "option"
    knobs = {"n_objects": 3, "n_swaps": 3}
    description = "Follow a series of pairwise swaps within a group of people and work out who ends up with which item."

    def __init__(self, n_objects: int = 3):
        if n_objects not in _COUNT_WORDS:
            raise ValueError("BBH variants exist for 3, 5 and 7 objects")
        self.bbh_name = f"tracking_shuffled_objects_{_COUNT_WORDS[n_objects]}_objects"
        self.name = f"synthetic_{self.bbh_name}"
        super().__init__()
        self.knobs = {"n_objects": n_objects, "n_swaps": n_objects}

    def _check_knobs(self, p: dict) -> None:
        if not 2 <= p["n_objects"] <= len(PEOPLE):
            raise ValueError(f"n_objects must be in 2..{len(PEOPLE)}")
        if p["n_swaps"] < 1:
            raise ValueError("n_swaps must be >= 1")

    def _sample(self, rng: random.Random, p: dict) -> dict:
        n = p["n_objects"]
        sc = SCENARIOS[rng.choice(tuple(SCENARIOS))]
        people = PEOPLE[:n]
        items = rng.sample(sc["items"], n)
        swaps: list[tuple[str, str]] = []
        while len(swaps) < p["n_swaps"]:
            pair = tuple(rng.sample(people, 2))
            if not swaps or set(pair) != set(swaps[-1]):
                swaps.append(pair)
        who = rng.choice(people)
        holds = join_list([sc["hold"].format(p=a, x=x) for a, x in zip(people, items)])
        swap_text = " ".join(f"{_connective(i, len(swaps))}, {a} and {b} {sc['verb']}." for i, (a, b) in enumerate(swaps))
        options = "\n".join(f"({OPTION_LETTERS[i]}) {x}" for i, x in enumerate(items))
        text = (
            f"{join_list(list(people))} {sc['intro']}: {holds}.\n{sc['transition']} {swap_text} "
            f"{sc['end'].format(p=who)}\nOptions:\n{options}"
        )
        return {"input": text, "target": self._solve(text)}

    def _solve(self, text: str) -> str:
        people, items, swaps, who, _ = _parse(text)
        final = _simulate(people, items, swaps)[-1][who]
        return f"({OPTION_LETTERS[items.index(final)]})"

    def _reason(self, text, target, verbosity, wrong, rng):
        people, items, swaps, who, closing = _parse(text)
        states = _simulate(people, items, swaps)
        if wrong:
            candidates = [
                (i, pair)
                for i in range(len(swaps))
                for pair in [None] + [(a, b) for a in people for b in people if a < b]
                if pair is None or set(pair) != set(swaps[i])
            ]
            rng.shuffle(candidates)
            for cand in candidates:
                alt = _simulate(people, items, swaps, slip=cand)
                if alt[-1][who] != states[-1][who]:
                    states = alt
                    break
        # like BBH's exemplars, show just the colour when every item is a "<colour> ball/present"
        suffix = next((s for s in (" ball", " present") if all(x.endswith(s) for x in items)), "")
        label = (lambda x: x[: -len(suffix)]) if suffix else (lambda x: x)

        def show(st: dict) -> str:
            return ", ".join(f"{p}: {label(st[p])}" for p in people)

        verb = re.search(r"(?:First|Then|Finally), \w+ and \w+ ([a-z ]+)\.", text)
        verb = verb.group(1) if verb else "swap"
        long = verbosity == "long"
        lines = [f"(0) Initially: {show(states[0])}."]
        for i, (a, b) in enumerate(swaps, start=1):
            before, after = states[i - 1], states[i]
            if long:
                lines.append(
                    f"({i}) {a} and {b} {verb}. {a} had {label(before[a])} and {b} had "
                    f"{label(before[b])}, so now {a} has {label(after[a])} and {b} has "
                    f"{label(after[b])}. Everyone: {show(after)}."
                )
            else:
                lines.append(f"({i}) {a} and {b} {verb}: {show(after)}.")
        final_item = states[-1][who]
        answer = f"({OPTION_LETTERS[items.index(final_item)]})"
        if long:
            holder = next(p for p in people if states[0][p] == final_item)
            path = [f"it starts with {holder}"]
            for i in range(1, len(states)):
                now = next(p for p in people if states[i][p] == final_item)
                if now != holder:
                    path.append(f"after step {i} it is with {now}")
                    holder = now
            lines.append(f"Double-check by following {label(final_item)} alone: " + ", ".join(path) + ".")
        lines.append(f"{closing} {final_item}.")
        return "\n".join(lines), answer
