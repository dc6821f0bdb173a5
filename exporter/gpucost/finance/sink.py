"""Where a day's rows go, as `gpucost export` and the sidecar's export job both open it.

`SinkSettings` says which sink (a directory of Parquet or CSV day files, or a
BigQuery table) and `open_sink` turns it into a `DaySink`: a function that
replaces one day whole and says where it went.  The flags a failure names
differ between the two commands (`--out` here, `--export.out` in the sidecar),
so the settings carry them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gpucost.errors import UserInputError
from gpucost.finance.rows import CostRow

__all__ = ["CLI_FLAGS", "DaySink", "SinkFlags", "SinkFormat", "SinkSettings", "open_sink"]

SinkFormat = Literal["parquet", "csv", "bigquery"]
DaySink = Callable[[dt.date, Sequence[CostRow]], str]


@dataclass(frozen=True, slots=True)
class SinkFlags:
    """The flag names a sink's errors name."""

    out: str
    table: str
    endpoint: str
    credentials_file: str


CLI_FLAGS = SinkFlags("--out", "--bigquery.table", "--bigquery.endpoint", "--gcp.credentials-file")


@dataclass(frozen=True, slots=True)
class SinkSettings:
    format: SinkFormat
    out: Path  # the directory of the day files (parquet, csv)
    bigquery_table: str  # PROJECT.DATASET.TABLE (bigquery)
    bigquery_endpoint: str = ""  # "": Google's
    credentials_file: Path | None = None  # None: the environment's credentials
    timeout_seconds: float = 60.0
    flags: SinkFlags = CLI_FLAGS


def open_sink(settings: SinkSettings) -> DaySink:
    """The sink's replace-one-day function; a bad table name or missing credentials raise UserInputError."""
    if settings.format == "bigquery":
        return _bigquery_sink(settings)
    from gpucost.finance.files import write_day_file

    file_format = settings.format

    def write_file(day: dt.date, rows: Sequence[CostRow]) -> str:
        return str(write_day_file(settings.out, day, rows, file_format, flag=settings.flags.out))

    return write_file


def _bigquery_sink(settings: SinkSettings) -> DaySink:
    from gpucost.finance.bigquery import BigQuerySink, parse_table

    flags = settings.flags
    if not settings.bigquery_table:
        raise UserInputError(flags.table, "", "", "is required with --format bigquery")
    table = parse_table(settings.bigquery_table, flags.table)
    client = _bigquery_client(table.project, settings)
    sink = BigQuerySink(client, table, endpoint=settings.bigquery_endpoint, timeout_seconds=settings.timeout_seconds,
                        flags=(flags.table, flags.endpoint))

    def write_partition(day: dt.date, rows: Sequence[CostRow]) -> str:
        sink.replace_day(day, rows)
        return table.partition(day)

    return write_partition


def _bigquery_client(project: str, settings: SinkSettings) -> Any:
    from google.cloud import bigquery

    endpoint = settings.bigquery_endpoint
    options = {"api_endpoint": endpoint} if endpoint else None
    return bigquery.Client(project=project, credentials=_credentials(settings), client_options=options)


def _credentials(settings: SinkSettings) -> Any:
    """The key file's credentials; else the environment's; else, for an explicit endpoint only, none at all."""
    if settings.credentials_file is not None:
        from gpucost.credentials import load_gcp_credentials

        return load_gcp_credentials(settings.credentials_file)
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _project = google.auth.default()
    except DefaultCredentialsError as exc:
        if settings.bigquery_endpoint:  # a local emulator or test server takes anonymous requests
            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        raise UserInputError(settings.flags.credentials_file, "", "",
                             "is needed: no credentials in the environment") from exc
    return credentials
