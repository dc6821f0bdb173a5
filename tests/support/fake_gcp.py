"""A local REST stand-in for the Google Cloud APIs the budget sidecar calls, for tests.

- Cloud Billing Budget API v1: list / create / get / patch / delete under
  `/v1/billingAccounts/{account}/budgets`, JSON bodies in proto3 JSON form
  (camelCase, int64 as strings), enums as integers: the google-cloud REST
  clients send `$alt=json;enum-encoding=int` and the server answers in kind.
  Like the real API it accepts one label key with one value in `budgetFilter.labels`
  and applies a PATCH only to the fields named in `updateMask`.
- Cloud Billing Catalog API v1: `GET /v1/services` and `GET /v1/services/{id}/skus`
  (`currencyCode`), both paginated by `pageSize` / `pageToken`.
- BigQuery API v2, the two calls of the billing-export reconciliation: `jobs.query`
  (`POST /bigquery/v2/projects/{p}/queries`) and `jobs.getQueryResults`
  (`GET /bigquery/v2/projects/{p}/queries/{jobId}`).  It does not run SQL: a test scripts
  the result rows per UTC day (`set_billing_rows`), keyed by the `day_start` TIMESTAMP
  parameter; the fake checks that the query names the export table (`set_billing_table`) and
  uses the named parameters, answers `jobComplete: false` the first `incomplete_polls` times
  per job, pages rows by `page_size` and can fail every call (`fail_bigquery`).

Errors use Google's JSON error shape so `google.api_core` raises the matching
exception (`NotFound`, `InvalidArgument`, ...).  `requests` records what was
called, for asserting that planning never writes.  Plain http on 127.0.0.1; the
clients are built with `client_options={"api_endpoint": server.url}` and
`AnonymousCredentials()` (the BigQuery source with a plain session and `server.url` as endpoint).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import threading
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply

JsonObject = dict[str, Any]

ENUM_QUERY = "json;enum-encoding=int"
# google.cloud.billing.budgets.v1 enums, as integers on the wire.
BASIS_CURRENT_SPEND = 1
BASIS_FORECASTED_SPEND = 2
CALENDAR_PERIOD_MONTH = 1

_BUDGETS = re.compile(r"^/v1/billingAccounts/([^/]+)/budgets$")
_BUDGET = re.compile(r"^/v1/billingAccounts/([^/]+)/budgets/([^/]+)$")
_SERVICES = "/v1/services"
_SKUS = re.compile(r"^/v1/services/([^/]+)/skus$")
_QUERIES = re.compile(r"^/bigquery/v2/projects/([^/]+)/queries$")
_QUERY_RESULTS = re.compile(r"^/bigquery/v2/projects/([^/]+)/queries/([^/]+)$")
_BILLING_SCHEMA: JsonObject = {
    "fields": [
        {"name": "team", "type": "STRING", "mode": "NULLABLE"},
        {"name": "cost_usd", "type": "FLOAT", "mode": "NULLABLE"},
    ]
}
_PARAMETERS = {"label_key": "STRING", "day_start": "TIMESTAMP", "day_end": "TIMESTAMP"}
_UPDATABLE = ("displayName", "budgetFilter", "amount", "thresholdRules", "notificationsRule", "ownershipScope")
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: Mapping[str, str]
    body: JsonObject | None


@dataclass
class _Store:
    lock: threading.Lock = field(default_factory=threading.Lock)
    budgets: dict[str, JsonObject] = field(default_factory=dict)  # resource name -> budget JSON
    services: list[JsonObject] = field(default_factory=list)
    skus: dict[str, list[JsonObject]] = field(default_factory=dict)  # service id -> SKU JSON list
    requests: list[SeenRequest] = field(default_factory=list)
    billing_table: str = ""
    billing_rows: dict[dt.date, list[JsonObject]] = field(default_factory=dict)  # day -> result rows
    incomplete_polls: int = 0
    bigquery_failure: tuple[int, str] | None = None
    jobs: dict[str, _Job] = field(default_factory=dict)


@dataclass
class _Job:
    """A query job: its result rows (encoded as BigQuery rows) and how many more times it answers incomplete."""

    project: str
    rows: list[JsonObject]
    location: str
    incomplete_left: int


def _camel(path: str) -> str:
    head, *rest = path.split("_")
    return head + "".join(part.title() for part in rest)


class FakeGcp:
    """`with FakeGcp() as gcp:`; `gcp.url` is the `api_endpoint` for both clients."""

    def __init__(self, page_size: int = 2, bigquery_location: str = "US") -> None:
        self.page_size = page_size
        self.bigquery_location = bigquery_location
        self._store = _Store()
        # Every route is this fake's own; it keeps its own record of requests (with the query parsed).
        self._http = HttpFixture({("*", "*"): self._answer}, name="fake-gcp", keep_requests=0)

    def start(self) -> FakeGcp:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> FakeGcp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._http.url

    # --- scripting -------------------------------------------------------------

    def put_budget(self, account: str, budget: JsonObject) -> JsonObject:
        """Store a budget as if someone created it elsewhere (console, Terraform)."""
        with self._store.lock:
            return self._insert(account, budget)

    def edit_budget(self, budget: JsonObject) -> None:
        """Replace a stored budget in place (same name), as an edit in the console would."""
        with self._store.lock:
            if budget["name"] not in self._store.budgets:
                raise KeyError(budget["name"])
            self._store.budgets[budget["name"]] = {**copy.deepcopy(budget), "etag": uuid.uuid4().hex}

    def budgets(self, account: str) -> list[JsonObject]:
        prefix = f"billingAccounts/{account}/budgets/"
        with self._store.lock:
            return [copy.deepcopy(b) for name, b in self._store.budgets.items() if name.startswith(prefix)]

    def budget_named(self, account: str, display_name: str) -> JsonObject:
        found = [b for b in self.budgets(account) if b.get("displayName") == display_name]
        if len(found) != 1:
            raise AssertionError(f"{len(found)} budgets named {display_name!r}")
        return found[0]

    def clear_budgets(self) -> None:
        with self._store.lock:
            self._store.budgets.clear()

    def set_catalog(self, services: Sequence[JsonObject], skus: Mapping[str, Sequence[JsonObject]]) -> None:
        with self._store.lock:
            self._store.services = [copy.deepcopy(s) for s in services]
            self._store.skus = {key: [copy.deepcopy(s) for s in value] for key, value in skus.items()}

    def set_billing_table(self, table: str) -> None:
        """The export table (`project.dataset.table`) a query must name; others are "not found"."""
        with self._store.lock:
            self._store.billing_table = table

    def set_billing_rows(self, day: dt.date, rows: Sequence[tuple[str | None, float | str | None]]) -> None:
        """The query result for the UTC day starting at `day`: (team, cost_usd) rows, as the SQL would sum them."""
        with self._store.lock:
            self._store.billing_rows[day] = [
                {"f": [{"v": team}, {"v": None if usd is None else str(usd)}]} for team, usd in rows
            ]

    def set_incomplete_polls(self, count: int) -> None:
        """Each new job answers `jobComplete: false` this many times (its jobs.query answer included)."""
        with self._store.lock:
            self._store.incomplete_polls = count

    def fail_bigquery(self, code: int | None, message: str = "") -> None:
        """Answer every BigQuery call with this Google JSON error (None: stop failing)."""
        with self._store.lock:
            self._store.bigquery_failure = None if code is None else (code, message or f"scripted {code}")

    def reset_bigquery(self) -> None:
        with self._store.lock:
            self._store.billing_rows.clear()
            self._store.jobs.clear()
            self._store.incomplete_polls = 0
            self._store.bigquery_failure = None

    def bigquery_requests(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.path.startswith("/bigquery/")]

    @property
    def requests(self) -> list[SeenRequest]:
        with self._store.lock:
            return list(self._store.requests)

    def writes(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.method in ("POST", "PATCH", "DELETE")]

    # --- handlers (called with the request parsed) -------------------------------

    def _answer(self, request: RecordedRequest) -> Reply:
        parsed = urllib.parse.urlsplit(request.target)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        try:
            body = request.json()
        except ValueError:
            status, answer = _error(400, "body is not JSON")
        else:
            status, answer = self.handle(request.method, urllib.parse.unquote(parsed.path), query, body)
        return Reply(status, json.dumps(answer).encode(), "application/json; charset=UTF-8")

    def handle(
        self, method: str, path: str, query: Mapping[str, str], body: JsonObject | None
    ) -> tuple[int, JsonObject]:
        with self._store.lock:
            self._store.requests.append(SeenRequest(method, path, dict(query), body))
            if path.startswith("/bigquery/"):  # BigQuery clients send no $alt: it is not a GAPIC REST API
                return self._bigquery(method, path, query, body)
            if query.get("$alt") != ENUM_QUERY:
                return _error(400, f"expected $alt={ENUM_QUERY}, got {query.get('$alt')!r}")
            if match := _BUDGETS.match(path):
                if method == "GET":
                    prefix = f"billingAccounts/{match.group(1)}/budgets/"
                    items = [b for name, b in sorted(self._store.budgets.items()) if name.startswith(prefix)]
                    return self._page(items, "budgets", query)
                if method == "POST":
                    problem = _invalid_budget(body)
                    if problem:
                        return _error(400, problem)
                    assert body is not None
                    return 200, self._insert(match.group(1), body)
            elif match := _BUDGET.match(path):
                name = path.removeprefix("/v1/")
                current = self._store.budgets.get(name)
                if current is None:
                    return _error(404, f"budget {name} not found")
                if method == "GET":
                    return 200, copy.deepcopy(current)
                if method == "DELETE":
                    del self._store.budgets[name]
                    return 200, {}
                if method == "PATCH":
                    return self._patch(current, body, query)
            elif path == _SERVICES and method == "GET":
                return self._page(self._store.services, "services", query)
            elif (match := _SKUS.match(path)) and method == "GET":
                if query.get("currencyCode", "USD") != "USD":
                    return _error(400, "this fake serves USD only")
                return self._page(self._store.skus.get(match.group(1), []), "skus", query)
            return _error(404, f"no route for {method} {path}")

    def _bigquery(
        self, method: str, path: str, query: Mapping[str, str], body: JsonObject | None
    ) -> tuple[int, JsonObject]:
        if self._store.bigquery_failure is not None:
            return _error(*self._store.bigquery_failure)
        if (match := _QUERIES.match(path)) and method == "POST":
            return self._start_query(match.group(1), body)
        if (match := _QUERY_RESULTS.match(path)) and method == "GET":
            job = self._store.jobs.get(match.group(2))
            if job is None or job.project != match.group(1):
                return _error(404, f"Not found: Job {match.group(1)}:{match.group(2)}")
            if query.get("location", "US") != job.location:  # like BigQuery outside US/EU: location required
                return _error(404, f"Not found: Job {match.group(1)}:{match.group(2)} in {query.get('location')}")
            return self._job_answer(match.group(2), job, int(query.get("pageToken") or 0))
        return _error(404, f"no route for {method} {path}")

    def _start_query(self, project: str, body: JsonObject | None) -> tuple[int, JsonObject]:
        problem, day = _invalid_query(body, self._store.billing_table)
        if problem:
            return _error(404 if problem.startswith("Not found") else 400, problem)
        assert day is not None
        job_id = f"job_{uuid.uuid4().hex}"
        rows = copy.deepcopy(self._store.billing_rows.get(day, []))
        job = _Job(project, rows, self.bigquery_location, self._store.incomplete_polls)
        self._store.jobs[job_id] = job
        return self._job_answer(job_id, job, 0)

    def _job_answer(self, job_id: str, job: _Job, start: int) -> tuple[int, JsonObject]:
        reference = {"projectId": job.project, "jobId": job_id, "location": job.location}
        if job.incomplete_left > 0:
            job.incomplete_left -= 1
            return 200, {"kind": "bigquery#queryResponse", "jobReference": reference, "jobComplete": False}
        page = job.rows[start : start + self.page_size]
        answer: JsonObject = {
            "kind": "bigquery#queryResponse",
            "schema": copy.deepcopy(_BILLING_SCHEMA),
            "jobReference": reference,
            "totalRows": str(len(job.rows)),
            "jobComplete": True,
        }
        if page:
            answer["rows"] = copy.deepcopy(page)
        if start + self.page_size < len(job.rows):
            answer["pageToken"] = str(start + self.page_size)
        return 200, answer

    def _insert(self, account: str, budget: JsonObject) -> JsonObject:
        stored = copy.deepcopy(budget)
        stored["name"] = f"billingAccounts/{account}/budgets/{uuid.uuid4()}"
        stored["etag"] = uuid.uuid4().hex
        self._store.budgets[stored["name"]] = stored
        return copy.deepcopy(stored)

    def _patch(self, current: JsonObject, body: JsonObject | None, query: Mapping[str, str]) -> tuple[int, JsonObject]:
        if body is None:
            return _error(400, "PATCH needs the budget in the body")
        etag = body.get("etag")
        if etag and etag != current.get("etag"):
            return _error(409, "etag mismatch")
        mask = [_camel(p.strip()) for p in query.get("updateMask", "").split(",") if p.strip()]
        unknown = [p for p in mask if p not in _UPDATABLE]
        if unknown:
            return _error(400, f"updateMask names fields that cannot be updated: {unknown}")
        candidate = copy.deepcopy(current)
        for key in mask or _UPDATABLE:
            if key in body:
                candidate[key] = copy.deepcopy(body[key])
            else:
                candidate.pop(key, None)
        problem = _invalid_budget(candidate)
        if problem:
            return _error(400, problem)
        candidate["etag"] = uuid.uuid4().hex
        self._store.budgets[candidate["name"]] = candidate
        return 200, copy.deepcopy(candidate)

    def _page(self, items: Sequence[JsonObject], key: str, query: Mapping[str, str]) -> tuple[int, JsonObject]:
        size = min(int(query.get("pageSize") or self.page_size), self.page_size)
        start = int(query.get("pageToken") or 0)
        answer: JsonObject = {key: [copy.deepcopy(i) for i in items[start : start + size]]}
        if start + size < len(items):
            answer["nextPageToken"] = str(start + size)
        return 200, answer


def _invalid_budget(budget: JsonObject | None) -> str:
    """The checks of the real API that the sidecar could trip over."""
    if not budget:
        return "budget is required"
    if "amount" not in budget:
        return "budget.amount is required"
    labels = budget.get("budgetFilter", {}).get("labels", {})
    # Filter.labels is map<string, ListValue>; a ListValue is a plain JSON array.
    if len(labels) > 1 or any(not isinstance(values, list) or len(values) != 1 for values in labels.values()):
        return "budget_filter.labels: only one label key with one value is allowed"
    for rule in budget.get("thresholdRules", []):
        if not isinstance(rule.get("spendBasis", BASIS_CURRENT_SPEND), int):
            return "threshold_rules.spend_basis: enums must be integers with enum-encoding=int"
        if rule.get("thresholdPercent", 0) <= 0:
            return "threshold_rules.threshold_percent must be positive"
    return ""


def _invalid_query(body: JsonObject | None, table: str) -> tuple[str, dt.date | None]:
    """What the real API would refuse, plus what this fake needs: the table and the named day parameters."""
    if not body or not isinstance(body.get("query"), str):
        return "Required parameter is missing: query", None
    if body.get("useLegacySql") is not False or body.get("parameterMode") != "NAMED":
        return "expected useLegacySql false and parameterMode NAMED", None
    if not table or f"`{table}`" not in body["query"]:
        return f"Not found: Table {table or '(none scripted)'} is not named in the query", None
    values: dict[str, str] = {}
    for parameter in body.get("queryParameters", []):
        name = parameter.get("name")
        if _PARAMETERS.get(name) != parameter.get("parameterType", {}).get("type"):
            return f"Query parameter {name!r} has an unexpected type", None
        if f"@{name}" not in body["query"]:
            return f"Query parameter {name!r} is not used in the query", None
        values[name] = parameter.get("parameterValue", {}).get("value", "")
    if set(values) != set(_PARAMETERS):
        return f"Query parameters must be {sorted(_PARAMETERS)}, got {sorted(values)}", None
    try:
        start = dt.datetime.fromisoformat(values["day_start"])
        end = dt.datetime.fromisoformat(values["day_end"])
    except ValueError:
        return f"Invalid TIMESTAMP parameter values {values['day_start']!r}, {values['day_end']!r}", None
    if start.utcoffset() != dt.timedelta(0) or start.time() != dt.time(0) or end - start != dt.timedelta(days=1):
        return f"expected one UTC day, got {values['day_start']!r} to {values['day_end']!r}", None
    return "", start.date()


def _error(code: int, message: str) -> tuple[int, JsonObject]:
    return code, {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}}
