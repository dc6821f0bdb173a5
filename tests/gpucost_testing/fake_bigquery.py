"""A local stand-in for the BigQuery REST API: the calls `google-cloud-bigquery` makes for a load job.

A real HTTP server on 127.0.0.1 (ephemeral port, an `HttpFixture`) for
`bigquery.Client(client_options={"api_endpoint": url}, credentials=AnonymousCredentials())`.  It serves
tables.get / tables.insert / tables.delete (a `$YYYYMMDD` partition decorator deletes one partition), the
multipart and resumable uploads of jobs.insert, and jobs.get.  It records every request with the client
library's real body and keeps tables as rows per partition, applying a load job as BigQuery does:
WRITE_TRUNCATE on `table$YYYYMMDD` replaces that day's partition, and a job whose rows do not fit the
decorator's day or the table's schema fails, changing nothing.
No query engine: tests read `tables[...]` directly.

    with FakeBigQuery() as fake:
        fake.fail_next_load("quotaExceeded")   # optional: the next load job ends with errorResult
        ...                                    # point the client at fake.url
        fake.partition("proj.ds.table", date(2024, 1, 1))
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import itertools
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from gpucost_testing import http_fixture

__all__ = ["FakeBigQuery", "FakeTable", "RecordedRequest"]

JsonObject = dict[str, Any]
_Answer = tuple[int, JsonObject, Mapping[str, str]]
"""HTTP status, JSON body, extra headers."""
_TABLES = re.compile(r"/bigquery/v2/projects/(?P<project>[^/]+)/datasets/(?P<dataset>[^/]+)/tables")
_TABLE = re.compile(_TABLES.pattern + r"/(?P<table>[^/?]+)")
_UPLOAD = re.compile(r"/upload/bigquery/v2/projects/(?P<project>[^/]+)/jobs")
_JOB = re.compile(r"/bigquery/v2/projects/(?P<project>[^/]+)/jobs/(?P<job>[^/?]+)")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeTable:
    resource: JsonObject
    partitions: dict[str, list[JsonObject]] = field(default_factory=dict)
    """Rows by partition id (YYYYMMDD)."""

    def rows(self) -> list[JsonObject]:
        return [row for day in sorted(self.partitions) for row in self.partitions[day]]


@dataclass
class _Upload:
    project: str
    job: JsonObject


class FakeBigQuery:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.tables: dict[str, FakeTable] = {}
        """By `project.dataset.table`."""
        self.jobs: dict[str, JsonObject] = {}
        self.loads: list[tuple[JsonObject, bytes]] = []
        """Every load job as uploaded: the job resource the client sent and the data."""
        self._uploads: dict[str, _Upload] = {}
        self._failures: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._http = http_fixture.HttpFixture({("*", "*"): self._serve}, name="fake-bigquery")

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> Self:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next_load(self, reason: str = "backendError") -> None:
        """The next load job is accepted, then ends DONE with this errorResult (nothing written)."""
        self._failures.append(reason)

    def partition(self, table: str, day: dt.date) -> list[JsonObject]:
        return list(self.tables[table].partitions.get(f"{day:%Y%m%d}", []))

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and re.search(path_pattern, r.path)]

    # --- the API -------------------------------------------------------------

    def _serve(self, request: http_fixture.RecordedRequest) -> http_fixture.Reply:
        lowered = {name.lower(): value for name, value in request.headers.items()}
        status, answer, headers = self.handle(request.method, request.path, dict(request.query), lowered,
                                              request.body)
        payload = json.dumps(answer).encode() if status != 204 else b""
        return http_fixture.Reply(status, payload, "application/json; charset=UTF-8", headers)

    def handle(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
               body: bytes) -> _Answer:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, headers, body))
            if method == "POST" and (upload := _UPLOAD.fullmatch(path)):
                return self._start_upload(upload["project"], query, headers, body)
            if method == "PUT" and _UPLOAD.fullmatch(path) and query.get("upload_id") in self._uploads:
                return self._finish_resumable(query["upload_id"], body)
            if method == "GET" and (job := _JOB.fullmatch(path)):
                found = self.jobs.get(job["job"])
                return (200, found, {}) if found else _error(404, "notFound", f"Not found: Job {job['job']}")
            if method == "POST" and (tables := _TABLES.fullmatch(path)):
                return self._insert_table(tables["project"], tables["dataset"], json.loads(body))
            if table := _TABLE.fullmatch(path):
                return self._table_call(method, f"{table['project']}.{table['dataset']}", table["table"])
            return _error(404, "notFound", f"no such API here: {method} {path}")

    def _table_call(self, method: str, dataset: str, table_id: str) -> _Answer:
        name, _, decorator = table_id.partition("$")
        table = self.tables.get(f"{dataset}.{name}")
        if table is None:
            return _error(404, "notFound", f"Not found: Table {dataset.replace('.', ':', 1)}.{name}")
        if method == "GET" and not decorator:
            return 200, table.resource, {}
        if method == "DELETE":
            if decorator:
                table.partitions.pop(decorator, None)
            else:
                del self.tables[f"{dataset}.{name}"]
            return 204, {}, {}
        return _error(400, "invalid", f"unsupported: {method} {table_id}")

    def _insert_table(self, project: str, dataset: str, resource: JsonObject) -> _Answer:
        reference = resource["tableReference"]
        name = f"{project}.{dataset}.{reference['tableId']}"
        if name in self.tables:
            return _error(409, "duplicate", f"Already Exists: Table {name}")
        stored = {**resource, "kind": "bigquery#table", "id": name.replace(".", ":", 1), "type": "TABLE",
                  "creationTime": "1700000000000", "etag": f"etag-{next(self._ids)}"}
        self.tables[name] = FakeTable(stored)
        return 200, stored, {}

    def _start_upload(self, project: str, query: Mapping[str, str], headers: Mapping[str, str],
                      body: bytes) -> _Answer:
        if query.get("uploadType") == "resumable":
            upload_id = f"upload-{next(self._ids)}"
            self._uploads[upload_id] = _Upload(project, json.loads(body))
            location = f"{self.url}/upload/bigquery/v2/projects/{project}/jobs"
            return 200, {}, {"Location": f"{location}?uploadType=resumable&upload_id={upload_id}"}
        metadata, data = _multipart(headers.get("content-type", ""), body)
        return 200, self._run_load(project, metadata, data), {}

    def _finish_resumable(self, upload_id: str, body: bytes) -> _Answer:
        upload = self._uploads.pop(upload_id)
        return 200, self._run_load(upload.project, upload.job, body), {}

    def _run_load(self, project: str, job: JsonObject, data: bytes) -> JsonObject:
        self.loads.append((job, data))
        job_id = job.get("jobReference", {}).get("jobId") or f"job-{next(self._ids)}"
        load = job["configuration"]["load"]
        problem = self._failures.pop(0) if self._failures else None
        error = {"reason": problem, "message": f"injected failure: {problem}"} if problem else self._apply(load, data)
        done: JsonObject = {
            **job,
            "kind": "bigquery#job",
            "id": f"{project}:US.{job_id}",
            "jobReference": {"projectId": project, "jobId": job_id, "location": "US"},
            "status": {"state": "DONE", **({"errorResult": error, "errors": [error]} if error else {})},
            "statistics": {"creationTime": "1700000000000", "load": {"outputRows": str(data.count(b"\n"))}},
        }
        self.jobs[job_id] = done
        return done

    def _apply(self, load: JsonObject, data: bytes) -> JsonObject | None:
        """Write the rows as BigQuery would, or say why not (nothing is written then)."""
        reference = load["destinationTable"]
        name, _, decorator = reference["tableId"].partition("$")
        table = self.tables.get(f"{reference['projectId']}.{reference['datasetId']}.{name}")
        if table is None:
            return {"reason": "notFound", "message": f"Not found: Table {name}"}
        rows = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        columns = [column["name"] for column in table.resource["schema"]["fields"]]
        partition_field = table.resource.get("timePartitioning", {}).get("field")
        for row in rows:
            if sorted(row) != sorted(columns):
                return {"reason": "invalid", "message": f"row columns {sorted(row)} are not the table's"}
            if decorator and partition_field and _day_id(row[partition_field]) != decorator:
                return {"reason": "invalid", "message": f"{partition_field} {row[partition_field]} is outside "
                                                        f"partition {decorator}"}
        by_day: dict[str, list[JsonObject]] = {}
        for row in rows:
            by_day.setdefault(decorator or _day_id(row[partition_field]), []).append(row)
        truncate = load.get("writeDisposition") == "WRITE_TRUNCATE"
        if truncate and decorator:
            table.partitions[decorator] = by_day.get(decorator, [])
        elif truncate:
            table.partitions = by_day
        else:
            for day, day_rows in by_day.items():
                table.partitions.setdefault(day, []).extend(day_rows)
        return None


def _day_id(timestamp: str) -> str:
    return f"{dt.datetime.fromisoformat(timestamp).astimezone(dt.UTC):%Y%m%d}"


def _multipart(content_type: str, body: bytes) -> tuple[JsonObject, bytes]:
    """The job resource and the data of a `multipart/related` upload."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts = [part.get_payload(decode=True) for part in message.iter_parts()]
    if len(parts) != 2 or not all(isinstance(part, bytes) for part in parts):
        raise ValueError(f"expected two parts (metadata, data), got {len(parts)}")
    metadata, data = parts
    assert isinstance(metadata, bytes) and isinstance(data, bytes)
    return json.loads(metadata), data


def _error(status: int, reason: str, message: str) -> _Answer:
    detail = {"reason": reason, "message": message}
    return status, {"error": {"code": status, "message": message, "errors": [detail]}}, {}
