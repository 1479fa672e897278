"""Which teacher wrote a run's training data: sources -> teachers, with each teacher's own counts.

Read from the data, never from how a strategy names its sources: every generation record carries
``model``, the model that wrote it (``ctx.generate_rationales`` sets it). A source is a teacher's
when its records were written by that teacher (the run's teachers, as given or resolved); a source
written by any other model — e.g. a teacher assistant made by merging the teachers — is credited to
no teacher and marked ``assistant``: a teacher's kept count and CoT length are what *it* wrote.
Records without ``model`` (runs from before it was kept) credit a single-teacher run's teacher.

Kept counts are per distinct train question: a teacher sampling four rationales per question and
keeping three of one question has kept that question once (the kept-ratio guideline compares
how many questions each teacher could teach, not how many samples it drew).
"""

from __future__ import annotations

from pathlib import Path


def _forms(teacher: str) -> set[str]:
    """The names a teacher's records may carry: as the user wrote it, and resolved for a path."""
    forms = {teacher}
    if teacher.startswith(("/", ".", "~")):
        forms.add(str(Path(teacher).expanduser().resolve()))
    return forms


def teacher_of(source: dict, teachers: list[str]) -> str | None:
    """Which of the run's teachers wrote ``source`` (a run report's source entry, with ``models``:
    the models its records name); None when another model wrote it (an assistant) or it is mixed."""
    models = set(source.get("models") or [])
    if not models:
        return teachers[0] if len(teachers) == 1 else None
    owners = {t for t in teachers for m in models if m in _forms(t)}
    if len(owners) == 1 and all(any(m in _forms(t) for t in teachers) for m in models):
        return owners.pop()
    return None


def is_assistant(source: dict, teachers: list[str]) -> bool:
    """Whether another model than the run's teachers wrote ``source`` (known from its records)."""
    models = set(source.get("models") or [])
    return bool(models) and not any(m in _forms(t) for t in teachers for m in models)


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


def per_teacher(
    sources: list[dict], kept_questions: dict[str, set], teachers: list[str], parameters: dict, api_teachers: dict
) -> tuple[list[dict], list[str]]:
    """(one entry per teacher, the assistant / unattributed sources credited to none).

    ``sources`` are the run report's source entries; ``kept_questions`` maps a source name to the
    doc ids of its kept records. Each entry: ``teacher, sources, generated, correct, accuracy (%),
    kept`` (distinct questions), ``kept_rationales``, ``cot_mean_tokens`` / ``cot_mean_words`` (all
    its generations; tokens of the student's tokenizer, when known) and ``parameters``.
    """
    mine: dict[str, list[dict]] = {t: [] for t in dict.fromkeys(teachers)}
    uncredited = []
    for s in sources:
        t = teacher_of(s, teachers)
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
        out.append(
            {
                "teacher": t,
                "sources": [s["source"] for s in srcs],
                "generated": generated,
                "correct": correct,
                "accuracy": 100.0 * correct / max(1, generated),
                "kept": len(questions),
                "kept_rationales": sum(s["kept"] for s in srcs),
                "cot_mean_tokens": _mean_of(srcs, "mean_tokens"),
                "cot_mean_words": _mean_of(srcs, "mean_words"),
                "parameters": _parameters(t, parameters, api_teachers),
            }
        )
    return out, uncredited
