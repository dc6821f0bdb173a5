"""Read gpucost's recorded series through the Prometheus HTTP API (httpx, with timeouts and retries)."""

from __future__ import annotations

import datetime as dt
import time

import httpx

from gpucost.budgets.reconcile import day_bounds
from gpucost.errors import SourceUnavailable

__all__ = ["ESTIMATE_QUERY", "PrometheusClient", "PrometheusEstimateSource"]

ESTIMATE_QUERY = "sum by (team) (increase(gpucost_workload_gpu_cost_usd_total[1d]))"


class PrometheusClient:
    def __init__(self, base_url: str, *, timeout: float = 15.0, attempts: int = 3) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._attempts = attempts

    @property
    def base_url(self) -> str:
        return self._base_url

    def query(self, expr: str, at: dt.datetime | None = None) -> list[tuple[dict[str, str], float]]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        last_error = ""
        for attempt in range(self._attempts):
            try:
                response = httpx.get(f"{self._base_url}/api/v1/query", params=params, timeout=self._timeout)
            except httpx.HTTPError as err:
                last_error = str(err)
            else:
                if response.status_code in (429, 503):
                    last_error = f"HTTP {response.status_code}"
                elif response.status_code != 200:
                    raise SourceUnavailable(
                        f"Prometheus query {expr!r}: HTTP {response.status_code} {response.text}"
                    )
                else:
                    return _parse_vector(response.json(), expr)
            time.sleep(0.5 * (2**attempt))
        raise SourceUnavailable(f"Prometheus at {self._base_url} unavailable: {last_error}")


def _parse_vector(answer: object, expr: str) -> list[tuple[dict[str, str], float]]:
    if not isinstance(answer, dict) or answer.get("status") != "success":
        raise SourceUnavailable(f"Prometheus query {expr!r} failed: {answer}")
    data = answer.get("data", {})
    result = data.get("result", []) if isinstance(data, dict) else []
    return [(dict(item["metric"]), float(item["value"][1])) for item in result]


class PrometheusEstimateSource:
    """gpucost's estimate of one UTC day's cost per team: the counters' increase, read at the day's end."""

    def __init__(self, client: PrometheusClient, query: str = ESTIMATE_QUERY) -> None:
        self._client = client
        self._query = query

    def estimated_by_team(self, day: dt.date) -> dict[str, float]:
        _, end = day_bounds(day)
        return {labels.get("team", ""): value for labels, value in self._client.query(self._query, at=end)}
