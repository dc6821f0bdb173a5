"""GCP Cloud Billing export in BigQuery as an `ActualCostSource`: one UTC day's net cost per team label.

One standard-SQL query over the standard or detailed usage cost export table, sent through the BigQuery
REST API v2 (`jobs.query`, then `jobs.getQueryResults` to wait for the job and to page) so the sidecar
needs no google-cloud-bigquery dependency for a single read.  The cost of a row is `cost` plus the sum of
its `credits.amount` (credits are negative): the net amount billed, in USD (rows in other currencies are
left out).  Unlike Cost Explorer the export carries no "estimated" flag and keeps receiving late rows for a
day, so a day's finality comes only from the Reconciler's `lag_hours`; `estimated_by_provider` is always
False.  The export covers every GCP service, so a ratio above 1 is expected where nodes carry more than GPUs.

`parse_export_table`, `build_query`, `query_parameters`, `query_request`, `google_error` and
`parse_result_pages` are pure; `BillingExportSource` does the HTTP.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from gpucost.bigquery_table import BigQueryTable
from gpucost.budgets.reconcile import ActualCosts, day_bounds
from gpucost.errors import SourceUnavailable, UserInputError

__all__ = [
    "BIGQUERY_READONLY_SCOPE",
    "DEFAULT_ENDPOINT",
    "BillingExportSource",
    "ExportTable",
    "build_query",
    "check_project",
    "google_error",
    "make_session",
    "parse_export_table",
    "parse_result_pages",
    "query_parameters",
    "query_request",
]

JsonObject = dict[str, Any]

DEFAULT_ENDPOINT = "https://bigquery.googleapis.com"
BIGQUERY_READONLY_SCOPE = "https://www.googleapis.com/auth/bigquery.readonly"
TABLE_FLAG = "--gcp.billing-export-table"
PROJECT_FLAG = "--gcp.bigquery-project"
TEAM_COLUMN = "team"
COST_COLUMN = "cost_usd"

# Project ids are lower-case letters, digits and `-`; legacy domain-scoped ones read `example.com:project`.
# Datasets allow letters, digits and `_`; table names (the export's are `gcp_billing_export_v1_...`) also `-`.
_PROJECT = r"(?:[a-z0-9][a-z0-9.-]*:)?[a-z][a-z0-9-]*"
_PROJECT_RE = re.compile(_PROJECT)
_TABLE_RE = re.compile(rf"(?P<project>{_PROJECT})\.(?P<dataset>[A-Za-z0-9_]+)\.(?P<table>[A-Za-z0-9_-]+)")


# The billing export table is a BigQuery table like any other; the old name stays for callers.
ExportTable = BigQueryTable


def parse_export_table(value: str, flag: str = TABLE_FLAG) -> ExportTable:
    """Validate the table name strictly: BigQuery cannot take it as a query parameter, so it goes into the SQL."""
    match = _TABLE_RE.fullmatch(value)
    if match is None:
        raise UserInputError(
            flag, "", value, "must be PROJECT.DATASET.TABLE (letters, digits, '_' and '-'; the billing export table)"
        )
    return ExportTable(match["project"], match["dataset"], match["table"])


def check_project(value: str, flag: str = PROJECT_FLAG) -> str:
    """A project id as it may appear in the API path (lower-case letters, digits, '-', optional `domain:`)."""
    if _PROJECT_RE.fullmatch(value) is None:
        raise UserInputError(flag, "", value, "must be a GCP project id (lower-case letters, digits and '-')")
    return value


def build_query(table: ExportTable) -> str:
    """Net USD cost per value of the label `@label_key` ('' when a row has no such label) over one UTC day.

    Credits are summed inside the row (a correlated UNNEST) and then across rows, the form Google's own
    billing-export examples use, so a row's credits are counted once however many there are.
    """
    return (
        "SELECT\n"
        "  IFNULL((SELECT l.value FROM UNNEST(labels) AS l WHERE l.key = @label_key LIMIT 1), '')"
        f" AS {TEAM_COLUMN},\n"
        "  IFNULL(SUM(cost), 0) + IFNULL(SUM((SELECT SUM(c.amount) FROM UNNEST(credits) AS c)), 0)"
        f" AS {COST_COLUMN}\n"
        f"FROM `{table}`\n"
        "WHERE usage_start_time >= @day_start AND usage_start_time < @day_end AND currency = 'USD'\n"
        f"GROUP BY {TEAM_COLUMN}"
    )


def _timestamp(moment: dt.datetime) -> str:
    # The canonical TIMESTAMP literal form, e.g. "2026-11-27 00:00:00+00:00".
    return moment.astimezone(dt.UTC).isoformat(sep=" ")


def _parameter(name: str, kind: str, value: str) -> JsonObject:
    return {"name": name, "parameterType": {"type": kind}, "parameterValue": {"value": value}}


def query_parameters(day: dt.date, label_key: str) -> list[JsonObject]:
    """Named parameters for one UTC day (the bounds of `reconcile.day_bounds`, so both clouds cover the same day)."""
    start, end = day_bounds(day)
    return [
        _parameter("label_key", "STRING", label_key),
        _parameter("day_start", "TIMESTAMP", _timestamp(start)),
        _parameter("day_end", "TIMESTAMP", _timestamp(end)),
    ]


def query_request(table: ExportTable, day: dt.date, label_key: str, timeout_ms: int) -> JsonObject:
    """The `jobs.query` body."""
    return {
        "query": build_query(table),
        "useLegacySql": False,
        "parameterMode": "NAMED",
        "queryParameters": query_parameters(day, label_key),
        "timeoutMs": timeout_ms,
    }


def google_error(status_code: int, text: str) -> str:
    """`HTTP 403 PERMISSION_DENIED: message` from Google's JSON error shape, else the start of the body."""
    try:
        error = _json(text).get("error")
    except ValueError:
        error = None
    if isinstance(error, dict) and error.get("message"):
        status = f" {error['status']}" if error.get("status") else ""
        return f"HTTP {status_code}{status}: {error['message']}"
    return f"HTTP {status_code}: {text[:200]}"


