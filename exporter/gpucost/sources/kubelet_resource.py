"""CPU and memory usage per container from the kubelet's `/metrics/resource` endpoint.

Why `/metrics/resource` and not the stats summary API (`/stats/summary`): it
is the endpoint metrics-server reads since v0.6, its series are STABLE in the
Kubernetes metrics framework, it carries exactly what the node split needs
(CPU seconds and working set per container, and the node's), and it is a few
hundred bytes per container where the summary adds file system, network and
volume stats for every pod.  It needs `get` on `nodes/metrics` (the summary
needs `nodes/stats`); neither needs `nodes/proxy`, because the exporter talks
to its own node's kubelet port, not through the API server's proxy.

The reader is thin: one GET over HTTPS with the ServiceAccount token (re-read
every time: the kubelet rotates it) and the cluster CA, a bounded body
(`MAX_BODY_BYTES`; a longer one is refused and counted, never parsed in part),
an overall deadline.  `parse_resource_metrics` is pure and `UsageTracker`
turns two readings into CPU cores used between them.  Every failure is
SourceUnavailable, so only this source's health drops.
"""

from __future__ import annotations

import http.client
import math
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gpucost.errors import SourceUnavailable
from gpucost.model import ContainerRef
from gpucost.truncation import LONG_VALUE, OVERSIZED_BODY, SOURCE_KUBELET_RESOURCE, TruncationCounter

__all__ = [
    "DEFAULT_CA_FILE",
    "DEFAULT_TOKEN_FILE",
    "KUBELET_PORT",
    "MAX_BODY_BYTES",
    "MAX_NAME_CHARS",
    "OVERSIZED_BODY",
    "RESOURCE_METRICS_PATH",
    "SOURCE_KUBELET_RESOURCE",
    "ContainerCounters",
    "ContainerUsage",
    "KubeletResourceReader",
    "NodeUsage",
    "ResourceMetricsReading",
    "UsageTracker",
    "parse_resource_metrics",
]

KUBELET_PORT = 10250
RESOURCE_METRICS_PATH = "/metrics/resource"
DEFAULT_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_CA_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
# About 400 bytes per container; 4 MiB is ten thousand containers, far past the 110-pod default.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Kubernetes names: a namespace or container is at most 63 characters, a pod 253.
MAX_NAME_CHARS = 253
DEFAULT_TIMEOUT_SECONDS = 5.0
_READ_CHUNK_BYTES = 64 * 1024
_MAX_ERROR_BODY_BYTES = 512

_CONTAINER_CPU = "container_cpu_usage_seconds_total"
_CONTAINER_MEMORY = "container_memory_working_set_bytes"
_NODE_CPU = "node_cpu_usage_seconds_total"
_NODE_MEMORY = "node_memory_working_set_bytes"
# Everything the text parser raises on a malformed exposition.
_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError)


@dataclass(frozen=True, slots=True)
class ContainerCounters:
    """One container's cumulative CPU seconds and current working set, with the kubelet's sample times."""

    cpu_seconds_total: float | None = None
    cpu_timestamp: float | None = None
    memory_working_set_bytes: float | None = None


@dataclass(frozen=True, slots=True)
class ResourceMetricsReading:
    """One `/metrics/resource` answer; `read_at` is the exporter's clock when it arrived."""

    read_at: float
    node_cpu_seconds_total: float
    node_cpu_timestamp: float | None = None
    node_memory_working_set_bytes: float | None = None
    containers: Mapping[ContainerRef, ContainerCounters] = field(default_factory=dict)
    long_names_dropped: int = 0


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """Cores used on average since the previous reading (None on a container's first), and working set."""

    cpu_cores: float | None
    memory_working_set_bytes: float | None


@dataclass(frozen=True, slots=True)
class NodeUsage:
    node_cpu_cores: float | None
    node_memory_working_set_bytes: float | None
    containers: Mapping[ContainerRef, ContainerUsage]


