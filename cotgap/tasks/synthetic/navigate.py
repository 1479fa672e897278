"""``navigate``: do the movement instructions lead back to the starting point?

Input format (BBH)::

    If you follow these instructions, do you return to the starting point? Take 7 steps. Turn around. Take 7 steps.
    Options:
    - Yes
    - No

Two instruction styles are used, as in BBH: turning (``Turn left.``, ``Turn right.``,
``Turn around.``, ``Take N steps.``) and ``Always face forward.`` followed by
``Take N steps forward/backward/left/right.``.  ``Take 1 step.`` is singular.  Yes and No
are balanced: "Yes" walks are built by appending the moves that lead home; half of the
"No" walks are built the same way and then have one step count changed.

Knobs: ``min_steps``/``max_steps`` (number of instructions, default 3-8),
``max_distance`` (largest N in ``Take N steps``, default 10) and ``face_forward_prob``
(share of ``Always face forward.`` walks, default 0.5).
"""

from __future__ import annotations

import random
import re

from .base import SyntheticTask

QUESTION = "If you follow these instructions, do you return to the starting point?"
OPTIONS = "\nOptions:\n- Yes\n- No"
FACE_FORWARD = "Always face forward."
_DIRS = {"forward": (0, 1), "backward": (0, -1), "left": (-1, 0), "right": (1, 0)}
_AXIS = {
    (0, 1): "the positive y-axis",
    (0, -1): "the negative y-axis",
    (1, 0): "the positive x-axis",
    (-1, 0): "the negative x-axis",
}


def _turn(h, how):
    x, y = h
    return {"left": (-y, x), "right": (y, -x), "around": (-x, -y)}[how]


def _take(k: int, direction: str = "") -> str:
    return f"Take {k} step{'s' if k != 1 else ''}{' ' + direction if direction else ''}."


def _parse(text: str) -> list[str]:
    if not (text.startswith(QUESTION + " ") and text.endswith(OPTIONS)):
        raise ValueError(f"not a navigate input: {text!r}")
    body = text[len(QUESTION) + 1 : -len(OPTIONS)]
    return [s.strip() + "." for s in body.split(".") if s.strip()]


def _step(instr: str, heading):
    """Apply one instruction: returns (delta, new heading)."""
    m = re.fullmatch(r"Take (\d+) steps?(?: (forward|backward|left|right))?\.", instr)
    if m:
        k = int(m.group(1))
        d = _DIRS[m.group(2)] if m.group(2) else heading
        return (d[0] * k, d[1] * k), heading
    m = re.fullmatch(r"Turn (left|right|around)\.", instr)
    if m:
        return (0, 0), _turn(heading, m.group(1))
    if instr == FACE_FORWARD:
        return (0, 0), heading
    raise ValueError(f"unknown navigate instruction: {instr!r}")


def _walk(instrs: list[str], slips: dict[int, tuple[int, int]] | None = None):
    """Positions/headings after each instruction; ``slips[i]`` is added to the i-th delta."""
    pos, heading, out = (0, 0), (0, 1), []
    for i, ins in enumerate(instrs):
        (dx, dy), heading = _step(ins, heading)
        if slips and i in slips:
            dx, dy = dx + slips[i][0], dy + slips[i][1]
        pos = (pos[0] + dx, pos[1] + dy)
        out.append((ins, (dx, dy), pos, heading))
    return out


def _is_move(ins: str) -> bool:
    return ins.startswith("Take ")


