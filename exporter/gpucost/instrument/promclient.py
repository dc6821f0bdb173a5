"""A thin Prometheus HTTP API client (httpx) with retries and backoff.

Connection errors, timeouts and 5xx answers are retried `retries` times with
exponential backoff, then raised as `SourceUnavailable`; a rejected query
(4xx, status error) raises `PrometheusQueryError` at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from gpucost.errors import GpucostError, SourceUnavailable

__all__ = ["PrometheusClient", "PrometheusQueryError"]


class PrometheusQueryError(GpucostError):
    """Prometheus answered but rejected the query (a bug in the query, not an outage)."""


class PrometheusClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 10.0,
        retries: int = 4,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout_seconds, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, expr: str, at: float | None = None) -> Mapping[str, Any]:
        """Instant query; returns the whole JSON answer (`status`, `data`)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = self.base_url + "/api/v1/query"
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self._http.get(url, params=params)
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500:
                last_problem = f"HTTP {response.status_code}"
                continue
            return self._answer(response, expr)
        raise SourceUnavailable(
            f"Prometheus at {self.base_url} unavailable after {self.retries + 1} tries ({last_problem})"
        )

    @staticmethod
    def _answer(response: httpx.Response, expr: str) -> Mapping[str, Any]:
        try:
            answer: Any = response.json()
        except ValueError as exc:
            raise PrometheusQueryError(f"non-JSON answer (HTTP {response.status_code}) to {expr!r}") from exc
        if response.status_code >= 400 or not isinstance(answer, dict) or answer.get("status") != "success":
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise PrometheusQueryError(f"query {expr!r} rejected (HTTP {response.status_code}): {error}")
        return answer
