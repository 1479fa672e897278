"""Which budget each comparison of the cross-run report used: equal updates, equal teacher tokens,
equal seconds, or each run at its own epochs.

A run's budget is read from its own ``report.json`` (``training.budget``, written by
:func:`run_budget` from the run's ``training`` config and its train stage's ``training.budget``
record) and from its sweep's ``sweep.json`` (the grid's ``budget``: ``updates: plain``,
``teacher_tokens: plain`` / N, ``seconds: plain`` / N; :mod:`cotgap.pipeline.budgets`). Per task
the report states the budget the compared runs were held to and, per setting, what they spent.
"""

from __future__ import annotations

from cotgap.protocol.constants import REFERENCE_STRATEGY


def run_budget(training_cfg: dict, strategy_records: dict, compute: dict | None, updates) -> dict:
    """A run's ``report.json`` -> ``training.budget``: what limited its training (``kind``:
    ``teacher_tokens``, ``seconds``, ``updates`` (a fixed ``max_steps``) or ``epochs``), the limit,
    what it spent (teacher tokens in training and in total, training seconds) and its updates."""
    stop_tokens = int(training_cfg.get("stop_teacher_tokens") or 0)
    stop_seconds = float(training_cfg.get("stop_seconds") or 0.0)
    max_steps = int(training_cfg.get("max_steps") or -1)
    if stop_tokens:
        kind, limit = "teacher_tokens", stop_tokens
    elif stop_seconds:
        kind, limit = "seconds", stop_seconds
    elif max_steps > 0:
        kind, limit = "updates", max_steps
    else:
        kind, limit = "epochs", training_cfg.get("epochs")
    stopped = strategy_records.get("training.budget") or {}
    stages = (compute or {}).get("stages") or {}
    train = stages.get("train") or {}
    total = (compute or {}).get("total") or {}
    teacher = ("teacher_tokens_generated", "teacher_tokens_scored")
    return {
        "kind": kind,
        "limit": limit,
        "updates": updates,
        "stopped_by": stopped.get("stopped_by"),
        "teacher_tokens_training": int(sum(train.get(k, 0) for k in teacher)),
        "teacher_tokens_total": int(sum(total.get(k, 0) for k in teacher)),
        "train_seconds": round(float(train.get("wall_seconds") or 0.0), 1),
    }


def _grid_budgets(sweeps: list[dict]) -> dict[str, str]:
    """Run directory -> its sweep's budget as the grid writes it (``teacher_tokens: plain``)."""
    out = {}
    for s in sweeps:
        grid = s.get("grid") or {}
        b = grid.get("budget", {"mode": "updates", "value": REFERENCE_STRATEGY} if grid.get("equal_updates", True) else None)
        text = "none" if b is None else f"{b['mode']}: {b['value']}"
        for c in s.get("cells") or []:
            if c.get("dir"):
                out[str(c["dir"])] = text
    return out


def _spent(b: dict) -> str:
    """One run's training length and cost: ``5 updates, 12,401 teacher tokens in training (total 24,000), 300 s``."""
    stop = f", stopped by its {b['stopped_by'].replace('_', ' ')} budget" if b.get("stopped_by") else ""
    return (
        f"{b.get('updates') if b.get('updates') is not None else '?'} updates, "
        f"{b['teacher_tokens_training']:,} teacher tokens in training (total {b['teacher_tokens_total']:,}), "
        f"{b['train_seconds']:.0f} s training{stop}"
    )


def _heading(budgets: list[dict], grid: set[str]) -> str:
    """What the compared runs were held equal on."""
    kinds = {(b["kind"], b["limit"]) for b in budgets}
    names = {
        "teacher_tokens": "teacher tokens spent by the training",
        "seconds": "training seconds",
        "updates": "optimizer updates",
    }
    if len(grid) == 1:
        g = next(iter(grid))
        mode = g.split(":")[0]
        if g == "none":
            return "none (each run at its own epochs) [grid budget: none]"
        return f"equal {names.get(mode, mode)} [grid budget: {g}]"
    if len(kinds) == 1:
        kind, limit = next(iter(kinds))
        if kind == "epochs":
            return f"each run at its own epochs ({limit} epochs)"
        return f"equal {names[kind]} (limit {limit:,} each)"
    return "mixed (the runs were not held to one budget: compare with care)"


def statements(runs: list[dict], sweeps: list[dict]) -> dict[str, str]:
    """task -> "Budget: <what was held equal> — <setting>: <spent>; ..." for the runs (not ablated)
    that carry a budget record (runs made before the ledger have none and are left out)."""
    grid_of = _grid_budgets(sweeps)
    by_task: dict[str, list[dict]] = {}
    for r in runs:
        if r.get("budget") and not r.get("ablation"):
            by_task.setdefault(r["task"], []).append(r)
    out = {}
    for task, rs in by_task.items():
        grids = {grid_of[r["dir"]] for r in rs if r["dir"] in grid_of}
        parts = [
            f"{_who(r)}: {_limit(r['budget'])}{_spent(r['budget'])}" for r in sorted(rs, key=lambda r: (r["setting"], r["dir"]))
        ]
        out[task] = f"{_heading([r['budget'] for r in rs], grids)} — " + "; ".join(parts)
    return out


def _who(r: dict) -> str:
    """``onpolicy (teacher → student, seed 1)``."""
    seed = "" if r.get("seed") is None else f", seed {r['seed']}"
    return f"{r['setting']} ({r['teacher']} → {r['student']}{seed})"


def _limit(b: dict) -> str:
    if b["kind"] == "teacher_tokens":
        return f"limit {b['limit']:,} teacher tokens, "
    if b["kind"] == "seconds":
        return f"limit {b['limit']:g} s, "
    return ""
