"""`gpucost_savings_potential_usd_per_month`: the last computed scorecard as a custom collector.

`collect()` renders the scorecard held by `ScorecardHolder`; it never queries
Prometheus.  A background `Recomputer` replaces the held scorecard every
interval, so a scrape costs nothing and a Prometheus outage keeps the last one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from gpucost.errors import GpucostError
from gpucost.scorecard.combine import Scorecard

__all__ = [
    "COMBINED_LEVER",
    "SAVINGS_METRIC",
    "Recomputer",
    "ScorecardCollector",
    "ScorecardHolder",
    "build_registry",
]

SAVINGS_METRIC = "gpucost_savings_potential_usd_per_month"
SUCCESS_METRIC = "gpucost_scorecard_last_success_timestamp_seconds"
COMBINED_LEVER = "combined"
_LABELS = ["team", "model", "lever", "confidence"]
_log = logging.getLogger(__name__)


class ScorecardHolder:
    """The latest scorecard and when it was computed; safe to read from the scrape thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scorecard: Scorecard | None = None
        self._computed_at = 0.0

    def set(self, scorecard: Scorecard, computed_at: float) -> None:
        with self._lock:
            self._scorecard, self._computed_at = scorecard, computed_at

    def get(self) -> tuple[Scorecard | None, float]:
        with self._lock:
            return self._scorecard, self._computed_at


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    savings = GaugeMetricFamily(
        SAVINGS_METRIC,
        "Monthly saving a lever could make for a team and model, alone; lever=\"combined\" is all levers "
        "compounded. confidence is measured or estimate.",
        labels=_LABELS,
    )
    success = GaugeMetricFamily(SUCCESS_METRIC, "Unix time the scorecard was last computed.")
    return savings, success


class ScorecardCollector(Collector):
    def __init__(self, holder: ScorecardHolder) -> None:
        self._holder = holder

    def describe(self) -> Iterable[Metric]:
        return list(_families())

    def collect(self) -> Iterable[Metric]:
        savings, success = _families()
        scorecard, computed_at = self._holder.get()
        if scorecard is None:
            return [savings]
        for score in scorecard.workloads:
            team, model = score.usage.team, score.usage.model
            for saving in score.levers:
                savings.add_metric([team, model, saving.lever, saving.confidence], saving.usd_per_month)
            any_estimate = any(s.confidence == "estimate" and s.share > 0 for s in score.levers)
            savings.add_metric([team, model, COMBINED_LEVER, "estimate" if any_estimate else "measured"],
                               score.combined_usd_per_month)
        success.add_metric([], computed_at)
        return [savings, success]


def build_registry(holder: ScorecardHolder) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ScorecardCollector(holder))
    return registry


class Recomputer(threading.Thread):
    """Calls `compute` now and every `interval_seconds`; a failure keeps the previous scorecard."""

    def __init__(self, holder: ScorecardHolder, compute: Callable[[], Scorecard], interval_seconds: float) -> None:
        super().__init__(name="scorecard-recompute", daemon=True)
        self._holder = holder
        self._compute = compute
        self._interval = interval_seconds
        self._stop = threading.Event()

    def run_once(self) -> bool:
        try:
            scorecard = self._compute()
        except GpucostError as exc:
            _log.warning("scorecard recompute failed, keeping the previous one: %s", exc)
            return False
        self._holder.set(scorecard, time.time())
        return True

    def run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
