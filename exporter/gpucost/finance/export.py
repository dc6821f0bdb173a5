"""Export one closed day: read it whole from Prometheus, then replace it whole in the sink.

`gpucost export` runs it for each requested day and the sidecar's export job for
each newly closed one, so both write the same rows the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from gpucost.finance.bigquery import SinkUnavailable
from gpucost.finance.reader import ResourceSource, read_day
from gpucost.finance.rows import CostRow
from gpucost.finance.sink import DaySink
from gpucost.promapi import PrometheusApiError, PrometheusClient

__all__ = ["PROMETHEUS_FLAG", "ExportedDay", "export_day"]

PROMETHEUS_FLAG = "--prometheus.url"


@dataclass(frozen=True, slots=True)
class ExportedDay:
    day: dt.date
    rows: int
    cost_usd: float
    where: str  # the file or partition the day went to

    def summary(self) -> str:
        return f"{self.day.isoformat()}: {self.rows} rows, ${self.cost_usd:,.2f} -> {self.where}"


def export_day(
    client: PrometheusClient, day: dt.date, sources: Sequence[ResourceSource], sink: DaySink
) -> ExportedDay:
    """Replace `day` in the sink; SinkUnavailable (Prometheus or the sink) leaves the day as it was."""
    rows = _read(client, day, sources)
    where = sink(day, rows)
    return ExportedDay(day, len(rows), sum(row.cost_usd for row in rows), where)


def _read(client: PrometheusClient, day: dt.date, sources: Sequence[ResourceSource]) -> list[CostRow]:
    try:
        return read_day(client, day, sources)
    except PrometheusApiError as exc:
        # Named like a sink failure: nothing of the day was written.
        raise SinkUnavailable(PROMETHEUS_FLAG, client.base_url, f"the day was not read ({exc.problem})") from exc
