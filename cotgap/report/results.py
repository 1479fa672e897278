"""What :func:`cotgap.report.analysis.analyse` concludes: verdict names and result records.

Shared by the analysis modules (:mod:`~cotgap.report.capacity`, :mod:`~cotgap.report.capacity_gap`,
:mod:`~cotgap.report.recommend`, :mod:`~cotgap.report.replicates`) and by the writers
(:mod:`~cotgap.report.analysis_json`, :mod:`~cotgap.report.terminal`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cotgap.protocol.stats import HELPED, HURT, NO_CHANGE

__all__ = [
    "HELPED",
    "NO_CHANGE",
    "HURT",
    "GAP_OBSERVED",
    "NO_GAP",
    "INSUFFICIENT",
    "DO_NOT_DISTIL",
    "BY_EFFECTIVENESS",
    "BY_ACCURACY",
    "BY_ONLY_CANDIDATE",
    "BY_TIE_BREAK",
    "BY_TIE",
    "Cell",
    "TeacherInfo",
    "CapacityOrder",
    "CapacityGap",
    "MeanScore",
    "ReplicateGroup",
    "TaskAnalysis",
    "one_decimal",
]

# Capacity-gap verdicts.
GAP_OBSERVED = "capacity gap observed"
NO_GAP = "no capacity gap"
INSUFFICIENT = "insufficient data"

DO_NOT_DISTIL = "do not distil: use the pre-distillation student"

# Which rule decided a task's recommendation (``decided_by``).
BY_EFFECTIVENESS = "not effective"
BY_ONLY_CANDIDATE = "only candidate"
BY_ACCURACY = "distilled accuracy"
BY_TIE_BREAK = "kept-ratio tie-break"
BY_TIE = "tied within noise"


def one_decimal(x: float) -> str:
    """A percentage or a gap in points as shown in reasons and tables: one decimal."""
    return f"{x:.1f}"


@dataclass
class Cell:
    """One distilled run (setting, teacher, student, seed) compared with the student's baseline."""

    setting: str
    teacher: str
    student: str
    student_size: str
    size: float  # billions of parameters
    distilled: float
    baseline: float
    diff: float  # distilled - baseline, points
    ci_low: float | None
    ci_high: float | None
    updates: int | None = None
    seed: str | None = None  # training seed; runs differing only in it are replicates
    n: int | None = None  # test examples
    p_value: float | None = None  # McNemar exact, raw
    p_adjusted: float | None = None  # Holm over the analysis' cells with a p-value
    wins: int | None = None
    losses: int | None = None
    verdict: str = NO_CHANGE  # HELPED / NO_CHANGE / HURT
    verdict_by: str = ""  # which rule gave the verdict


@dataclass
class TeacherInfo:
    """A teacher of one task. ``accuracy`` (on the train split it wrote for, or as given) is reported;
    the capacity ordering uses ``capacity`` / ``role`` (declared) or ``params_b`` / CoT length."""

    teacher: str
    accuracy: float | None
    kept: int | None  # distinct train questions with a kept rationale
    kept_rationales: int | None = None
    params_b: float | None = None
    cot_tokens: float | None = None  # mean rationale length, tokens of the student's tokenizer
    cot_words: float | None = None
    capacity: float | None = None  # declared rank, higher = more capacity
    role: str | None = None  # declared: strong / large / long vs weak / small / short
    size_from_name: bool = False  # params_b read from the teacher's name (no size column gave one)


@dataclass
class CapacityOrder:
    """Which of two teachers has more capacity, on what basis; ``reason`` says why not when unresolved."""

    stronger: str | None
    weaker: str | None
    basis: str | None  # "declared capacity" | "declared role" | "parameters" | "mean CoT tokens" | "mean CoT words"
    stronger_value: float | str | None = None
    weaker_value: float | str | None = None
    reason: str = ""

    @property
    def resolved(self) -> bool:
        """Whether the capacity of the two teachers could be ordered."""
        return self.stronger is not None


@dataclass
class CapacityGap:
    """Capacity-gap diagnostic for one pair of teachers within one setting."""

    setting: str
    teachers: list[str]
    order: CapacityOrder
    stronger_accuracy: float | None
    weaker_accuracy: float | None
    sizes: list[str]
    advantages: list[float]  # weaker - stronger student accuracy, per shared size
    small_sizes: list[str]
    large_sizes: list[str]
    mean_advantage_small: float | None
    mean_advantage_large: float | None
    margin_small: float | None  # the weaker teacher's lead must exceed this (points)
    margin_drop: float | None  # ... and shrink by more than this
    margin_how: str
    verdict: str
    detail: str
    margin_fallback: bool = False  # the margins are the fixed fallback (test-set size unknown)
    # the paper's descriptive reading of the same advantages: no noise margin (any lead, any drop)
    descriptive_verdict: str = INSUFFICIENT
    descriptive_detail: str = ""


@dataclass
class MeanScore:
    """Mean distilled accuracy of one (setting, teacher): seeds averaged per size, then sizes."""

    setting: str
    teacher: str
    mean: float
    n: int  # runs
    n_test: int | None = None  # smallest test-set size among its runs (None if unknown)


@dataclass
class ReplicateGroup:
    """Runs of one (setting, teacher, student) that differ only in their training seed."""

    setting: str
    teacher: str
    student: str
    student_size: str
    seeds: list[str]
    distilled_mean: float
    distilled_sd: float  # sample standard deviation over seeds
    diff_mean: float
    diff_sd: float
    verdicts: list[str]  # per seed, in ``seeds`` order


@dataclass
class TaskAnalysis:
    """Everything :func:`analyse` concludes for one task (fields as in the JSON of :mod:`cotgap.report.analysis_json`)."""

    task: str
    cells: list[Cell]
    n_helped: int
    n_no_change: int
    n_hurt: int
    effective: bool
    teachers: list[TeacherInfo]
    strongest_teacher: str | None
    weakest_teacher: str | None
    capacity_basis: str | None
    kept_ratio: float | None  # kept(strongest) / kept(weakest); math.inf if the weakest kept nothing
    mean_scores: list[MeanScore]
    capacity_gaps: list[CapacityGap]
    recommendation: str
    recommended_teacher: str | None
    recommended_setting: str | None
    reason: str
    decided_by: str
    replicates: list[ReplicateGroup] = field(default_factory=list)
    updates_note: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        """How many (setting, teacher, student, seed) cells the task has."""
        return len(self.cells)
