"""The BigQuery sink: a day-partitioned, team/model-clustered table; each day loaded by a load job.

The table (`--bigquery.table project.dataset.table`) is created when missing,
partitioned by day on `ChargePeriodStart` and clustered by `x_Team`, `x_Model`.
A day is written by one load job (newline-delimited JSON, the schema given, not
detected) into the partition decorator `table$YYYYMMDD` with WRITE_TRUNCATE: the
job replaces that partition whole or, when it fails, leaves it as it was.  Load
jobs, not streaming inserts: they are free, atomic per job and leave no
streaming buffer that a replace would have to wait for.  A day with no rows
deletes its partition.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Sequence
from typing import Any

from gpucost.bigquery_table import BigQueryTable
from gpucost.errors import SourceUnavailable, UserInputError
from gpucost.finance.rows import COLUMNS, CostRow

__all__ = [
    "CLUSTERING_FIELDS",
    "PARTITION_FIELD",
    "TABLE_FLAG",
    "BigQuerySink",
    "BigQueryTable",
    "SinkUnavailable",
    "bigquery_schema",
    "parse_table",
]

TABLE_FLAG = "--bigquery.table"
ENDPOINT_FLAG = "--bigquery.endpoint"
PARTITION_FIELD = "ChargePeriodStart"
CLUSTERING_FIELDS = ("x_Team", "x_Model")
_BIGQUERY_TYPES = {"string": "STRING", "float": "FLOAT64", "timestamp": "TIMESTAMP"}
_TABLE_RE = re.compile(r"(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9](?:\.[a-z0-9-]+)?|[a-z0-9.-]+:[a-z][a-z0-9-]+)"
                       r"\.(?P<dataset>[A-Za-z0-9_]{1,1024})\.(?P<table>[A-Za-z0-9_-]{1,1024})")


class SinkUnavailable(SourceUnavailable):
    """The sink could not take the day (unreachable, refused, the load job failed); the day is left as it was."""

    def __init__(self, flag: str, value: str, problem: str) -> None:
        self.flag = flag
        super().__init__(f"{flag} {value}: {problem}")


def parse_table(value: str, flag: str = TABLE_FLAG) -> BigQueryTable:
    match = _TABLE_RE.fullmatch(value)
    if match is None:
        raise UserInputError(flag, "", value, "must be PROJECT.DATASET.TABLE")
    return BigQueryTable(match["project"], match["dataset"], match["table"])


def bigquery_schema() -> list[Any]:
    from google.cloud import bigquery

    return [bigquery.SchemaField(column.name, _BIGQUERY_TYPES[column.kind], mode="REQUIRED",
                                 description=column.description) for column in COLUMNS]


def _client_errors() -> tuple[type[Exception], ...]:
    """What the client raises when BigQuery is unreachable or refuses: API, auth, transport and upload errors."""
    import concurrent.futures

    import requests
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError
    from google.resumable_media import InvalidResponse

    return (GoogleAPIError, GoogleAuthError, requests.RequestException, InvalidResponse,
            concurrent.futures.TimeoutError, OSError)


def newline_delimited_json(rows: Sequence[CostRow]) -> bytes:
    lines = [json.dumps(row.record(), default=_json_value, separators=(",", ":")) for row in rows]
    return "".join(line + "\n" for line in lines).encode()


def _json_value(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


class BigQuerySink:
    """Replaces one day's partition per call; `client` is a `google.cloud.bigquery.Client`.

    `flags` are the (table, endpoint) flag names its errors name.
    """

    def __init__(self, client: Any, table: BigQueryTable, *, endpoint: str = "", timeout_seconds: float = 60.0,
                 flags: tuple[str, str] = (TABLE_FLAG, ENDPOINT_FLAG)) -> None:
        self._client = client
        self._table = table
        self._endpoint = endpoint
        self._timeout_seconds = timeout_seconds
        self._table_flag, self._endpoint_flag = flags

    def replace_day(self, day: dt.date, rows: Sequence[CostRow]) -> None:
        try:
            self._ensure_table()
            if rows:
                self._load(day, rows)
            else:
                self._client.delete_table(self._table.partition(day), not_found_ok=True,
                                          retry=self._retry(), timeout=self._timeout_seconds)
        except _client_errors() as exc:
            raise self._unavailable(exc) from exc

    def _ensure_table(self) -> None:
        from google.api_core.exceptions import NotFound
        from google.cloud import bigquery

        try:
            existing = self._client.get_table(str(self._table), retry=self._retry(), timeout=self._timeout_seconds)
        except NotFound:
            table = bigquery.Table(str(self._table), schema=bigquery_schema())
            table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY,
                                                                field=PARTITION_FIELD)
            table.clustering_fields = list(CLUSTERING_FIELDS)
            table.description = "gpucost daily cost rows (FOCUS column names); see docs/finance.md"
            self._client.create_table(table, exists_ok=True, retry=self._retry(), timeout=self._timeout_seconds)
            return
        partitioning = existing.time_partitioning
        if partitioning is None or partitioning.field != PARTITION_FIELD or partitioning.type_ != "DAY":
            raise UserInputError(self._table_flag, "", str(self._table),
                                 f"exists but is not partitioned by day on {PARTITION_FIELD}")

    def _load(self, day: dt.date, rows: Sequence[CostRow]) -> None:
        from google.cloud import bigquery

        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            schema=bigquery_schema(),
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
            time_partitioning=bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY,
                                                        field=PARTITION_FIELD),
            clustering_fields=list(CLUSTERING_FIELDS),
        )
        data = newline_delimited_json(rows)
        job = self._client.load_table_from_file(
            io.BytesIO(data), self._table.partition(day), job_config=config, size=len(data),
            num_retries=2, timeout=self._timeout_seconds,
        )
        job.result(retry=self._retry(), timeout=self._timeout_seconds)

    def _retry(self) -> Any:
        from google.cloud.bigquery import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self._timeout_seconds)

    def _unavailable(self, exc: BaseException) -> SinkUnavailable:
        flag, value = (self._endpoint_flag, self._endpoint) if self._endpoint else (self._table_flag, str(self._table))
        message = getattr(exc, "message", "") or str(exc)
        problem = " ".join(f"{type(exc).__name__}: {message}".split())
        return SinkUnavailable(flag, value, f"the day was not loaded ({problem[:300]})")
