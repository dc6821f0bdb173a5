"""Requests to the Prometheus HTTP API (stdlib urllib): timeouts, bounded retries, a response size cap.

Connection errors, timeouts, HTTP 5xx and 429 are retried `retries` times with
exponential backoff (a 429/503's `Retry-After` is honoured up to
`max_backoff_seconds`); any other answer is final.  Every failure is one
`PrometheusApiError`.  `timeout_seconds` bounds each attempt: connecting, each
wait for bytes, and the whole body (checked as it arrives, so a server that
trickles bytes is cut off too).  urllib, not httpx: the core install and the instrument
extras have no HTTP library, and one request per query needs no pool.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gpucost.promapi.answers import (
    Alert,
    InstantResult,
    MalformedAnswer,
    Matrix,
    RuleGroup,
    Vector,
    parse_alerts,
    parse_instant,
    parse_label_values,
    parse_matrix,
    parse_rule_groups,
    parse_series_labels,
)
from gpucost.promapi.errors import PrometheusApiError

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "Instant", "PrometheusClient"]

log = logging.getLogger(__name__)

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_READ_CHUNK_BYTES = 64 * 1024
_SHOWN_BODY_BYTES = 160
Instant = float | dt.datetime
"""Unix seconds or an aware datetime."""
Params = Sequence[tuple[str, str]]
T = TypeVar("T")


class _Retryable(Exception):
    """One attempt failed in a way a later attempt may not (connection, timeout, 5xx, 429)."""

    def __init__(self, problem: str, status: int | None = None, retry_after_seconds: float = 0.0) -> None:
        super().__init__(problem)
        self.status = status
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class _Request:
    path: str
    params: Params
    described: str
    """How the error text names the request: `query 'up'`, `GET /api/v1/rules`."""


class PrometheusClient:
    """Prometheus (or VictoriaMetrics) at `base_url`; each method is one API call, retried when transient."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 15.0,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timeout_seconds <= 0 or retries < 0 or backoff_seconds < 0 or max_response_bytes <= 0:
            raise ValueError("timeout_seconds and max_response_bytes must be positive, retries and backoff >= 0")
        self._base_url = base_url.rstrip("/")
        self._timeout_seconds = timeout_seconds
        self._retries = retries
        self._backoff_seconds = backoff_seconds
        self._max_backoff_seconds = max_backoff_seconds
        self._max_response_bytes = max_response_bytes
        self._sleep = sleep

    @property
    def base_url(self) -> str:
        return self._base_url

    def instant(self, expr: str, at: Instant | None = None) -> InstantResult:
        """`/api/v1/query`: a vector, a matrix (range selector), a scalar or a string."""
        request = _Request("/api/v1/query", _with_time([("query", expr)], at), f"query {expr!r}")
        return self._call(request, parse_instant)

    def query(self, expr: str, at: Instant | None = None) -> Vector:
        """An instant query whose result must be an instant vector; iterate it as `(labels, value)`."""
        return self._expect(Vector, self.instant(expr, at), expr)

    def query_matrix(self, expr: str, at: Instant | None = None) -> Matrix:
        """An instant query over a range selector (`metric[5m]`): every raw sample in the range."""
        return self._expect(Matrix, self.instant(expr, at), expr)

    def query_range(self, expr: str, start: Instant, end: Instant, step_seconds: float) -> Matrix:
        params = [("query", expr), ("start", _unix(start)), ("end", _unix(end)), ("step", f"{step_seconds:g}")]
        return self._call(_Request("/api/v1/query_range", params, f"range query {expr!r}"), parse_matrix)

    def series(
        self, match: Sequence[str], start: Instant | None = None, end: Instant | None = None
    ) -> tuple[Mapping[str, str], ...]:
        """Label sets of the series matching any selector in `match`."""
        params = _with_range([("match[]", selector) for selector in match], start, end)
        return self._call(_Request("/api/v1/series", params, f"series {list(match)!r}"), parse_series_labels)

    def label_values(
        self, label: str, match: Sequence[str] = (), start: Instant | None = None, end: Instant | None = None
    ) -> tuple[str, ...]:
        path = f"/api/v1/label/{urllib.parse.quote(label, safe='')}/values"
        params = _with_range([("match[]", selector) for selector in match], start, end)
        return self._call(_Request(path, params, f"values of label {label!r}"), parse_label_values)

    def alerts(self) -> tuple[Alert, ...]:
        return self._call(_Request("/api/v1/alerts", [], "GET /api/v1/alerts"), parse_alerts)

    def rule_groups(self) -> tuple[RuleGroup, ...]:
        return self._call(_Request("/api/v1/rules", [], "GET /api/v1/rules"), parse_rule_groups)

    def _expect(self, kind: type[T], result: InstantResult, expr: str) -> T:
        if not isinstance(result, kind):
            raise self._error(
                _Request("/api/v1/query", [], f"query {expr!r}"),
                f"the answer is a {type(result).__name__.lower()}, not a {kind.__name__.lower()}",
            )
        return result

    def _call(self, request: _Request, parse: Callable[[object], T]) -> T:
        status, body = self._with_retries(request)
        data = self._data(request, status, body)
        try:
            return parse(data)
        except MalformedAnswer as exc:
            raise self._error(request, f"malformed answer: {exc}", status=status) from exc

    def _with_retries(self, request: _Request) -> tuple[int, bytes]:
        url = self._base_url + request.path
        if request.params:
            url += "?" + urllib.parse.urlencode(request.params)
        attempts = self._retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(request, url)
            except _Retryable as failure:
                if attempt + 1 == attempts:
                    raise self._error(
                        request, f"unavailable after {attempts} tries: {failure}", status=failure.status, transient=True
                    ) from failure
                delay = min(
                    max(self._backoff_seconds * 2**attempt, failure.retry_after_seconds), self._max_backoff_seconds
                )
                log.debug("Prometheus %s (%s): %s; retrying in %.2fs", url, request.described, failure, delay)
                self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _attempt(self, request: _Request, url: str) -> tuple[int, bytes]:
        """One GET; raises `_Retryable` for what a later attempt may not see again."""
        deadline = time.monotonic() + self._timeout_seconds
        try:
            response = urllib.request.urlopen(
                urllib.request.Request(url, headers={"Accept": "application/json"}), timeout=self._timeout_seconds
            )
        except urllib.error.HTTPError as answer:  # a non-2xx answer: still has a status and a body
            response = answer
        except urllib.error.URLError as exc:
            raise _Retryable(_describe(exc.reason)) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(_describe(exc)) from exc
        with response:
            status: int = response.status or 0
            body = self._read(request, response, deadline)
            if status == 429 or status >= 500:
                raise _Retryable(
                    f"HTTP {status}{_prometheus_error_suffix(body)}", status, _retry_after(response.headers)
                )
            return status, body

    def _read(self, request: _Request, response: http.client.HTTPResponse, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_response_bytes:
            raise self._too_large(request)
        chunks: list[bytes] = []
        size = 0
        try:
            # read1: whatever has arrived, so the deadline is checked while a slow body trickles in.
            while chunk := response.read1(_READ_CHUNK_BYTES):
                size += len(chunk)
                if size > self._max_response_bytes:
                    raise self._too_large(request)
                # A server that trickles bytes never trips the per-read socket timeout; the deadline does.
                if time.monotonic() > deadline:
                    raise _Retryable(f"no complete answer within {self._timeout_seconds:g}s")
                chunks.append(chunk)
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(f"reading the answer: {_describe(exc)}") from exc
        return b"".join(chunks)

    def _data(self, request: _Request, status: int, body: bytes) -> object:
        """The `data` member of a success envelope; a rejection names Prometheus's errorType and error."""
        try:
            answer = json.loads(body)
        except ValueError as exc:
            raise self._error(
                request, f"malformed answer (HTTP {status}): not JSON: {body[:_SHOWN_BODY_BYTES]!r}", status=status
            ) from exc
        if not isinstance(answer, dict) or "status" not in answer:
            raise self._error(
                request, f"malformed answer (HTTP {status}): no status member: {body[:_SHOWN_BODY_BYTES]!r}",
                status=status,
            )
        if answer["status"] != "success" or status >= 300:
            error_type = str(answer.get("errorType", ""))
            raise self._error(
                request,
                f"rejected with HTTP {status}{_error_text(error_type, answer.get('error'))}",
                status=status,
                error_type=error_type,
            )
        return answer.get("data")

    def _too_large(self, request: _Request) -> PrometheusApiError:
        return self._error(request, f"the answer is larger than the {self._max_response_bytes} bytes allowed")

    def _error(
        self, request: _Request, problem: str, *, status: int | None = None, error_type: str = "",
        transient: bool = False,
    ) -> PrometheusApiError:
        return PrometheusApiError(
            self._base_url + request.path, request.described, problem,
            status=status, error_type=error_type, transient=transient,
        )


def _unix(at: Instant) -> str:
    seconds = at.timestamp() if isinstance(at, dt.datetime) else float(at)
    return f"{seconds:.3f}"


def _with_time(params: list[tuple[str, str]], at: Instant | None) -> Params:
    return params if at is None else [*params, ("time", _unix(at))]


def _with_range(params: list[tuple[str, str]], start: Instant | None, end: Instant | None) -> Params:
    bounds = [(name, _unix(at)) for name, at in (("start", start), ("end", end)) if at is not None]
    return [*params, *bounds]


def _retry_after(headers: Mapping[str, str]) -> float:
    """`Retry-After` in seconds; the HTTP-date form is rare enough from Prometheus proxies to ignore."""
    value = headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else 0.0


def _prometheus_error_suffix(body: bytes) -> str:
    """`: <errorType>: <error>` when a 5xx body is Prometheus's JSON envelope (a query timeout is a 503)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    if isinstance(answer, dict) and answer.get("error"):
        return _error_text(str(answer.get("errorType", "")), answer["error"])
    return ""


def _error_text(error_type: str, error: object) -> str:
    """` bad_data: parse error ...`, as Prometheus's envelope names the problem."""
    kind = f" {error_type}" if error_type else ""
    return f"{kind}: {error}" if error else kind


def _describe(problem: object) -> str:
    return f"{type(problem).__name__}: {problem}" if isinstance(problem, BaseException) else str(problem)
