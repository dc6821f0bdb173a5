"""Overhead of GpuCostMiddleware per request: a bare ASGI app against the same app wrapped.

Both are called directly through the ASGI interface in one event loop (no
network, no server), so the difference is the middleware's own work.  Used by
`make bench` (`--only asgi_overhead`); run alone from a checkout with
`PYTHONPATH=exporter:bench python -m gpucost_bench.asgi_overhead [REQUESTS]`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from prometheus_client import CollectorRegistry

from gpucost.instrument.asgi import GpuCostMiddleware, InferenceLabels, record_tokens
from gpucost.instrument.asgi_types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["main", "measure_overhead"]

_RESPONSE_START: Message = {"type": "http.response.start", "status": 200, "headers": []}
_RESPONSE_BODY: Message = {"type": "http.response.body", "body": b"{}", "more_body": False}
_REQUEST: Message = {"type": "http.request", "body": b"{}", "more_body": False}
_HEADERS = [(b"host", b"bench"), (b"content-type", b"application/json"), (b"x-business-unit", b"search")]


async def _bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    record_tokens(scope, prompt=12, completion=34)
    await send(_RESPONSE_START)
    await send(_RESPONSE_BODY)


async def _receive() -> Message:
    return _REQUEST


async def _send(message: Message) -> None:
    return None


async def _time_loop(app: ASGIApp, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        scope: Scope = {"type": "http", "method": "POST", "path": "/generate", "headers": _HEADERS}
        await app(scope, _receive, _send)
    return time.perf_counter() - started


async def _measure(requests: int) -> dict[str, float]:
    labels = InferenceLabels.with_business_units({"search", "ads"}, model="bench", model_version="1")
    wrapped = GpuCostMiddleware(_bare_app, registry=CollectorRegistry(), labels=labels)
    warmup = min(requests, 1000)
    await _time_loop(_bare_app, warmup)
    await _time_loop(wrapped, warmup)
    bare_seconds = await _time_loop(_bare_app, requests)
    wrapped_seconds = await _time_loop(wrapped, requests)
    bare_us = bare_seconds / requests * 1e6
    wrapped_us = wrapped_seconds / requests * 1e6
    return {
        "requests": float(requests),
        "bare_us_per_request": bare_us,
        "wrapped_us_per_request": wrapped_us,
        "overhead_us_per_request": wrapped_us - bare_us,
        "ratio": wrapped_us / bare_us if bare_us > 0 else float("inf"),
    }


def measure_overhead(requests: int) -> dict[str, float]:
    """µs per request bare and wrapped, their difference and ratio, over `requests` calls each."""
    if requests < 1:
        raise ValueError(f"requests must be at least 1 (got {requests})")
    return asyncio.run(_measure(requests))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    requests = int(args[0]) if args else 100_000
    print(json.dumps(measure_overhead(requests), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
