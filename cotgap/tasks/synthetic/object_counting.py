"""``object_counting``: count the items of one category in a list of possessions.

Input format (BBH): ``I have a chair, two ovens, and three tables. How many objects do I
have?``; the target is the count as digits.  For fruits, vegetables, animals and musical
instruments the list may contain items of other categories as distractors; for
"objects" (household objects) it never does, since e.g. a banana is arguably an object too.

Knobs: ``min_items``/``max_items`` (distinct kinds of item listed, default 2-10) and
``max_quantity`` (largest count of one kind, written as a number word, default 5).
"""

from __future__ import annotations

import random
import re

from .base import NUMBER_WORDS, SyntheticTask, join_list, split_list

# (singular, plural, indefinite article); none contains ", " or " and ".
_VOCAB: dict[str, list[tuple[str, str, str]]] = {
    "fruits": [
        ("apple", "apples", "an"),
        ("banana", "bananas", "a"),
        ("pear", "pears", "a"),
        ("apricot", "apricots", "an"),
        ("mango", "mangoes", "a"),
        ("kiwi", "kiwis", "a"),
        ("cherry", "cherries", "a"),
        ("fig", "figs", "a"),
        ("lime", "limes", "a"),
        ("grapefruit", "grapefruits", "a"),
        ("papaya", "papayas", "a"),
        ("quince", "quinces", "a"),
        ("tangerine", "tangerines", "a"),
        ("pomegranate", "pomegranates", "a"),
        ("gooseberry", "gooseberries", "a"),
        ("melon", "melons", "a"),
    ],
    "vegetables": [
        ("carrot", "carrots", "a"),
        ("potato", "potatoes", "a"),
        ("onion", "onions", "an"),
        ("cabbage", "cabbages", "a"),
        ("head of broccoli", "heads of broccoli", "a"),
        ("stalk of celery", "stalks of celery", "a"),
        ("yam", "yams", "a"),
        ("parsnip", "parsnips", "a"),
        ("turnip", "turnips", "a"),
        ("beet", "beets", "a"),
        ("leek", "leeks", "a"),
        ("radish", "radishes", "a"),
        ("cauliflower", "cauliflowers", "a"),
        ("head of lettuce", "heads of lettuce", "a"),
        ("clove of garlic", "cloves of garlic", "a"),
    ],
    "animals": [
        ("cat", "cats", "a"),
        ("dog", "dogs", "a"),
        ("rabbit", "rabbits", "a"),
        ("goat", "goats", "a"),
        ("cow", "cows", "a"),
        ("pig", "pigs", "a"),
        ("horse", "horses", "a"),
        ("duck", "ducks", "a"),
        ("frog", "frogs", "a"),
        ("snail", "snails", "a"),
        ("mouse", "mice", "a"),
        ("sheep", "sheep", "a"),
        ("goose", "geese", "a"),
        ("donkey", "donkeys", "a"),
        ("hamster", "hamsters", "a"),
        ("owl", "owls", "an"),
        ("tortoise", "tortoises", "a"),
    ],
    "musical instruments": [
        ("violin", "violins", "a"),
        ("cello", "cellos", "a"),
        ("flute", "flutes", "a"),
        ("clarinet", "clarinets", "a"),
        ("trumpet", "trumpets", "a"),
        ("harp", "harps", "a"),
        ("banjo", "banjos", "a"),
        ("accordion", "accordions", "an"),
        ("oboe", "oboes", "an"),
        ("saxophone", "saxophones", "a"),
        ("ukulele", "ukuleles", "a"),
        ("tuba", "tubas", "a"),
        ("harmonica", "harmonicas", "a"),
        ("xylophone", "xylophones", "a"),
        ("bassoon", "bassoons", "a"),
        ("mandolin", "mandolins", "a"),
    ],
    "objects": [
        ("chair", "chairs", "a"),
        ("table", "tables", "a"),
        ("lamp", "lamps", "a"),
        ("bed", "beds", "a"),
        ("couch", "couches", "a"),
        ("stove", "stoves", "a"),
        ("oven", "ovens", "an"),
        ("fridge", "fridges", "a"),
        ("microwave", "microwaves", "a"),
        ("toaster", "toasters", "a"),
        ("bookshelf", "bookshelves", "a"),
        ("rug", "rugs", "a"),
        ("mirror", "mirrors", "a"),
        ("kettle", "kettles", "a"),
        ("wardrobe", "wardrobes", "a"),
        ("armchair", "armchairs", "an"),
        ("dishwasher", "dishwashers", "a"),
    ],
}
CATEGORIES = tuple(_VOCAB)
_WORD_VALUE = {w: i for i, w in enumerate(NUMBER_WORDS)}

