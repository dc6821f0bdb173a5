"""The model server of the instrumentation tests: a Starlette app wrapped by `GpuCostMiddleware`,
labelled with business units `search` and `ads`, and the client traffic that keeps it busy
(used by tests/integration/test_instrumentation_e2e.py).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gpucost.instrument.asgi import GpuCostMiddleware, InferenceLabels, record_tokens
from gpucost.instrument.asgi_types import ASGIApp, Receive, Scope, Send

INFERENCE_MODEL = "ranker"
INFERENCE_MODEL_VERSION = "2024-11"
# Ten sequential requests of equal length per round, 7 for search and 3 for ads, interleaved
# so that a round cut by a scrape shifts the ratio by at most one request.  One request in
# flight at a time: each request's share-seconds are its own duration.
ROUND = ("search", "search", "ads", "search", "search", "ads", "search", "search", "ads", "search")
REQUEST_SECONDS = 0.01


async def rank(request: Request) -> Response:
    body = await request.json()
    await asyncio.sleep(REQUEST_SECONDS)  # stands in for the forward pass on the GPU
    record_tokens(request, prompt=len(body["query"].split()), completion=1)
    return JSONResponse({"ranked": True})


def inference_app(registry: CollectorRegistry) -> ASGIApp:
    """The model server; `/metrics` is served outside the middleware so scrapes are not charged as requests."""
    labels = InferenceLabels.with_business_units(
        {"search", "ads"}, model=INFERENCE_MODEL, model_version=INFERENCE_MODEL_VERSION
    )
    instrumented = GpuCostMiddleware(
        Starlette(routes=[Route("/rank", rank, methods=["POST"])]), registry=registry, labels=labels
    )
    metrics = make_asgi_app(registry)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await metrics(scope, receive, send)
        else:
            await instrumented(scope, receive, send)

    return app


@dataclass
class Traffic:
    """Sequential requests in `ROUND` order until stopped; remembers what went wrong."""

    base_url: str
    stop: threading.Event = field(default_factory=threading.Event)
    sent: dict[str, int] = field(default_factory=lambda: {"search": 0, "ads": 0})
    failures: list[str] = field(default_factory=list)

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            while not self.stop.is_set():
                for business_unit in ROUND:
                    try:
                        answer = http.post(
                            "/rank", json={"query": "gpu cost"}, headers={"X-Business-Unit": business_unit}
                        )
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{business_unit}: {exc!r}")
                        return
                    if answer.status_code != 200:
                        self.failures.append(f"{business_unit}: HTTP {answer.status_code}")
                        return
                    self.sent[business_unit] += 1