def parse_resource_metrics(text: str, read_at: float) -> ResourceMetricsReading:
    """Parse the Prometheus text of `/metrics/resource`; SourceUnavailable when it is not that.

    A real kubelet always reports `node_cpu_usage_seconds_total`, so an answer
    without it (an HTML error page that happens to parse, a different
    endpoint) is refused rather than read as a node with no containers.
    """
    cpu: dict[ContainerRef, tuple[float, float | None]] = {}
    memory: dict[ContainerRef, float] = {}
    node: dict[str, tuple[float, float | None]] = {}
    dropped = 0
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in (_NODE_CPU, _NODE_MEMORY):
                    node[sample.name] = (sample.value, _seconds(sample.timestamp))
                    continue
                if sample.name not in (_CONTAINER_CPU, _CONTAINER_MEMORY):
                    continue
                container = _container_of(sample.labels)
                if container is None:
                    dropped += 1
                elif sample.name == _CONTAINER_CPU:
                    cpu[container] = (sample.value, _seconds(sample.timestamp))
                else:
                    memory[container] = sample.value
    except _PARSE_ERRORS as exc:
        raise SourceUnavailable(f"kubelet {RESOURCE_METRICS_PATH}: not Prometheus text ({exc})"[:300]) from exc
    if _NODE_CPU not in node:
        raise SourceUnavailable(f"kubelet {RESOURCE_METRICS_PATH}: no {_NODE_CPU} in the answer")
    node_cpu, node_cpu_at = node[_NODE_CPU]
    return ResourceMetricsReading(
        read_at=read_at,
        node_cpu_seconds_total=node_cpu,
        node_cpu_timestamp=node_cpu_at,
        node_memory_working_set_bytes=node[_NODE_MEMORY][0] if _NODE_MEMORY in node else None,
        containers=_counters(cpu, memory),
        long_names_dropped=dropped,
    )


def _seconds(timestamp: object) -> float | None:
    """A sample's timestamp in unix seconds (the text parser gives a float, OpenMetrics a Timestamp)."""
    if isinstance(timestamp, int | float):
        return float(timestamp)
    return float(timestamp) if hasattr(timestamp, "__float__") else None


def _container_of(labels: Mapping[str, str]) -> ContainerRef | None:
    """The container a sample is about; None when a name is missing or longer than any Kubernetes name."""
    names = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
    if not all(names) or any(len(name) > MAX_NAME_CHARS for name in names):
        return None
    return ContainerRef(*names)


def _counters(
    cpu: Mapping[ContainerRef, tuple[float, float | None]], memory: Mapping[ContainerRef, float]
) -> dict[ContainerRef, ContainerCounters]:
    counters = {}
    for container in sorted(cpu.keys() | memory.keys()):
        cpu_value, cpu_at = cpu.get(container, (None, None))
        counters[container] = ContainerCounters(cpu_value, cpu_at, memory.get(container))
    return counters


@dataclass(frozen=True, slots=True)
class _CpuMark:
    seconds_total: float
    at: float
    cores: float | None


class UsageTracker:
    """Turns successive readings into average cores used between them; pure apart from its own memory.

    The kubelet refreshes its stats every ten seconds or so; a reading whose
    sample time did not move keeps the previous rate instead of dividing by
    zero.  A counter that went down (a restarted container) starts over.
    """

    def __init__(self) -> None:
        self._containers: dict[ContainerRef, _CpuMark] = {}
        self._node: _CpuMark | None = None

    def update(self, reading: ResourceMetricsReading) -> NodeUsage:
        node_at = reading.node_cpu_timestamp or reading.read_at
        self._node = _advance(self._node, reading.node_cpu_seconds_total, node_at)
        marks: dict[ContainerRef, _CpuMark] = {}
        usage: dict[ContainerRef, ContainerUsage] = {}
        for container, counters in reading.containers.items():
            mark = self._container_mark(container, counters, reading.read_at)
            if mark is not None:
                marks[container] = mark
            cores = mark.cores if mark is not None else None
            usage[container] = ContainerUsage(cores, counters.memory_working_set_bytes)
        # Containers gone from the answer are forgotten: their series end with them.
        self._containers = marks
        return NodeUsage(self._node.cores, reading.node_memory_working_set_bytes, usage)

    def _container_mark(
        self, container: ContainerRef, counters: ContainerCounters, read_at: float
    ) -> _CpuMark | None:
        if counters.cpu_seconds_total is None:
            return None
        at = counters.cpu_timestamp or read_at
        return _advance(self._containers.get(container), counters.cpu_seconds_total, at)


def _advance(previous: _CpuMark | None, seconds_total: float, at: float) -> _CpuMark:
    if previous is None or seconds_total < previous.seconds_total or not math.isfinite(seconds_total):
        return _CpuMark(seconds_total, at, None)
    elapsed = at - previous.at
    if elapsed <= 0.0:
        return previous
    return _CpuMark(seconds_total, at, (seconds_total - previous.seconds_total) / elapsed)


