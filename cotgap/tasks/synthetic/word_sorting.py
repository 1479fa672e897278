"""``word_sorting``: sort a list of words alphabetically.

Input format (BBH): ``Sort the following words alphabetically: List: oven costume counterpart``;
the target is the words in sorted order joined by single spaces.

Knobs: ``min_words``/``max_words`` (list length, default 2-20 as in BBH).
"""

from __future__ import annotations

import random

from .base import SyntheticTask

PREFIX = "Sort the following words alphabetically: List: "

# Our own vocabulary: lowercase a-z only, chosen so that many words share prefixes.
WORDS = tuple(
    sorted(
        set(
            """
abacus abandon abbey absent absorb abundant academy accent access acorn acrobat adapt
admiral adobe advent aerial afford agenda agile airship alcove alder algebra almond
alpine amber amble anchor anchovy angle ankle annex antler anvil apron arbor arcade
archer ardent arena armada armor aroma arrow artisan aspen asphalt atlas attic auburn
augur avenue aviary awning axle azure badger bagel bakery balcony ballad bamboo banner
barley barn barrel basil basket beacon beaker beetle bellow bench berry biscuit bison
blanket blaze blossom bobbin bonnet border boulder bracket bramble brass breeze brick
bridge brisk bronze brook bubble bucket bugle bundle burrow butter cabin cactus cadence
camel canal candle canopy canvas canyon caper carbon cargo carpet carrot cascade castle
cedar cellar census chalk channel chapel charcoal cherub chestnut chimney chisel cider
cinder circus citadel clamp clover cobalt cobble cocoa comet compass copper coral cornet
cotton cradle crater crayon crest cricket crimson crystal cupboard current cushion cypress
dagger dahlia dairy damsel dapple dawn debris decade decoy delta denim depot desert
dial diary dinghy dipper ditch dolphin domino donor drizzle dune dungeon dusk dwelling
eagle easel ebony echo eclipse eddy elbow elder ember emblem empire engine envoy epoch
errand estuary ether falcon fathom feather fennel ferry fiddle fiesta filament flannel
flint flora fluent fodder folio forage forest fossil fountain fragile furnace gable
galaxy gallery gander garnet gazebo gecko geyser ginger glacier glade glimmer goblet
gondola gossamer granite gravel griddle grotto gusto habitat halibut hammock harbor
harvest hazel heather hedge helmet hermit heron hickory hollow homage horizon hornet
humble hurdle hyacinth iceberg icicle idiom igloo imprint incense index indigo inlet
insight iris island ivory jackal jacket jasmine javelin jersey jigsaw jockey journal
jubilee juniper kayak kennel kernel kettle kidney kiln kindle kingdom kiosk knapsack
knoll label ladder lagoon lantern larch lattice lavender ledger legend lemon lentil
lever lichen lilac limestone linen lobster locket lodge lumber lunar lyric magnet
mallet mango mantle maple marble marigold marsh meadow medal melody mesa meteor
mineral minnow mitten module monsoon mosaic mural muslin mustard napkin narrow nectar
needle nettle nickel nimble noble nomad nougat novel nozzle nutmeg oasis oatmeal obelisk
ocean octave olive onyx opal orbit orchard orchid osprey otter outpost oyster paddle
pagoda palette pamphlet panther parade parcel parsley pastel pebble pelican pendant
pepper petal pewter pigeon pillar pinnacle pistol plank plaza plume pocket pollen
poplar porch portal pottery prairie prism pulley pumpkin quarry quartz quiver quill
quilt rabbit radish raffle rafter rampart raven realm reed relic rhubarb ribbon ridge
ripple river robin rocket rosin rubble rudder saddle saffron salmon sandal satchel
scarlet scroll seashell sequin shadow shovel shutter sierra silver sketch sleigh
slipper sonnet sorrel spindle sprocket squirrel stable stencil summit sundial swallow
tablet talon tandem tapestry tavern teapot temple tender thicket thimble thistle
timber tinsel toffee topaz torch trellis trinket trumpet tulip tundra tunnel turnip
twilight umber umbrella unicorn upland urchin valley vapor velvet venture verandah
vessel villa vintage violet vortex voyage wafer waggon walnut walrus warden wasp
wattle weasel whisker wicket willow window wizard woodland wrench yarrow yeoman yodel
yonder zealot zenith zephyr zinnia zodiac
""".split()
        )
    )
)

_END = ""  # bucket key for a word that has no letter at the current position


