"""The scorecard's top saving per team, for the weekly digest: optional, cached, never fatal.

`ScorecardTopSavings` computes one scorecard (all teams) from the Prometheus
the digest reads, through `gpucost.scorecard.gather` / `combine`, and keeps it
for `max_age`, so a digest run over many teams costs one scorecard.  When it
cannot be computed, every team gets None and one warning is logged per
attempt; the digest then goes out without the section.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gpucost.errors import GpucostError
from gpucost.scorecard.combine import Scorecard
from gpucost.scorecard.digest import top_lever

__all__ = ["ScorecardTopSavings", "TopSaving", "compute_scorecard", "top_saving"]

log = logging.getLogger(__name__)

ScorecardComputer = Callable[[dt.datetime], Scorecard]


@dataclass(frozen=True, slots=True)
class TopSaving:
    """The lever that alone saves a team most, summed over its models."""

    lever: str
    usd_per_month: float
    confidence: str
    """`measured`, or `estimate` when any of the team's contributions to it is one."""
    risk: str


def top_saving(team: str, scorecard: Scorecard) -> TopSaving | None:
    """The scorecard hook's top lever for `team` plus its confidence; None without savings."""
    found = top_lever(team, scorecard)
    if found is None:
        return None
    lever, usd_per_month, risk = found
    estimate = any(
        saving.lever == lever and saving.share > 0 and saving.confidence == "estimate"
        for score in scorecard.for_team(team)
        for saving in score.levers
    )
    return TopSaving(lever, usd_per_month, "estimate" if estimate else "measured", risk)


def compute_scorecard(
    prometheus_url: str, at: dt.datetime, window: dt.timedelta, tile: dt.timedelta = dt.timedelta(hours=1)
) -> Scorecard:
    """Every team's scorecard over `window` before `at`, with the catalog's candidates and defaults."""
    from gpucost.pricing.catalog import shipped_catalog
    from gpucost.promapi import PrometheusClient
    from gpucost.scorecard.combine import score_workloads
    from gpucost.scorecard.gather import GatherSettings, gather_usage
    from gpucost.scorecard.levers import GpuCandidate
    from gpucost.scorecard.prices import candidates_for

    settings = GatherSettings(
        window_seconds=window.total_seconds(), tile_seconds=tile.total_seconds(), at=at.timestamp()
    )
    catalog = shipped_catalog()

    def candidates(gpu_model: str | None) -> list[GpuCandidate]:
        return candidates_for(gpu_model, catalog.gpu_models)

    usages = gather_usage(PrometheusClient(prometheus_url, retries=2), settings, catalog)
    return score_workloads(usages, candidates, settings.window_seconds)


class ScorecardTopSavings:
    """`for_team(team, now)` over a scorecard computed at most `max_age` ago (a failure is cached too)."""

    def __init__(
        self,
        compute: ScorecardComputer,
        *,
        max_age: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        self._compute = compute
        self._max_age = max_age
        self._computed_at: dt.datetime | None = None
        self._scorecard: Scorecard | None = None

    @classmethod
    def from_prometheus(
        cls, prometheus_url: str, window: dt.timedelta = dt.timedelta(days=7), **kwargs: dt.timedelta
    ) -> ScorecardTopSavings:
        return cls(lambda at: compute_scorecard(prometheus_url, at, window), **kwargs)

    def scorecard(self, now: dt.datetime) -> Scorecard | None:
        if self._computed_at is not None and abs(now - self._computed_at) < self._max_age:
            return self._scorecard
        self._computed_at = now
        try:
            self._scorecard = self._compute(now)
        except GpucostError as err:  # Prometheus down, rejecting or malformed: all PrometheusApiError
            self._scorecard = None
            log.warning("scorecard unavailable, digest goes out without the top saving: %s", err)
        return self._scorecard

    def for_team(self, team: str, now: dt.datetime) -> TopSaving | None:
        scorecard = self.scorecard(now)
        return top_saving(team, scorecard) if scorecard is not None else None
