"""The one error the Prometheus HTTP API client raises."""

from __future__ import annotations

from gpucost.errors import SourceUnavailable

__all__ = ["PrometheusApiError"]


class PrometheusApiError(SourceUnavailable):
    """Prometheus could not answer a request: down, rejected the query, or sent something unreadable.

    It is a `SourceUnavailable` because every caller (the reconciler, the sidecar's
    jobs, the scorecard, MLflow logging) degrades the same way whatever the cause;
    `transient` tells an outage that outlasted the retries from an answer that no
    retry would change.  The text names the URL, the request and Prometheus's own
    error, e.g. `Prometheus at http://prometheus:9090/api/v1/query (query 'sum(')`
    `: rejected with HTTP 400 bad_data: 1:5: parse error: unclosed left parenthesis`.
    """

    def __init__(
        self,
        url: str,
        request: str,
        problem: str,
        *,
        status: int | None = None,
        error_type: str = "",
        transient: bool = False,
    ) -> None:
        self.url = url
        self.request = request
        self.problem = problem
        self.status = status
        self.error_type = error_type
        self.transient = transient
        super().__init__(f"Prometheus at {url} ({request}): {problem}")
