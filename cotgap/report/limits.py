"""Where length limits cut a run's data: training examples truncated at ``training.max_length``
(prompt cut from the left, or the example dropped because its rationale alone does not fit), and
teacher rationales that ran into the generation limit ``max_gen_toks`` without a correct answer.
Both are counted per source, so a teacher whose long CoT is being cut shows up in the report."""

from __future__ import annotations

from cotgap.protocol.constants import BUDGET_HIT_SHARE

# A response re-tokenised after decoding can come out a token or two shorter than generated.
LIMIT_SLACK_TOKENS = 2


def hit_limit(record: dict) -> bool | None:
    """Did this generation stop at ``max_gen_toks``? None when the record cannot tell (API and
    scripted teachers, or records written before token counts were kept)."""
    tokens, limit = record.get("tokens"), record.get("max_gen_toks")
    if tokens is None or not limit:
        return None
    return int(tokens) >= int(limit) - LIMIT_SLACK_TOKENS


def generation_limits(records: list[dict]) -> dict:
    """``{"hit_max_gen_toks": n, "hit_max_gen_toks_without_answer": n}`` (None: not known)."""
    hits = [hit_limit(r) for r in records]
    if not records or any(h is None for h in hits):
        return {"hit_max_gen_toks": None, "hit_max_gen_toks_without_answer": None}
    return {
        "hit_max_gen_toks": sum(hits),
        "hit_max_gen_toks_without_answer": sum(h and not r["correct"] for h, r in zip(hits, records)),
    }


def training_truncation(train_result: dict) -> dict | None:
    """The train stage's counts: ``{"max_length", "prompt_truncated": {source: n}, "dropped": {...}}``."""
    return (train_result.get("extra") or {}).get("truncation")


def budget_flags(sources: list[dict]) -> list[dict]:
    """Sources whose rationales hit the generation budget without a correct answer in more than
    ``BUDGET_HIT_SHARE`` of their generations: ``[{"source", "share", "hit", "generated"}]``."""
    flags = []
    for s in sources:
        hit, n = s.get("hit_max_gen_toks_without_answer"), s.get("generated") or 0
        if hit and n and hit / n > BUDGET_HIT_SHARE:
            flags.append({"source": s["source"], "share": round(hit / n, 4), "hit": hit, "generated": n})
    return flags


def budget_line(flag: dict) -> str:
    """One terminal line for a flagged source."""
    return (
        f"{flag['source']}: {flag['hit']} of {flag['generated']} rationales ({100 * flag['share']:.0f}%) stopped at "
        f"the generation budget without an answer — raise its budget (generation.budgets)"
    )
