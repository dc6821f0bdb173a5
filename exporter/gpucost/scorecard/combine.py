"""Combining levers: savings on the same dollars compound, they never add up.

remaining = baseline x prod(1 - s_i), applied in `LEVER_ORDER`; the combined
saving is baseline - remaining, so it is at most the baseline and at least the
largest single lever.  Each step of the product is what that lever saves on
what the earlier levers left (the waterfall).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gpucost.scorecard.levers import (
    LEVER_ORDER,
    GpuCandidate,
    LeverName,
    LeverSaving,
    WorkloadUsage,
    caching,
    commitment,
    idle_release,
    quantization,
    right_size,
    spot,
)

__all__ = [
    "Combined",
    "Scorecard",
    "ScorecardSettings",
    "WaterfallStep",
    "WorkloadScore",
    "combine_shares",
    "score_workload",
    "score_workloads",
]


@dataclass(frozen=True, slots=True)
class ScorecardSettings:
    quantization_speedup: float = 3.0
    """Assumed speed-up of 4-bit quantization (the seed post's ~3x)."""
    commitment_discount: float = 0.30
    right_size_headroom: float = 0.2
    max_utilization_other_model: float = 0.5


@dataclass(frozen=True, slots=True)
class WaterfallStep:
    lever: LeverName
    share_of_baseline: float
    """What this lever saves after the levers before it, as a fraction of the baseline."""


@dataclass(frozen=True, slots=True)
class Combined:
    share: float
    steps: tuple[WaterfallStep, ...]


def combine_shares(shares: Iterable[tuple[LeverName, float]]) -> Combined:
    """Compound (lever, share) pairs in LEVER_ORDER: remaining = prod(1 - s_i)."""
    by_lever = dict(shares)
    remaining = 1.0
    steps: list[WaterfallStep] = []
    for lever in LEVER_ORDER:
        share = min(1.0, max(0.0, by_lever.get(lever, 0.0)))
        steps.append(WaterfallStep(lever, remaining * share))
        remaining *= 1.0 - share
    return Combined(1.0 - remaining, tuple(steps))


@dataclass(frozen=True, slots=True)
class WorkloadScore:
    usage: WorkloadUsage
    levers: tuple[LeverSaving, ...]
    combined: Combined

    @property
    def baseline_usd_per_month(self) -> float:
        return self.usage.baseline_usd_per_month

    @property
    def combined_usd_per_month(self) -> float:
        return self.combined.share * self.usage.baseline_usd_per_month

    def lever(self, name: LeverName) -> LeverSaving:
        return next(saving for saving in self.levers if saving.lever == name)


@dataclass(frozen=True, slots=True)
class Scorecard:
    window_seconds: float
    workloads: tuple[WorkloadScore, ...]

    def teams(self) -> tuple[str, ...]:
        return tuple(sorted({w.usage.team for w in self.workloads}))

    def for_team(self, team: str) -> tuple[WorkloadScore, ...]:
        return tuple(w for w in self.workloads if w.usage.team == team)

    @property
    def baseline_usd_per_month(self) -> float:
        return sum(w.baseline_usd_per_month for w in self.workloads)

    @property
    def combined_usd_per_month(self) -> float:
        return sum(w.combined_usd_per_month for w in self.workloads)


def score_workload(usage: WorkloadUsage, candidates: Sequence[GpuCandidate],
                   settings: ScorecardSettings = ScorecardSettings()) -> WorkloadScore:
    """Every lever alone, in LEVER_ORDER, and their compounded total."""
    computed = {
        "idle_release": idle_release(usage),
        "right_size": right_size(usage, candidates, headroom=settings.right_size_headroom,
                                 max_utilization_other_model=settings.max_utilization_other_model),
        "caching": caching(usage),
        "quantization": quantization(usage, settings.quantization_speedup),
        "spot": spot(usage),
        "commitment": commitment(usage, settings.commitment_discount),
    }
    levers = tuple(computed[name] for name in LEVER_ORDER)
    return WorkloadScore(usage, levers, combine_shares((s.lever, s.share) for s in levers))


def score_workloads(usages: Iterable[WorkloadUsage], candidates_for: Callable[[str | None], Sequence[GpuCandidate]],
                    window_seconds: float, settings: ScorecardSettings = ScorecardSettings()) -> Scorecard:
    scores = tuple(score_workload(u, candidates_for(u.gpu_model), settings)
                   for u in sorted(usages, key=lambda u: (u.team, u.model)))
    return Scorecard(window_seconds, scores)
