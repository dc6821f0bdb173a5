"""gpucost's own estimate of a day's cost per team, read from Prometheus (the reconciler compares it to the bill).

The HTTP client is `gpucost.promapi.PrometheusClient`; it is importable from here
too because the sidecar's wiring (`budgets/cli.py`, `service.py`, `clouds.py`)
names it this way.
"""

from __future__ import annotations

import datetime as dt

from gpucost.budgets.reconcile import day_bounds
from gpucost.promapi import PrometheusClient

__all__ = ["ESTIMATE_QUERY", "PrometheusClient", "PrometheusEstimateSource"]

ESTIMATE_QUERY = "sum by (team) (increase(gpucost_workload_gpu_cost_usd_total[1d]))"


class PrometheusEstimateSource:
    """gpucost's estimate of one UTC day's cost per team: the counters' increase, read at the day's end."""

    def __init__(self, client: PrometheusClient, query: str = ESTIMATE_QUERY) -> None:
        self._client = client
        self._query = query

    def estimated_by_team(self, day: dt.date) -> dict[str, float]:
        _, end = day_bounds(day)
        return {labels.get("team", ""): value for labels, value in self._client.query(self._query, at=end)}
