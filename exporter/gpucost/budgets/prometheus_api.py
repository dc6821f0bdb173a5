"""gpucost's own estimate of a day's cost per team, from the finance rows (the reconciler compares it to the bill).

The estimate is the finance export's rows of the day (`gpucost.finance.reader.read_day`: the same query, the
same rows the Parquet, CSV and BigQuery sinks receive) added up per team, so finance, the drift alert and the
dashboards agree on one number.  Every resource gpucost records counts (GPU, and CPU, memory and storage where
whole-node cost is on): the bill covers whole nodes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from gpucost.finance.reader import SOURCES, ResourceSource, read_day
from gpucost.finance.rows import cost_by_team
from gpucost.promapi import PrometheusClient

__all__ = ["PrometheusEstimateSource"]


class PrometheusEstimateSource:
    """gpucost's estimate of one UTC day's cost per team: the sum of the day's finance rows of each team."""

    def __init__(
        self, client: PrometheusClient, sources: Sequence[ResourceSource] = tuple(SOURCES.values())
    ) -> None:
        self._client = client
        self._sources = sources

    def estimated_by_team(self, day: dt.date) -> dict[str, float]:
        """Raises PrometheusApiError, a SourceUnavailable: the reconciler keeps the day pending."""
        return cost_by_team(read_day(self._client, day, self._sources))