class KubeletResourceReader:
    """GETs `/metrics/resource` from one kubelet with the ServiceAccount's bearer token."""

    def __init__(
        self,
        base_url: str,
        *,
        token_file: str = DEFAULT_TOKEN_FILE,
        ca_file: str = DEFAULT_CA_FILE,
        insecure_skip_tls_verify: bool = False,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_body_bytes: int = MAX_BODY_BYTES,
        truncation: TruncationCounter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("https", "http") or not parsed.hostname:
            raise ValueError(f"kubelet URL must be https://host:port (got {base_url!r})")
        self.base_url = base_url
        self._parsed = parsed
        self._token_file = token_file
        self._ca_file = ca_file
        self._insecure = insecure_skip_tls_verify
        self._timeout = timeout_seconds
        self._max_body_bytes = max_body_bytes
        self._truncation = truncation
        self._clock = clock

    def read(self) -> ResourceMetricsReading:
        """One reading; SourceUnavailable for anything but a bounded, parseable 200 answer."""
        body = self._get(RESOURCE_METRICS_PATH)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceUnavailable(f"kubelet {RESOURCE_METRICS_PATH}: not UTF-8 text") from exc
        reading = parse_resource_metrics(text, self._clock())
        if reading.long_names_dropped and self._truncation is not None:
            self._truncation.add(SOURCE_KUBELET_RESOURCE, LONG_VALUE, reading.long_names_dropped)
        return reading

    def _get(self, path: str) -> bytes:
        deadline = time.monotonic() + self._timeout
        connection = self._connect()
        try:
            connection.request("GET", path, headers=self._headers())
            response = connection.getresponse()
            if response.status != http.client.OK:
                raise SourceUnavailable(_status_message(response, path))
            return self._bounded_body(response, deadline)
        except (OSError, http.client.HTTPException) as exc:
            raise SourceUnavailable(f"kubelet {self.base_url}{path}: {type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        host = self._parsed.hostname or ""
        port = self._parsed.port
        if self._parsed.scheme == "http":
            return http.client.HTTPConnection(host, port or 80, timeout=self._timeout)
        return http.client.HTTPSConnection(
            host, port or KUBELET_PORT, timeout=self._timeout, context=self._tls_context()
        )

    def _tls_context(self) -> ssl.SSLContext:
        if self._insecure:
            # For kubelets with self-signed serving certificates (metrics-server's --kubelet-insecure-tls).
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        try:
            return ssl.create_default_context(cafile=self._ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise SourceUnavailable(f"kubelet CA file {self._ca_file}: {exc}") from exc

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/plain", "Accept-Encoding": "identity"}
        try:
            token = Path(self._token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SourceUnavailable(f"ServiceAccount token {self._token_file}: {exc.strerror or exc}") from exc
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _bounded_body(self, response: http.client.HTTPResponse, deadline: float) -> bytes:
        declared = response.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            self._refuse_oversized(f"declares {declared} bytes")
        body = bytearray()
        for chunk in _chunks(response):
            body += chunk
            if len(body) > self._max_body_bytes:
                self._refuse_oversized(f"sent more than {self._max_body_bytes} bytes")
            if time.monotonic() > deadline:
                raise SourceUnavailable(
                    f"kubelet {self.base_url}{RESOURCE_METRICS_PATH}: no full answer in {self._timeout:g}s"
                )
        return bytes(body)

    def _refuse_oversized(self, how: str) -> None:
        if self._truncation is not None:
            self._truncation.add(SOURCE_KUBELET_RESOURCE, OVERSIZED_BODY)
        raise SourceUnavailable(
            f"kubelet {RESOURCE_METRICS_PATH} answer {how}, over the {self._max_body_bytes}-byte limit: refused"
        )


def _chunks(response: http.client.HTTPResponse) -> Iterable[bytes]:
    while True:
        chunk = response.read1(_READ_CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


def _status_message(response: http.client.HTTPResponse, path: str) -> str:
    detail = response.read(_MAX_ERROR_BODY_BYTES).decode("utf-8", "replace").strip()
    hint = ""
    if response.status in (http.client.UNAUTHORIZED, http.client.FORBIDDEN):
        hint = " (the exporter's ServiceAccount needs get on nodes/metrics; see docs/node-cost.md)"
    return f"kubelet {path}: HTTP {response.status} {response.reason}{hint}: {detail[:200]}".rstrip(": ")