# phrase noun -> (singular, category)
_LOOKUP: dict[str, tuple[str, str]] = {}
for _cat, _entries in _VOCAB.items():
    for _sing, _plur, _art in _entries:
        _LOOKUP[_sing] = (_sing, _cat)
        _LOOKUP[_plur] = (_sing, _cat)


def category_of(noun: str) -> str:
    """Category of a singular or plural noun phrase from the built-in vocabulary."""
    return _LOOKUP[noun][1]


def _phrase(entry: tuple[str, str, str], qty: int) -> str:
    sing, plur, art = entry
    return f"{art} {sing}" if qty == 1 else f"{NUMBER_WORDS[qty]} {plur}"


def _parse(text: str) -> tuple[list[tuple[str, int, str]], str]:
    """Items ``(singular, quantity, category)`` and the asked-for category."""
    m = re.fullmatch(r"I have (.+)\. How many (.+) do I have\?", text)
    if not m:
        raise ValueError(f"not an object_counting input: {text!r}")
    items = []
    for part in split_list(m.group(1)):
        qty_word, noun = part.split(" ", 1)
        qty = 1 if qty_word in ("a", "an") else _WORD_VALUE[qty_word]
        sing, cat = _LOOKUP[noun]
        items.append((sing, qty, cat))
    return items, m.group(2)


class ObjectCounting(SyntheticTask):
    """'I have a ..., two ..., and ... How many <category> do I have?'"""

    name = "synthetic_object_counting"
    bbh_name = "object_counting"
    description = "Count the things of a requested kind among the possessions someone lists."
    answer_type = "integer"
    knobs = {"min_items": 2, "max_items": 10, "max_quantity": 5}

    def _check_knobs(self, p: dict) -> None:
        if not 1 <= p["min_items"] <= p["max_items"] <= 15:
            raise ValueError("need 1 <= min_items <= max_items <= 15")
        if not 1 <= p["max_quantity"] < len(NUMBER_WORDS):
            raise ValueError(f"max_quantity must be in 1..{len(NUMBER_WORDS) - 1}")

    def _sample(self, rng: random.Random, p: dict) -> dict:
        cat = rng.choice(CATEGORIES)
        n = rng.randint(p["min_items"], p["max_items"])
        pool = list(_VOCAB[cat])
        if cat == "objects" or rng.random() < 0.3:
            picks = rng.sample(pool, min(n, len(pool)))
        else:
            n_target = rng.randint(max(1, (n + 1) // 2), n)
            picks = rng.sample(pool, min(n_target, len(pool)))
            others = [e for c in CATEGORIES if c not in (cat, "objects") for e in _VOCAB[c]]
            picks += rng.sample(others, n - len(picks))
            rng.shuffle(picks)
        items = []
        for entry in picks:
            qty = 1 if rng.random() < 0.65 else rng.randint(1, p["max_quantity"])
            items.append(_phrase(entry, qty))
        text = f"I have {join_list(items)}. How many {cat} do I have?"
        return {"input": text, "target": self._solve(text)}

    def _solve(self, text: str) -> str:
        items, cat = _parse(text)
        return str(sum(q for _, q, c in items if c == cat))

    def _reason(self, text, target, verbosity, wrong, rng):
        items, cat = _parse(text)
        counted = [[s, q] for s, q, c in items if c == cat]
        if wrong:
            distractors = [(s, q) for s, q, c in items if c != cat]
            mode = rng.choice(("distractor", "quantity", "quantity")) if distractors else "quantity"
            if mode == "distractor":
                s, q = rng.choice(distractors)
                counted.append([s, q])
            else:
                slot = rng.choice(counted)
                slot[1] = slot[1] + 1 if slot[1] == 1 or rng.random() < 0.5 else slot[1] - 1
        total = sum(q for _, q in counted)
        lines = []
        if verbosity == "long":
            lines.append(f"Go through the list one item at a time and keep a running count of the {cat}.")
            running = 0
            for s, q, _c in items:
                hit = next((x for x in counted if x[0] == s), None)
                if hit is not None:
                    running += hit[1]
                    lines.append(f"- {s} ({hit[1]}): this is one of the {cat}, so the count becomes {running}.")
                else:
                    lines.append(f"- {s} ({q}): not one of the {cat}, so the count stays {running}.")
            lines.append(f"Listing just the {cat} with their quantities:")
        else:
            lines.append(f"Pick out the {cat} in the list, with how many of each there are:")
        lines += [f"- {s} ({q})" for s, q in counted]
        addends = " + ".join(str(q) for _, q in counted)
        lines.append(f"Adding up the quantities: {addends} = {total}.")
        if verbosity == "long":
            lines.append(
                f"Checking the sum again from the other end: "
                f"{' + '.join(str(q) for _, q in reversed(counted))} = {total}, "
                f"which matches the running count."
            )
        return "\n".join(lines), str(total)