def _json(text: str) -> JsonObject:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _columns(answer: Mapping[str, Any]) -> tuple[int, int]:
    """Positions of the team and cost columns: rows carry values in schema order, not by name."""
    schema = answer.get("schema")
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(fields, list):
        raise SourceUnavailable(f"malformed answer: no schema.fields (got {_short(schema)})")
    names = [f.get("name") if isinstance(f, dict) else None for f in fields]
    positions: list[int] = []
    for column in (TEAM_COLUMN, COST_COLUMN):
        if column not in names:
            raise SourceUnavailable(f"malformed answer: schema has no field {column!r} (fields {names})")
        positions.append(names.index(column))
    return positions[0], positions[1]


def _cell(row: object, index: int, number: int) -> object:
    cells = row.get("f") if isinstance(row, dict) else None
    if not isinstance(cells, list) or len(cells) <= index or not isinstance(cells[index], dict):
        raise SourceUnavailable(f"malformed answer: row {number} has no cell {index} (got {_short(row)})")
    return cells[index].get("v")


def _team(value: object, number: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SourceUnavailable(f"malformed answer: {TEAM_COLUMN!r} of row {number} is {_short(value)}, not a string")
    return value


def _usd(value: object, number: int) -> float:
    usd = math.nan
    if isinstance(value, str | int | float) and not isinstance(value, bool):  # FLOAT64 arrives as a string
        with contextlib.suppress(ValueError):
            usd = float(value)
    if not math.isfinite(usd):
        raise SourceUnavailable(f"malformed answer: {COST_COLUMN!r} of row {number} is {_short(value)}, not a number")
    return usd


def parse_result_pages(pages: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Complete query pages -> {team: usd}; the SQL already added credits, so parsing is by column only.

    The schema of the first page applies to all (later pages repeat it); a team seen twice is summed.
    """
    if not pages:
        return {}
    team_at, cost_at = _columns(pages[0])
    by_team: dict[str, float] = {}
    number = 0
    for page in pages:
        rows = page.get("rows", [])
        if not isinstance(rows, list):
            raise SourceUnavailable(f"malformed answer: rows is {_short(rows)}, not a list")
        for row in rows:
            number += 1
            team = _team(_cell(row, team_at, number), number)
            by_team[team] = by_team.get(team, 0.0) + _usd(_cell(row, cost_at, number), number)
    return by_team


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def make_session(anonymous: bool, credentials: Any = None) -> requests.Session:
    """An HTTP session with `credentials` (a key file's) or Application Default Credentials (read-only BigQuery
    scope), or none for local fakes."""
    if anonymous:
        return requests.Session()
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    if credentials is None:
        credentials, _project = google.auth.default(scopes=[BIGQUERY_READONLY_SCOPE])
    else:  # the key file's credentials come with the broad scope; this session only reads BigQuery
        credentials = credentials.with_scopes([BIGQUERY_READONLY_SCOPE])
    return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]  # google-auth lacks annotations here


class BillingExportSource:
    """Yesterday's (or any UTC day's) net GCP cost per team from the billing export; see the module docstring."""

    provider = "gcp"

    def __init__(
        self,
        table: ExportTable,
        *,
        label_key: str = "team",
        job_project: str = "",
        endpoint: str = DEFAULT_ENDPOINT,
        session_factory: Callable[[], requests.Session] | None = None,
        timeout_ms: int = 30_000,
        max_polls: int = 10,
        max_pages: int = 1_000,
    ) -> None:
        self._table = table
        self._label_key = label_key
        self._job_project = job_project or table.project
        self._endpoint = endpoint.rstrip("/")
        # Called on first use, so missing credentials fail a reconciliation run, not the sidecar's start.
        self._session_factory = session_factory or functools.partial(make_session, False)
        self._session: requests.Session | None = None
        self._timeout_ms = timeout_ms
        self._max_polls = max_polls
        self._max_pages = max_pages

    @property
    def table(self) -> ExportTable:
        return self._table

    def actual_by_team(self, day: dt.date) -> ActualCosts:
        """Net USD per team for one UTC day.

        Never `estimated_by_provider`: the export has no such flag, so the Reconciler's `lag_hours` alone
        decides when the day is final (late rows and credits arriving before then are picked up on re-check).
        """
        pages = self._fetch(day)
        try:
            by_team = parse_result_pages(pages)
        except SourceUnavailable as err:
            raise SourceUnavailable(f"BigQuery billing export {self._table}: {err}") from err
        return ActualCosts(by_team, estimated_by_provider=False)

    @property
    def _queries_url(self) -> str:
        project = urllib.parse.quote(self._job_project, safe="")
        return f"{self._endpoint}/bigquery/v2/projects/{project}/queries"

    def _fetch(self, day: dt.date) -> list[JsonObject]:
        """Run the query, wait for the job (bounded), then follow the pages; all pages are complete answers."""
        body = query_request(self._table, day, self._label_key, self._timeout_ms)
        answer = self._call("POST", self._queries_url, "jobs.query", json=body)
        polls = 0
        while answer.get("jobComplete") is not True:
            if polls >= self._max_polls:
                raise SourceUnavailable(
                    f"BigQuery jobs.getQueryResults on {self._table} failed: job {self._job_id(answer)} "
                    f"not complete after {polls} polls of {self._timeout_ms} ms"
                )
            polls += 1
            answer = self._results(answer, None)
        pages = [answer]
        while token := answer.get("pageToken"):
            if len(pages) >= self._max_pages:
                raise SourceUnavailable(
                    f"BigQuery jobs.getQueryResults on {self._table} failed: more than {self._max_pages} pages"
                )
            answer = self._results(answer, str(token))
            pages.append(answer)
        return pages

    def _job_id(self, answer: Mapping[str, Any]) -> str:
        reference = answer.get("jobReference")
        job_id = reference.get("jobId") if isinstance(reference, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise SourceUnavailable(
                f"BigQuery billing export {self._table}: malformed answer: no jobReference.jobId "
                f"(got {_short(reference)})"
            )
        return job_id

    def _results(self, previous: Mapping[str, Any], page_token: str | None) -> JsonObject:
        """`jobs.getQueryResults` for the job of `previous`: waits up to timeoutMs server-side, or fetches a page."""
        job_id = self._job_id(previous)
        params = {"timeoutMs": str(self._timeout_ms)}
        reference = previous.get("jobReference")
        location = reference.get("location") if isinstance(reference, dict) else None
        if location:
            params["location"] = str(location)  # jobs outside US/EU are found only with their location
        if page_token:
            params["pageToken"] = page_token
        url = f"{self._queries_url}/{urllib.parse.quote(job_id, safe='')}"
        answer = self._call("GET", url, "jobs.getQueryResults", params=params)
        answer.setdefault("jobReference", reference)  # keep the location for the next call
        return answer

    def _call(self, method: str, url: str, api: str, **kwargs: Any) -> JsonObject:
        from google.auth.exceptions import GoogleAuthError

        failed = f"BigQuery {api} on {self._table} failed"
        try:
            if self._session is None:
                self._session = self._session_factory()
            # The server holds a poll up to timeoutMs, so the read timeout must be longer.
            response = self._session.request(method, url, timeout=(10.0, self._timeout_ms / 1000 + 30.0), **kwargs)
        except (requests.RequestException, GoogleAuthError) as err:
            raise SourceUnavailable(f"{failed}: {err}") from err
        if response.status_code != 200:
            raise SourceUnavailable(f"{failed}: {google_error(response.status_code, response.text)}")
        try:
            return _json(response.text)
        except ValueError as err:
            raise SourceUnavailable(f"{failed}: answer is not a JSON object: {response.text[:200]!r}") from err