def _rank(ch: str) -> str:
    """How a letter's position is shown, e.g. 'c' -> '3'; a word that ran out -> '0'."""
    if ch == _END:
        return "0"
    return str(ord(ch) - ord("a") + 1) if "a" <= ch <= "z" else f"'{ch}'"


def _show_block(words: list[str]) -> str:
    return f'"{words[0]}"' if len(words) == 1 else "[" + " ? ".join(f'"{w}"' for w in words) + "]"


def _sort_steps(words: list[str], slip_at: int | None = None, rng: random.Random | None = None):
    """Letter-by-letter bucket sort that records each step.

    Always refines the leftmost unresolved block.  Returns ``(steps, final_order)``; each
    step is ``(block_words, pos, keys_in_order, buckets, blocks_after)``.  With ``slip_at``
    the ``slip_at``-th step that has two or more buckets puts two neighbouring buckets in
    the wrong order.
    """
    blocks = [(list(words), 0)]
    steps, multi = [], 0
    while any(len(b) > 1 for b, _ in blocks):
        i = next(j for j, (b, _) in enumerate(blocks) if len(b) > 1)
        ws, pos = blocks[i]
        buckets: dict[str, list[str]] = {}
        for w in ws:
            buckets.setdefault(w[pos] if pos < len(w) else _END, []).append(w)
        keys = sorted(buckets)
        if len(keys) > 1:
            if multi == slip_at:
                j = rng.randrange(len(keys) - 1)
                keys[j], keys[j + 1] = keys[j + 1], keys[j]
            multi += 1
        blocks[i : i + 1] = [(buckets[k], pos + 1) for k in keys]
        steps.append((ws, pos, keys, buckets, [b for b, _ in blocks]))
    return steps, [b[0] for b, _ in blocks], multi


def _parse(text: str) -> list[str]:
    if not text.startswith(PREFIX):
        raise ValueError(f"not a word_sorting input: {text!r}")
    return text[len(PREFIX) :].split()


def _first_difference(a: str, b: str) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f'letter {i + 1}: "{x}" ({_rank(x)}) vs "{y}" ({_rank(y)})'
    return f'"{a}" is a prefix of "{b}"' if len(a) < len(b) else f'"{b}" is a prefix of "{a}"'


class WordSorting(SyntheticTask):
    """'Sort the following words alphabetically: List: ...'"""

    name = "synthetic_word_sorting"
    bbh_name = "word_sorting"
    description = "Put the given words into alphabetical order."
    answer_type = "free_text"
    knobs = {"min_words": 2, "max_words": 20}

    def _check_knobs(self, p: dict) -> None:
        if not 2 <= p["min_words"] <= p["max_words"] <= len(WORDS):
            raise ValueError(f"need 2 <= min_words <= max_words <= {len(WORDS)}")

    def _sample(self, rng: random.Random, p: dict) -> dict:
        words = rng.sample(WORDS, rng.randint(p["min_words"], p["max_words"]))
        return {"input": PREFIX + " ".join(words), "target": " ".join(sorted(words))}

    def _solve(self, text: str) -> str:
        return " ".join(sorted(_parse(text)))

    def _reason(self, text, target, verbosity, wrong, rng):
        words = _parse(text)
        if len(set(words)) != len(words):
            raise ValueError("word_sorting rationale needs distinct words")
        steps, order, n_multi = _sort_steps(words)
        if wrong:
            steps, order, _ = _sort_steps(words, slip_at=rng.randrange(n_multi), rng=rng)
        long = verbosity == "long"
        lines = []
        for n, (ws, pos, keys, buckets, after) in enumerate(steps):
            which = f"letter {pos + 1}"
            reads = " ".join(f'"{w}": "{w[pos]}" ({_rank(w[pos])}).' if pos < len(w) else f'"{w}": no {which} (0).' for w in ws)
            grouping = " < ".join(f"({_rank(k)}) {_show_block(buckets[k])}" for k in keys)
            if n == 0:
                head = f"Look at {which} of each word: {reads}"
            else:
                head = f"Now sort the group {_show_block(ws)} by {which}: {reads}"
            lines.append(f"{head} This gives: {grouping}.")
            if long:
                lines.append("  Order so far: " + " < ".join(_show_block(b) for b in after) + ".")
        lines.append("Putting it all together: " + " < ".join(f'"{w}"' for w in order) + ".")
        if long:
            checks = "; ".join(f'"{a}" before "{b}" ({_first_difference(a, b)})' for a, b in zip(order, order[1:]))
            lines.append(f"Checking each neighbouring pair: {checks}.")
        return "\n".join(lines), " ".join(order)
