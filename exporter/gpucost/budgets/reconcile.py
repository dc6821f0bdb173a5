"""Daily reconciliation: billed cost per scope vs gpucost's own estimate for the same UTC day.

Sources are small interfaces: an `ActualCostSource` per cloud (AWS Cost
Explorer, GCP's billing export in BigQuery) and an `EstimateSource` (the
day's finance rows, read from Prometheus by `prometheus_api`); there is one
Reconciler per cloud and the state keys results by provider.  A day is final
only `lag_hours` after its end and when the cloud no longer marks it
estimated; unfinal days are re-checked on later runs.  The calibration factor
is published, never applied to history.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gpucost.budgets.state import ReconciliationResult, SidecarState
from gpucost.errors import SourceUnavailable
from gpucost.finance.rows import day_bounds

__all__ = [
    "ActualCostSource",
    "ActualCosts",
    "EstimateSource",
    "Reconciler",
    "compare",
    "day_bounds",
]

log = logging.getLogger(__name__)
TOTAL_SCOPE = "all"


@dataclass(frozen=True, slots=True)
class ActualCosts:
    by_team: Mapping[str, float]
    estimated_by_provider: bool  # the cloud still marks the numbers as estimated


class ActualCostSource(Protocol):
    provider: str

    def actual_by_team(self, day: dt.date) -> ActualCosts: ...


class EstimateSource(Protocol):
    def estimated_by_team(self, day: dt.date) -> Mapping[str, float]: ...


def compare(
    provider: str, actual: Mapping[str, float], estimated: Mapping[str, float], final: bool
) -> list[ReconciliationResult]:
    """One result per team seen on either side, plus the `all` scope; untagged spend counts only in `all`."""
    teams = sorted((set(actual) | set(estimated)) - {""})
    results = [
        ReconciliationResult(provider, f"team={team}", actual.get(team, 0.0), estimated.get(team, 0.0), final)
        for team in teams
    ]
    results.append(
        ReconciliationResult(provider, TOTAL_SCOPE, sum(actual.values()), sum(estimated.values()), final)
    )
    return results


@dataclass
class Reconciler:
    actual_source: ActualCostSource
    estimate_source: EstimateSource
    state: SidecarState
    lag_hours: float = 24.0
    calibration_days: int = 7
    pending_days: set[dt.date] = field(default_factory=set)
    _final_ratios: dict[str, list[float]] = field(default_factory=dict)

    def reconcile_day(self, day: dt.date, now: dt.datetime) -> list[ReconciliationResult]:
        provider = self.actual_source.provider
        try:
            actual = self.actual_source.actual_by_team(day)
            estimated = self.estimate_source.estimated_by_team(day)
        except SourceUnavailable as err:
            log.error("reconciliation of %s for %s failed: %s", provider, day, err)
            self.state.set_provider_up(provider, "reconciliation", False)
            self.pending_days.add(day)
            return []
        self.state.set_provider_up(provider, "reconciliation", True)
        _, end = day_bounds(day)
        final = now >= end + dt.timedelta(hours=self.lag_hours) and not actual.estimated_by_provider
        results = compare(provider, actual.by_team, estimated, final)
        for result in results:
            self.state.set_reconciliation(result)
            log.info(
                "reconciliation %s %s %s: billed %.2f USD, estimated %.2f USD%s",
                provider,
                day,
                result.scope,
                result.actual_usd,
                result.estimated_usd,
                "" if final else " (not final yet, will re-check)",
            )
        if final:
            self.pending_days.discard(day)
            self._update_calibration(results)
        else:
            self.pending_days.add(day)
        return results

    def run(self, now: dt.datetime) -> None:
        """Re-check pending days (oldest first), then reconcile yesterday."""
        yesterday = now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
        for day in sorted(self.pending_days - {yesterday}):
            self.reconcile_day(day, now)
        self.reconcile_day(yesterday, now)

    def _update_calibration(self, results: list[ReconciliationResult]) -> None:
        for result in results:
            ratio = result.ratio
            if ratio is None:
                continue
            history = self._final_ratios.setdefault(result.scope, [])
            history.append(ratio)
            del history[: -self.calibration_days]
            self.state.set_calibration(result.provider, result.scope, statistics.fmean(history))
