"""The shared generation cache's entries, verified as a run folder's stages are (``cotgap.rundir``).

An entry is ``<slug>-<key>.jsonl`` (the rationales) and, written after it, ``<slug>-<key>.json``:
``{"schema", "key", "files": {name: {size, digest}}}`` — the key the entry answers and the size and
sha256 of its file. On read an entry counts only when its record names this key, its file
matches the record, it parses, and it holds exactly one record per (sample, train question), each
answering that question. Anything else is named in one line, both files are set aside
(``.corrupt``) and the rationales are generated again.

Even a well-formed entry is not believed about correctness: every record's ``correct`` (and
``answer``, ``target``) is re-derived from its response with the task's own scoring
(``cotgap.tasks.rescoring``), so an edited flag can never reach the filter or the report.
"""

from __future__ import annotations

from pathlib import Path

from cotgap.jsonio import file_digest, read_json, read_jsonl, write_json, write_jsonl

SCHEMA = "cotgap.gencache/1"


def record_path(entry: Path) -> Path:
    """The entry's record, beside it: ``<slug>-<key>.json``."""
    return entry.with_suffix(".json")


def write(entry: Path, key: str, records: list[dict]) -> None:
    """Store ``records`` as the entry answering ``key``: the rationales first, the record last, so a
    kill in between leaves an entry without a record (set aside and regenerated on read)."""
    write_jsonl(entry, records)
    write_json(
        record_path(entry),
        {"schema": SCHEMA, "key": key, "files": {entry.name: {"size": entry.stat().st_size, "digest": file_digest(entry)}}},
    )


def read(entry: Path, key: str, *, task, scoring: str, samples: int, log) -> list[dict] | None:
    """The entry's records, re-scored with ``task``'s own scoring, or None to (re)generate them
    (no entry, or one that fails a check: it is named in one line and set aside)."""
    if not entry.exists() and not record_path(entry).exists():
        return None
    records, why = _load(entry, key, samples, task)
    if why is None:
        why, changed = _rescore(records, task, scoring)
        if why is None:
            if changed:
                log(
                    f"  [yellow]generation cache entry {entry.name}: {changed} `correct` flag(s) differed from "
                    "the task's scoring; re-derived[/yellow]"
                )
            return records
    _set_aside(entry, why, log)
    return None


def _load(entry: Path, key: str, samples: int, task) -> tuple[list[dict] | None, str | None]:
    """(records, None) for an entry that passes every check but the scoring, else (None, why)."""
    from cotgap.backends import evaluation

    rec_file = record_path(entry)
    try:
        rec = read_json(rec_file) if rec_file.is_file() else None
    except (ValueError, OSError, UnicodeDecodeError):
        return None, f"its record {rec_file.name} is corrupt"
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
        return None, f"it has no valid record {rec_file.name}"
    if rec.get("key") != key:
        return None, "its record answers another key"
    want = (rec.get("files") or {}).get(entry.name) or {}
    if not entry.is_file():
        return None, f"{entry.name} is missing or not a file"
    if entry.stat().st_size != want.get("size") or file_digest(entry) != want.get("digest"):
        return None, "its file does not match its record's digest"
    try:
        records = read_jsonl(entry)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        return None, f"it does not parse ({type(exc).__name__})"
    return records, _shape_problem(records, evaluation.docs(task), samples)


def _shape_problem(records: list, docs: list[dict], samples: int) -> str | None:
    """Why ``records`` are not one record per (sample, question) answering that question, or None."""
    from cotgap.records import missing_fields

    if len(records) != len(docs) * samples:
        return f"it holds {len(records)} records, not {len(docs) * samples}"
    seen = set()
    for i, r in enumerate(records):
        if missing_fields(r):
            return f"record {i} lacks {', '.join(missing_fields(r))}"
        doc_id, sample = r["doc_id"], r.get("sample", 0)
        if not isinstance(doc_id, int) or not 0 <= doc_id < len(docs) or not isinstance(r["response"], str):
            return f"record {i} has an invalid doc_id or response"
        if (sample, doc_id) in seen or not isinstance(sample, int) or not 0 <= sample < samples:
            return f"record {i} repeats or invents a sample (doc {doc_id}, sample {sample})"
        if "input" in r and r["input"] != docs[doc_id].get("input"):
            return f"record {i} answers another question than train doc {doc_id}"
        seen.add((sample, doc_id))
    return None


def _rescore(records: list[dict], task, scoring: str) -> tuple[str | None, int]:
    """Set each record's ``correct``, ``answer`` and ``target`` from the task (in place); returns
    (None, how many flags changed), or (why, 0) when the task cannot score them."""
    from cotgap.backends import evaluation
    from cotgap.tasks.rescoring import score_responses

    docs = evaluation.docs(task)
    try:
        scored = score_responses(task, scoring, [(docs[r["doc_id"]], r["response"]) for r in records])
    except (TypeError, ValueError, KeyError) as exc:
        return f"its responses cannot be scored ({type(exc).__name__})", 0
    changed = 0
    for r, (answer, correct) in zip(records, scored):
        changed += bool(r.get("correct")) != correct or not isinstance(r.get("correct"), bool)
        r.update(correct=correct, answer=answer, target=docs[r["doc_id"]].get("target"))
    return None, changed


def _set_aside(entry: Path, why: str, log) -> None:
    """Move the entry's files to ``.corrupt`` names (kept for a look, never read) and say so."""
    import shutil

    for f in (entry, record_path(entry)):
        if f.exists() or f.is_symlink():
            dest = f.with_name(f.name + ".corrupt")
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            f.replace(dest)
    log(
        f"  [yellow]generation cache entry {entry.name} cannot be trusted ({why}); regenerating "
        f"(set aside as {entry.name}.corrupt in {entry.parent})[/yellow]"
    )