class Navigate(SyntheticTask):
    """Yes/No: does a walk described by step-by-step instructions return to the start?"""

    name = "synthetic_navigate"
    bbh_name = "navigate"
    description = "Decide whether following a list of movement instructions brings you back to where you began."
    answer_type = "yes_no"
    knobs = {"min_steps": 3, "max_steps": 8, "max_distance": 10, "face_forward_prob": 0.5}

    def _check_knobs(self, p: dict) -> None:
        if not 2 <= p["min_steps"] <= p["max_steps"]:
            raise ValueError("need 2 <= min_steps <= max_steps")
        if p["max_distance"] < 1 or not 0 <= p["face_forward_prob"] <= 1:
            raise ValueError("need max_distance >= 1 and 0 <= face_forward_prob <= 1")

    # -- building walks --------------------------------------------------------------
    def _random_moves(self, rng, n, p, face_forward):
        out = []
        for _ in range(n):
            k = rng.randint(1, p["max_distance"])
            if face_forward:
                out.append(_take(k, rng.choice(tuple(_DIRS))))
            elif rng.random() < 0.6:
                out.append(_take(k))
            else:
                out.append(f"Turn {rng.choice(('left', 'right', 'around'))}.")
        return out

    def _closing_moves(self, rng, instrs, face_forward):
        """Instructions that bring the walker from the end of ``instrs`` back to (0, 0)."""
        walk = _walk(([FACE_FORWARD] if face_forward else []) + instrs)
        (x, y), heading = (walk[-1][2], walk[-1][3]) if walk else ((0, 0), (0, 1))
        legs = [((0, -1 if y > 0 else 1), abs(y)), ((-1 if x > 0 else 1, 0), abs(x))]
        rng.shuffle(legs)
        out = []
        for want, k in legs:
            if k == 0:
                continue
            if face_forward:
                out.append(_take(k, next(n for n, d in _DIRS.items() if d == want)))
                continue
            if want == _turn(heading, "around") and rng.random() < 0.3:
                how = rng.choice(("left", "right"))  # two quarter turns instead of one half turn
                out += [f"Turn {how}.", f"Turn {how}."]
            elif want != heading:
                out.append(f"Turn {next(h for h in ('left', 'right', 'around') if _turn(heading, h) == want)}.")
            heading = want
            out.append(_take(k))
        if not face_forward and rng.random() < 0.3:  # a final turn does not change the position
            out.append(f"Turn {rng.choice(('left', 'right', 'around'))}.")
        return out

    def _attempt(self, rng: random.Random, p: dict, want_yes: bool, face_forward: bool) -> str | None:
        """One try at a walk with the wanted answer; ``None`` if the draw missed the knobs."""
        n = rng.randint(p["min_steps"], p["max_steps"])
        if not want_yes and rng.random() < 0.5:
            instrs = self._random_moves(rng, n, p, face_forward)
        else:
            base = self._random_moves(rng, max(2, n - rng.randint(1, 2 if face_forward else 4)), p, face_forward)
            if sum(map(_is_move, base)) < 2:  # keeps short, near-identical walks from dominating
                return None
            instrs = base + self._closing_moves(rng, base, face_forward)
            if face_forward:
                rng.shuffle(instrs)
            if not want_yes:  # nudge one step count so that the walk misses the start
                moves = [i for i, s in enumerate(instrs) if _is_move(s)]
                if not moves:
                    return None
                i = rng.choice(moves)
                m = re.fullmatch(r"Take (\d+) steps?( \w+)?\.", instrs[i])
                k = int(m.group(1)) + rng.choice((-2, -1, 1, 2))
                if not 1 <= k <= p["max_distance"]:
                    return None
                instrs[i] = _take(k, (m.group(2) or "").strip())
        if not p["min_steps"] <= len(instrs) <= p["max_steps"] or not any(map(_is_move, instrs)):
            return None
        if any(_is_move(s) and int(s.split()[1]) > p["max_distance"] for s in instrs):
            return None
        text = f"{QUESTION} {' '.join(([FACE_FORWARD] if face_forward else []) + instrs)}{OPTIONS}"
        return text if (self._solve(text) == "Yes") == want_yes else None

    def _sample(self, rng: random.Random, p: dict) -> dict:
        want_yes = rng.random() < 0.5
        face_forward = rng.random() < p["face_forward_prob"]
        for wanted in (want_yes, not want_yes):  # fall back to the other label if need be
            for _ in range(300):
                text = self._attempt(rng, p, wanted, face_forward)
                if text is not None:
                    return {"input": text, "target": "Yes" if wanted else "No"}
        raise ValueError(f"{self.name}: knobs {p} leave no valid walks")

    def _solve(self, text: str) -> str:
        walk = _walk(_parse(text))
        return "Yes" if not walk or walk[-1][2] == (0, 0) else "No"

    def _reason(self, text, target, verbosity, wrong, rng):
        instrs = _parse(text)
        slips: dict[int, tuple[int, int]] = {}
        if wrong:
            walk = _walk(instrs)
            moves = [i for i, (_, d, _, _) in enumerate(walk) if d != (0, 0)]
            if target == "Yes":  # miscount one move by a step or two
                i = rng.choice(moves) if moves else None
                if i is None:  # nothing moves at all: pretend the first instruction moved us
                    slips[0] = (0, 1)
                else:
                    dx, dy = walk[i][1]
                    e = rng.choice((-2, -1, 1, 2))
                    slips[i] = (e if dx else 0, e if dy else 0)
            else:  # miscount the last move along each axis so that the walk seems to close
                x, y = walk[-1][2]
                for axis, off in ((0, x), (1, y)):
                    if off:
                        i = max(j for j in moves if walk[j][1][axis] != 0)
                        fix = [0, 0]
                        fix[axis] = -off
                        slips[i] = (slips.get(i, (0, 0))[0] + fix[0], slips.get(i, (0, 0))[1] + fix[1])
        walk = _walk(instrs, slips)
        long = verbosity == "long"
        lines = ["Start at the origin (0, 0), facing the positive y-axis."]
        prev_pos, prev_head = (0, 0), (0, 1)
        for n, (ins, (dx, dy), pos, head) in enumerate(walk, start=1):
            name = ins[:-1]
            if not long:
                lines.append(f"({n}) {name}: ({pos[0]}, {pos[1]}), facing {_AXIS[head]}.")
            elif ins == FACE_FORWARD:
                lines.append(
                    f"({n}) {name}: we keep facing {_AXIS[head]} and every step is taken "
                    f"relative to that. Still at ({pos[0]}, {pos[1]})."
                )
            elif (dx, dy) == (0, 0) and not _is_move(ins):
                lines.append(
                    f"({n}) {name}: we stay at ({pos[0]}, {pos[1]}), but the heading changes "
                    f"from {_AXIS[prev_head]} to {_AXIS[head]}."
                )
            else:
                lines.append(
                    f"({n}) {name}: x goes from {prev_pos[0]} to {pos[0]} and y goes from "
                    f"{prev_pos[1]} to {pos[1]}, so we are at ({pos[0]}, {pos[1]}), still facing "
                    f"{_AXIS[head]}."
                )
            prev_pos, prev_head = pos, head
        end = walk[-1][2] if walk else (0, 0)
        if long:
            xs = [d[0] for _, d, _, _ in walk if d[0]] or [0]
            ys = [d[1] for _, d, _, _ in walk if d[1]] or [0]
            lines.append(
                f"Re-adding the moves per axis: x: {' + '.join(map(str, xs))} = {end[0]}; "
                f"y: {' + '.join(map(str, ys))} = {end[1]}."
            )
        if end == (0, 0):
            lines.append("We end at (0, 0), exactly where we started.")
            answer = "Yes"
        else:
            lines.append(f"We end at ({end[0]}, {end[1]}), which is not (0, 0), so we are not back at the start.")
            answer = "No"
        return "\n".join(lines), answer
