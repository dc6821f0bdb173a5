"""The kubelet's `/metrics/resource` over HTTPS, from what a node's containers use at the moment of the request.

Whole-node cost reads each container's CPU seconds and working set from the
node's kubelet (`gpucost.sources.kubelet_resource`).  `FakeKubeletResource`
serves that endpoint the way a kubelet does: HTTPS with a certificate from a
throw-away CA (`make_pki`), a ServiceAccount bearer token checked on every
request (401 otherwise), and the Prometheus text of tests/fixtures/kubelet/*.prom.

`usage_at(wall_time)` gives the node's containers and their usage (cpu in
cores, memory in bytes; a `NodeResourceView`) when a request arrives.  The
CPU counters are cumulative, so each container's cores are integrated over
wall time between requests: the reader divides the counter's increase by the
sample timestamps' (wall seconds), which then gives back the cores asked for.
A container that leaves the view is forgotten; one that comes back starts
from 0, as a restarted container does.

`exporter_config()` is the `kubernetes.kubelet_resource` section pointing an
exporter at it.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpucost.model import ContainerRef, NodeResourceView
from gpucost.sources.kubelet_resource import RESOURCE_METRICS_PATH
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply
from gpucost_testing.real_apiserver_pki import make_pki

__all__ = ["FakeKubeletResource", "render_resource_metrics"]

TOKEN = "gpucost-fake-kubelet-reader-token"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(container: ContainerRef) -> str:
    return f'container="{container.container}",namespace="{container.namespace}",pod="{container.pod}"'


def render_resource_metrics(
    cpu_seconds: dict[ContainerRef, float], memory_bytes: dict[ContainerRef, float], node_cpu_seconds: float,
    at: float,
) -> str:
    """The exposition a kubelet writes: container and node CPU seconds and working sets, sampled at `at`."""
    stamp = f"{round(at * 1000)}"
    lines = [
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container "
        "in core-seconds",
        "# TYPE container_cpu_usage_seconds_total counter",
        *(f"container_cpu_usage_seconds_total{{{_labels(ref)}}} {value!r} {stamp}"
          for ref, value in sorted(cpu_seconds.items())),
        "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes",
        "# TYPE container_memory_working_set_bytes gauge",
        *(f"container_memory_working_set_bytes{{{_labels(ref)}}} {value!r} {stamp}"
          for ref, value in sorted(memory_bytes.items())),
        "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds",
        "# TYPE node_cpu_usage_seconds_total counter",
        f"node_cpu_usage_seconds_total {node_cpu_seconds!r} {stamp}",
        "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes",
        "# TYPE node_memory_working_set_bytes gauge",
        f"node_memory_working_set_bytes {sum(memory_bytes.values())!r} {stamp}",
        "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, "
        "0 otherwise",
        "# TYPE resource_scrape_error gauge",
        "resource_scrape_error 0",
    ]
    return "\n".join(lines) + "\n"


class FakeKubeletResource:
    """HTTPS `/metrics/resource` on 127.0.0.1; its CA, certificate and token file live under `directory`."""

    def __init__(
        self,
        directory: Path,
        usage_at: Callable[[float], NodeResourceView],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.token_file = directory / "kubelet-token"
        self.ca_file = directory / "kubelet-pki" / "ca.crt"
        self._usage_at = usage_at
        self._clock = clock
        self._lock = threading.Lock()
        self._cpu_seconds: dict[ContainerRef, float] = {}
        self._node_cpu_seconds = 0.0
        self._last_read: float | None = None
        self._server: HttpFixture | None = None

    def start(self) -> FakeKubeletResource:
        self.directory.mkdir(parents=True, exist_ok=True)
        pki = make_pki(self.directory / "kubelet-pki")
        self.token_file.write_text(TOKEN + "\n", encoding="utf-8")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.serving_cert, pki.serving_key)
        self._server = HttpFixture(
            {("GET", "*"): self._answer}, name="fake-kubelet-resource", keep_requests=100, tls=context
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake kubelet's /metrics/resource is not started")
        return self._server.url

    def exporter_config(self) -> dict[str, Any]:
        """The exporter's `kubernetes.kubelet_resource` section for this kubelet."""
        return {"address": self.url, "ca_file": str(self.ca_file), "token_file": str(self.token_file)}

    def metrics_text(self) -> str:
        """The body of one request now: every counter advanced to the clock's time."""
        now = self._clock()
        view = self._usage_at(now)
        with self._lock:
            elapsed = 0.0 if self._last_read is None else max(0.0, now - self._last_read)
            self._last_read = now
            cpu_seconds: dict[ContainerRef, float] = {}
            memory_bytes: dict[ContainerRef, float] = {}
            node_cores = 0.0
            for held in view.containers:
                cores = held.usage.get("cpu")
                if cores is not None:
                    cpu_seconds[held.container] = self._cpu_seconds.get(held.container, 0.0) + cores * elapsed
                    node_cores += cores
                memory = held.usage.get("memory")
                if memory is not None:
                    memory_bytes[held.container] = memory
            self._cpu_seconds = cpu_seconds
            self._node_cpu_seconds += node_cores * elapsed
            return render_resource_metrics(cpu_seconds, memory_bytes, self._node_cpu_seconds, now)

    def _answer(self, request: RecordedRequest) -> Reply:
        if request.path != RESOURCE_METRICS_PATH:
            return Reply.text(404, "404 page not found\n")
        if request.header("Authorization") != f"Bearer {TOKEN}":
            return Reply.text(401, "Unauthorized\n")
        return Reply(200, self.metrics_text().encode(), CONTENT_TYPE)
