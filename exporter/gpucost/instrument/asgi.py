"""ASGI middleware that measures each request's GPU-time share, tokens and duplicates.

Pure ASGI: works around FastAPI, Starlette or any ASGI 3 app, imports neither.

    from prometheus_client import CollectorRegistry
    from gpucost.instrument.asgi import GpuCostMiddleware, InferenceLabels, record_tokens

    registry = CollectorRegistry()
    app = GpuCostMiddleware(app, registry=registry,
                            labels=InferenceLabels.with_business_units({"search", "ads"}, model="llama-3-8b"))

A request is in flight from the moment the middleware calls the app until the
app returns (the last body chunk sent).  Every time the number in flight
changes, each request in flight accrues dt / n share-seconds (see `share.py`),
so the shares add up to the process's busy time.  Only `http` scopes are
measured; `websocket` and `lifespan` pass through untouched.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from prometheus_client import CollectorRegistry

from gpucost.instrument.asgi_types import ASGIApp, Message, Receive, Scope, Send
from gpucost.instrument.dedup import BodyHashCache, BodyHasher, DuplicateDetection
from gpucost.instrument.inference_metrics import InferenceMetrics, status_class
from gpucost.instrument.labels import HeaderLabel, InferenceLabels
from gpucost.instrument.request_state import (
    SCOPE_KEY,
    RequestRecord,
    mark_duplicate,
    record_tokens,
    set_model,
)
from gpucost.instrument.share import Clock, ShareIntegrator

__all__ = [
    "DEFAULT_SKIP_PATHS",
    "DuplicateDetection",
    "GpuCostMiddleware",
    "HeaderLabel",
    "InferenceLabels",
    "ShareIntegrator",
    "mark_duplicate",
    "record_tokens",
    "set_model",
]

# Prometheus scrapes and Kubernetes probes of the app are not inference requests.
DEFAULT_SKIP_PATHS: tuple[str, ...] = ("/metrics", "/healthz", "/readyz", "/livez")

_UNSET_STATUS = 0


class GpuCostMiddleware:
    """Wraps an ASGI app; counts into the `registry` the app serves on its `/metrics`.

    `integrator` is shared by everything that runs on the same GPU (pass one
    integrator to several middlewares in one process); by default each
    middleware has its own.  `duplicate_detection` turns on body-hash
    detection (privacy-sensitive, off by default; see `dedup.py`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: CollectorRegistry,
        labels: InferenceLabels | None = None,
        integrator: ShareIntegrator | None = None,
        duplicate_detection: DuplicateDetection | None = None,
        clock: Clock = time.perf_counter,
        skip_paths: Collection[str] = DEFAULT_SKIP_PATHS,
    ) -> None:
        self.app = app
        self.skip_paths = frozenset(skip_paths)
        self.labels = labels or InferenceLabels()
        self.integrator = integrator or ShareIntegrator(clock)
        self.metrics = InferenceMetrics(registry)
        self._clock = clock
        self._dedup = BodyHashCache(duplicate_detection) if duplicate_detection else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.skip_paths:
            # Scrapes and probes are not inference: they must take no share of the GPU's cost.
            await self.app(scope, receive, send)
            return
        record = RequestRecord()
        scope[SCOPE_KEY] = record
        status = _UNSET_STATUS

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        if self._dedup is not None:
            receive = self._hashing_receive(receive, record, scope)
        mark = self.integrator.start()
        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException:
            status = 500
            raise
        finally:
            share_seconds = self.integrator.finish(mark)
            self._count(scope, record, status or 500, share_seconds)

    def _count(self, scope: Scope, record: RequestRecord, status: int, share_seconds: float) -> None:
        key = self._label_values(scope, record)
        children = self.metrics.children(*key)
        self.metrics.requests_child(children, key, status_class(status)).inc()
        children.share_seconds.inc(share_seconds)
        if record.prompt_tokens:
            children.prompt_tokens.inc(record.prompt_tokens)
        if record.completion_tokens:
            children.completion_tokens.inc(record.completion_tokens)
        if record.duplicate:
            children.duplicates.inc()

    def _label_values(self, scope: Scope, record: RequestRecord) -> tuple[str, str, str]:
        config = self.labels
        headers = scope.get("headers") or ()
        model = record.model
        if model is None:
            model = config.model_header.from_headers(headers) if config.model_header else config.model
        version = record.model_version
        if version is None:
            header = config.model_version_header
            version = header.from_headers(headers) if header else config.model_version
        business_unit = config.business_unit.from_headers(headers) if config.business_unit else "unknown"
        return model, version, business_unit

    def _hashing_receive(self, receive: Receive, record: RequestRecord, scope: Scope) -> Receive:
        assert self._dedup is not None
        cache = self._dedup
        hasher: BodyHasher | None = cache.hasher(str(scope.get("method", "")), str(scope.get("path", "")))
        clock = self._clock

        async def receive_and_hash() -> Message:
            nonlocal hasher
            message = await receive()
            if hasher is not None and message["type"] == "http.request":
                hasher.update(message.get("body", b""))
                if not message.get("more_body", False):
                    if cache.seen_before(hasher.digest(), clock()):
                        record.duplicate = True
                    hasher = None
            return message

        return receive_and_hash
