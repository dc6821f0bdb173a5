"""Whole-node cost on Kubernetes: the node's allocatable, every pod's requests, and the kubelet's usage.

`KubeletNodeResources` implements the sampler's NodeResourceProvider.  It
combines three things it does not fetch itself, so nothing is read twice:

- the pods bound to the node and the node object, from the API server watch
  the metadata provider already keeps (`pods` and `node` callables): each
  container's cpu/memory/ephemeral-storage requests and the node's
  `status.allocatable`, parsed and capped in `kept_metadata`;
- CPU and memory usage per container from the kubelet's `/metrics/resource`
  (`KubeletResourceReader` + `UsageTracker`), read at most every
  `read_interval_seconds` because the kubelet refreshes those stats only every
  ten seconds or so; the reading is kept for `max_staleness_seconds` while the
  kubelet does not answer, then dropped so CPU and memory fall back to requests.

A finished pod (every container terminated) holds nothing and is left out; a
container the kubelet measures but the API server does not list yet (the
watch lags a new pod by a moment) is kept with its usage and no request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from gpucost.errors import SourceUnavailable
from gpucost.model import ContainerRef, ContainerResources, NodeInfo, NodeResourceView, PodMeta
from gpucost.sources.kubelet_resource import KubeletResourceReader, NodeUsage, UsageTracker
from gpucost.sources.registry import KUBELET_RESOURCE
from gpucost.truncation import TruncationCounter, TruncationCounts

__all__ = ["DEFAULT_READ_INTERVAL_SECONDS", "KubeletNodeResources", "usage_by_container"]

# The kubelet's resource stats move every 10-15 s (cAdvisor housekeeping); metrics-server reads every 15 s.
DEFAULT_READ_INTERVAL_SECONDS = 10.0


def usage_by_container(usage: NodeUsage) -> dict[ContainerRef, Mapping[str, float]]:
    """Each measured container's usage as `NODE_RESOURCES` amounts; an unknown reading is left out."""
    found: dict[ContainerRef, Mapping[str, float]] = {}
    for container, measured in usage.containers.items():
        amounts: dict[str, float] = {}
        if measured.cpu_cores is not None:
            amounts["cpu"] = measured.cpu_cores
        if measured.memory_working_set_bytes is not None:
            amounts["memory"] = measured.memory_working_set_bytes
        found[container] = amounts
    return found


class KubeletNodeResources:
    """NodeResourceProvider over the API server's pods and node and the kubelet's `/metrics/resource`.

    `refresh(now)` takes the sampler's clock; it raises SourceUnavailable when
    the kubelet did not answer (only this collector's health drops), and
    `current()` then still answers with the requests and the last usage.
    """

    name = KUBELET_RESOURCE.collector

    def __init__(
        self,
        reader: KubeletResourceReader,
        pods: Callable[[], Sequence[PodMeta]],
        node: Callable[[], NodeInfo],
        *,
        max_staleness_seconds: float = 300.0,
        read_interval_seconds: float = DEFAULT_READ_INTERVAL_SECONDS,
        truncation: TruncationCounter | None = None,
    ) -> None:
        self._reader = reader
        self._pods = pods
        self._node = node
        self._max_staleness = max_staleness_seconds
        self._read_interval = read_interval_seconds
        self._truncation = truncation or TruncationCounter()
        self._tracker = UsageTracker()
        self._usage: dict[ContainerRef, Mapping[str, float]] = {}
        self._usage_at: float | None = None
        self._tried_at: float | None = None
        self._last_error = ""

    @property
    def truncation(self) -> TruncationCounter:
        """The counter the reader adds its cuts to (pass it to `KubeletResourceReader`)."""
        return self._truncation

    def refresh(self, now: float) -> None:
        if self._tried_at is not None and 0.0 <= now - self._tried_at < self._read_interval:
            if self._last_error:
                # Between tries a failing kubelet stays failed: the health metric must not flap to 1.
                raise SourceUnavailable(self._last_error)
            return
        self._tried_at = now
        try:
            reading = self._reader.read()
        except SourceUnavailable as exc:
            self._last_error = str(exc)
            if self._usage_at is not None and now - self._usage_at > self._max_staleness:
                self._usage = {}
                self._usage_at = None
            raise
        self._last_error = ""
        self._usage = usage_by_container(self._tracker.update(reading))
        self._usage_at = now

    def current(self) -> NodeResourceView:
        containers: list[ContainerResources] = []
        listed: set[ContainerRef] = set()
        finished: set[tuple[str, str]] = set()
        for pod in self._pods():
            if pod.finished_at is not None:
                finished.add((pod.namespace, pod.pod))
                continue
            for name, requests in pod.container_requests.items():
                ref = ContainerRef(pod.namespace, pod.pod, name)
                listed.add(ref)
                containers.append(ContainerResources(ref, pod.uid, requests, self._usage.get(ref, {})))
        containers.extend(
            ContainerResources(ref, usage=usage)
            for ref, usage in sorted(self._usage.items())
            if ref not in listed and (ref.namespace, ref.pod) not in finished
        )
        return NodeResourceView(self._node().allocatable, tuple(containers))

    def truncation_counts(self) -> TruncationCounts:
        return self._truncation.snapshot()
