"""Which teacher wrote a run's training data: sources -> teachers, with each teacher's own counts.

A strategy names every source it generates (the run's ``generations/index.json``). A teacher's own
source is its spec, or the spec followed by `` [role]`` (mix), ``#2`` (mind, a teacher listed
twice), ``/…`` or ``:…``. A *teacher assistant's* source (MiCoTA's ``TA:dare_ties(short,long)``,
or any source named ``assistant…``) is data written by another model, a merge of the teachers, so
it is credited to no teacher: a teacher's kept count and CoT length are what *it* wrote.

Kept counts are per distinct train question: a teacher sampling four rationales per question and
keeping three of one question has kept that question once (the kept-ratio guideline compares
how many questions each teacher could teach, not how many samples it drew).
"""

from __future__ import annotations

from pathlib import Path

ASSISTANT_PREFIXES = ("ta:", "assistant", "teacher assistant")


def is_assistant(source: str) -> bool:
    """Whether ``source`` holds a teacher assistant's data (case-insensitive name prefix)."""
    return str(source).strip().lower().startswith(ASSISTANT_PREFIXES)


def teacher_of(source: str, teachers: list[str]) -> str | None:
    """Which of the run's teachers wrote source ``source``; None for an assistant's source or one
    no teacher's name starts. A run with a single teacher credits it every non-assistant source."""
    if is_assistant(source):
        return None
    best = None
    for t in teachers:
        forms = {t}
        if t.startswith(("/", ".", "~")):
            forms.add(str(Path(t).expanduser().resolve()))
        for f in forms:
            if source == f or source.startswith((f + " ", f + "/", f + "[", f + ":", f + "#")):
                if best is None or len(f) > len(best[1]):
                    best = (t, f)
    if best is not None:
        return best[0]
    return teachers[0] if len(teachers) == 1 else None


def _mean_of(sources: list[dict], key: str) -> float | None:
    """Mean rationale length over all of the sources' generations, or None if a source lacks it."""
    total = n = 0.0
    for s in sources:
        stats = s.get("rationale_length_all") or {}
        if stats.get("n", 0) and stats.get(key) is None:
            return None
        total += stats.get(key, 0.0) * stats.get("n", 0)
        n += stats.get("n", 0)
    return round(total / n, 1) if n else None


def _parameters(spec: str, parameters: dict, api_teachers: dict) -> int | None:
    """A teacher's parameter count: counted from its config, or declared (API teachers)."""
    if parameters.get(spec):
        return int(parameters[spec])
    declared = (api_teachers.get(spec) or {}).get("parameters_b")
    return int(round(float(declared) * 1e9)) if declared else None


def per_teacher(sources: list[dict], kept_questions: dict[str, set], teachers: list[str], parameters: dict,
                api_teachers: dict) -> tuple[list[dict], list[str]]:
    """(one entry per teacher, the assistant / unattributed sources credited to none).

    ``sources`` are the run report's source entries; ``kept_questions`` maps a source name to the
    doc ids of its kept records. Each entry: ``teacher, sources, generated, correct, accuracy (%),
    kept`` (distinct questions), ``kept_rationales``, ``cot_mean_tokens`` / ``cot_mean_words`` (all
    its generations; tokens of the student's tokenizer, when known) and ``parameters``.
    """
    mine: dict[str, list[dict]] = {t: [] for t in dict.fromkeys(teachers)}
    uncredited = []
    for s in sources:
        t = teacher_of(s["source"], teachers)
        if t is None:
            uncredited.append(s["source"])
        else:
            mine[t].append(s)
    out = []
    for t, srcs in mine.items():
        if not srcs:
            continue
        generated = sum(s["generated"] for s in srcs)
        correct = sum(s["correct"] for s in srcs)
        questions = set().union(*(kept_questions.get(s["source"], set()) for s in srcs))
        out.append({"teacher": t, "sources": [s["source"] for s in srcs], "generated": generated,
                    "correct": correct, "accuracy": 100.0 * correct / max(1, generated),
                    "kept": len(questions), "kept_rationales": sum(s["kept"] for s in srcs),
                    "cot_mean_tokens": _mean_of(srcs, "mean_tokens"), "cot_mean_words": _mean_of(srcs, "mean_words"),
                    "parameters": _parameters(t, parameters, api_teachers)})
    return out, uncredited
