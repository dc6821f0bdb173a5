"""The budget sidecar's finance export job: every closed UTC day, once, to a directory or a BigQuery table.

Off unless `gpucost-budgets serve --export.format` names a sink.  Every
`--export.interval` the job looks for days that closed (`reader.SETTLE` after
midnight UTC) since the last day it exported and exports them in order, each
read whole and replaced whole (`finance.export`), the same rows `gpucost export`
writes.  The first run exports yesterday; older days are `gpucost export
--from/--to`'s.  A failure (Prometheus or the sink unreachable, a directory
that cannot be written) raises out of the run, leaves that day as it was and
the days before it done; the next run retries from that day.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpucost.errors import UserInputError
from gpucost.extras import require_extra
from gpucost.finance.export import ExportedDay, export_day
from gpucost.finance.reader import SOURCES, ResourceSource, days_between, latest_closed_day
from gpucost.finance.sink import DaySink, SinkFlags, SinkFormat, SinkSettings, open_sink
from gpucost.promapi import PrometheusClient

__all__ = ["EXPORT_FLAGS", "DailyExport", "ExportJobSettings", "export_job_settings"]

log = logging.getLogger(__name__)

FORMAT_FLAG = "--export.format"
EXPORT_FLAGS = SinkFlags("--export.out", "--export.bigquery-table", "--export.bigquery-endpoint",
                         "--gcp.credentials-file")
_FORMATS: dict[str, SinkFormat] = {"parquet": "parquet", "csv": "csv", "bigquery": "bigquery"}


@dataclass(frozen=True, slots=True)
class ExportJobSettings:
    sink: SinkSettings
    interval: dt.timedelta  # how often the job looks for a newly closed day, and retries a failed one


def export_job_settings(
    file_format: str, *, out: Path | None, table: str, endpoint: str, credentials_file: Path | None,
    interval: dt.timedelta,
) -> ExportJobSettings:
    """The job's settings, checked when `serve` starts: UserInputError names the flag, MissingExtra the extra."""
    sink_format = _FORMATS.get(file_format)
    if sink_format is None:
        raise UserInputError(FORMAT_FLAG, "", file_format, f"must be one of {', '.join(_FORMATS)}")
    require_extra("finance", f"{FORMAT_FLAG} {file_format}")
    if sink_format == "bigquery":
        from gpucost.finance.bigquery import parse_table

        if not table:
            raise UserInputError(EXPORT_FLAGS.table, "", table, f"is required with {FORMAT_FLAG} bigquery")
        parse_table(table, EXPORT_FLAGS.table)
    elif out is None:
        raise UserInputError(EXPORT_FLAGS.out, "", None, f"is required with {FORMAT_FLAG} {file_format}")
    elif not out.is_dir():
        raise UserInputError(EXPORT_FLAGS.out, "", str(out), "is not a directory")
    sink = SinkSettings(format=sink_format, out=out or Path("."), bigquery_table=table, bigquery_endpoint=endpoint,
                        credentials_file=credentials_file, flags=EXPORT_FLAGS)
    return ExportJobSettings(sink=sink, interval=interval)


class DailyExport:
    """Exports each closed day once, in order; `on_success` hears of every day exported."""

    def __init__(
        self,
        client: PrometheusClient,
        settings: SinkSettings,
        on_success: Callable[[ExportedDay, dt.datetime], None],
        sources: Sequence[ResourceSource] = tuple(SOURCES.values()),
    ) -> None:
        self._client = client
        self._settings = settings
        self._on_success = on_success
        self._sources = sources
        self._sink: DaySink | None = None
        self._next_day: dt.date | None = None  # the first day not exported yet; None before the first run

    def pending(self, now: dt.datetime) -> list[dt.date]:
        """The closed days not exported yet: from the first run's yesterday on, whatever failed since."""
        latest = latest_closed_day(now)
        return days_between(self._next_day or latest, latest)

    def run(self, now: dt.datetime) -> None:
        if self._next_day is None:  # owed from here on, even when this first run fails
            self._next_day = latest_closed_day(now)
        for day in self.pending(now):
            exported = export_day(self._client, day, self._sources, self._open_sink())
            self._next_day = day + dt.timedelta(days=1)
            log.info("finance export %s", exported.summary())
            self._on_success(exported, now)

    def _open_sink(self) -> DaySink:
        # Opened at the first export, not at start: a BigQuery client that cannot be made fails this job alone.
        if self._sink is None:
            self._sink = open_sink(self._settings)
        return self._sink
