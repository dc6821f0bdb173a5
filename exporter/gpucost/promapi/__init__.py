"""The one Prometheus HTTP API client: typed answers, one error type, timeouts, retries, a size cap.

`answers` parses (no I/O), `client` talks HTTP, `errors` holds `PrometheusApiError`.
"""

from __future__ import annotations

from gpucost.promapi.answers import (
    Alert,
    InstantResult,
    Matrix,
    Point,
    Rule,
    RuleGroup,
    Sample,
    Scalar,
    Series,
    String,
    Vector,
)
from gpucost.promapi.client import DEFAULT_MAX_RESPONSE_BYTES, Instant, PrometheusClient
from gpucost.promapi.errors import PrometheusApiError

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Alert",
    "Instant",
    "InstantResult",
    "Matrix",
    "Point",
    "PrometheusApiError",
    "PrometheusClient",
    "Rule",
    "RuleGroup",
    "Sample",
    "Scalar",
    "Series",
    "String",
    "Vector",
]
