"""The live-node replay: the trace's events through the real sampler and Kubernetes providers, on a virtual clock.

The fake kubelet (gRPC) and API server (HTTP) are moved through the trace's events;
the real `Sampler` ticks once per virtual second with the providers
`gpucost.kube.kubernetes_providers` builds; the ledger is read the way Prometheus would
read it, every `SCRAPE_INTERVAL_SECONDS` virtual seconds.  The watch runs in real
time, so after each virtual second's API changes the replay waits until the source's
cache has them (a sync label on a pod of its own, seen after every earlier event).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gpucost.config import ExporterConfig
from gpucost.engine.ledger import ContainerCounters, ContainerKey, GpuCounters
from gpucost.errors import SourceUnavailable
from gpucost.kube import ApiServerMetadataProvider, kubernetes_providers
from gpucost.model import PodMeta
from gpucost.pricing.book import PriceBook
from gpucost.pricing.settings import PricingSettings
from gpucost.sampler import Sampler, SamplerSettings
from gpucost.snapshot import ExporterSnapshot
from gpucost.sources.apiserver import ApiServerSource
from gpucost.sources.podresources.client import ContainerDeviceAssignment
from gpucost.sources.podresources.provider import PodResourcesAllocationProvider
from gpucost.sources.workload_labels import DEFAULT_WORKLOAD_LABEL_CONFIG, WorkloadLabelMapper
from gpucost_bench.live_node_inputs import CONTAINER, EPOCH, TraceGpuSource, VirtualClock, pod_object
from gpucost_bench.live_trace import NODE_LABELS, NODE_NAME, EventKind, LiveNodeTrace
from gpucost_testing.fake_apiserver import FakeApiServer
from gpucost_testing.fake_kubelet import FakeKubelet

__all__ = ["FLUSH_SECONDS", "SCRAPE_INTERVAL_SECONDS", "Replay", "Scrapes", "replay", "sampler_settings"]

SCRAPE_INTERVAL_SECONDS = 15
# After the trace's last event: long enough for anything the exporter books late.
FLUSH_SECONDS = 60
# How long the real-time watch may take to show one virtual second's API changes.
WATCH_SYNC_TIMEOUT_SECONDS = 20.0
STARTUP_TIMEOUT_SECONDS = 30.0
SYNC_NAMESPACE = "gpucost-bench"
SYNC_POD = "watch-sync"
SYNC_LABEL = "team"  # a key the exporter keeps (the workload mapping reads it), so the cache shows it


class _KubeNode:
    """The fake kubelet and API server, moved through the trace's events."""

    def __init__(self, trace: LiveNodeTrace, kubelet: FakeKubelet, apiserver: FakeApiServer) -> None:
        self._trace = trace
        self._kubelet = kubelet
        self._apiserver = apiserver
        self._listed: dict[int, ContainerDeviceAssignment] = {}
        self._sync_generation = 0

    def set_up(self) -> None:
        self._apiserver.set_node(NODE_NAME, dict(NODE_LABELS))
        for namespace, labels in self._trace.namespace_labels.items():
            self._apiserver.put_namespace(namespace, labels)
        self._apiserver.put_namespace(SYNC_NAMESPACE)
        self._apiserver.add_pod(SYNC_NAMESPACE, SYNC_POD, node_name=NODE_NAME, labels={SYNC_LABEL: "0"})
        self._kubelet.set_allocatable(self._trace.allocatable())
        self._kubelet.set_pods([])

    def apply(self, pod_index: int, kind: EventKind) -> bool:
        """Show one event; True when it changed the API server (the watch must catch up)."""
        pod = self._trace.pods[pod_index]
        if kind == "admitted":
            self._listed[pod_index] = ContainerDeviceAssignment(
                pod.namespace, pod.name, CONTAINER, pod.slot.resource, (pod.slot.device_id,)
            )
            self._apiserver.put("pods", pod_object(pod, kind))
        elif kind == "unlisted":
            del self._listed[pod_index]
            return False
        elif kind == "removed":
            self._apiserver.delete_pod(pod.namespace, pod.name)
        else:
            self._apiserver.put("pods", pod_object(pod, kind))
        return True

    def publish_kubelet(self) -> None:
        self._kubelet.set_pods([self._listed[index] for index in sorted(self._listed)])

    def wait_for_watch(self, source: ApiServerSource) -> None:
        """Block until the source's cache holds every API change made so far.

        Events reach the cache in the order they were made, so once the sync
        label's new value is cached every earlier change is too.
        """
        self._sync_generation += 1
        wanted = str(self._sync_generation)
        self._apiserver.modify_pod(SYNC_NAMESPACE, SYNC_POD, labels={SYNC_LABEL: wanted})
        deadline = time.monotonic() + WATCH_SYNC_TIMEOUT_SECONDS
        while not _has_label(source.pod(SYNC_NAMESPACE, SYNC_POD), wanted):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server watch did not deliver change {wanted} within "
                                   f"{WATCH_SYNC_TIMEOUT_SECONDS:.0f} s: {source.last_error or 'no error'}")
            time.sleep(0.0005)


def _has_label(pod: PodMeta | None, value: str) -> bool:
    return pod is not None and pod.labels.get(SYNC_LABEL) == value


@dataclass(slots=True)
class _SeenCounter:
    """One container series as Prometheus would read it: the total across counter resets."""

    earlier: ContainerCounters = field(default_factory=ContainerCounters)
    last: ContainerCounters = field(default_factory=ContainerCounters)

    def observe(self, counters: ContainerCounters) -> None:
        if counters.gpu_seconds < self.last.gpu_seconds:  # the series expired and came back from zero
            self.earlier = _added(self.earlier, self.last)
        self.last = counters

    @property
    def total(self) -> ContainerCounters:
        return _added(self.earlier, self.last)


def _added(a: ContainerCounters, b: ContainerCounters) -> ContainerCounters:
    return ContainerCounters(a.active_usd + b.active_usd, a.idle_usd + b.idle_usd, a.gpu_seconds + b.gpu_seconds)


@dataclass(slots=True)
class Scrapes:
    containers: dict[ContainerKey, _SeenCounter] = field(default_factory=dict)
    gpus: Mapping[str, GpuCounters] = field(default_factory=dict)
    most_unmapped_ids: int = 0
    count: int = 0
    health: dict[str, bool] = field(default_factory=dict)

    def scrape(self, snapshot: ExporterSnapshot) -> None:
        self.count += 1
        for key, counters in snapshot.ledger.containers.items():
            self.containers.setdefault(key, _SeenCounter()).observe(counters)
        self.gpus = snapshot.ledger.gpus
        self.most_unmapped_ids = max(self.most_unmapped_ids, sum(snapshot.unmapped_devices.values()))
        for health in snapshot.health:
            # A source that failed at any scrape counts as failed.
            self.health[health.collector] = self.health.get(health.collector, True) and health.success


@dataclass(frozen=True, slots=True)
class Replay:
    scrapes: Scrapes
    charged_seconds: float
    ticks: int
    watch_syncs: int
    wall_seconds: float


def _providers(
    trace_clock: VirtualClock, kubelet: FakeKubelet, kubeconfig: Path
) -> tuple[PodResourcesAllocationProvider, ApiServerMetadataProvider, ApiServerSource]:
    """The Kubernetes providers from `gpucost.kube.kubernetes_providers` itself, default settings,
    the kubelet polls timed on the virtual clock."""
    defaults = ExporterConfig()
    config = replace(defaults, kubernetes=replace(
        defaults.kubernetes, enabled=True, node_name=NODE_NAME, kubeconfig=str(kubeconfig),
        pod_resources_socket=str(kubelet.socket_path),
    ))
    providers = kubernetes_providers(config, None, clock=trace_clock.now)
    allocations, metadata = providers.allocations, providers.metadata
    assert isinstance(allocations, PodResourcesAllocationProvider)
    assert isinstance(metadata, ApiServerMetadataProvider)
    return allocations, metadata, metadata.source


def sampler_settings() -> SamplerSettings:
    config = ExporterConfig()
    return SamplerSettings(
        workload_label_names=DEFAULT_WORKLOAD_LABEL_CONFIG.label_names,
        sample_interval_seconds=config.sample_interval_seconds,
        checkpoint_interval_seconds=config.checkpoint_interval_seconds,
        retention_seconds=config.retention_seconds,
        max_gap_seconds=config.max_gap_seconds,
    )


def _wait_for_api_server(metadata: ApiServerMetadataProvider, source: ApiServerSource, clock: VirtualClock) -> None:
    """Start the watch and wait for the first lists and the node, so the first tick prices the node."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while True:
        try:
            metadata.refresh(clock.now())  # starts the source; raises until the first lists arrived
            if source.node() is not None:
                return
        except SourceUnavailable:
            pass  # not listed yet: keep waiting, up to the deadline
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API server source was not ready within {STARTUP_TIMEOUT_SECONDS:.0f} s: "
                               f"{source.last_error or 'no error'}")
        time.sleep(0.02)


def replay(trace: LiveNodeTrace) -> Replay:
    """Run the trace through the exporter's sampler and Kubernetes providers; returns what was scraped."""
    started = time.perf_counter()
    clock = VirtualClock(EPOCH)
    settings = sampler_settings()
    with tempfile.TemporaryDirectory(prefix="gpucost-live-node-") as scratch, \
            FakeKubelet() as kubelet, FakeApiServer() as apiserver:
        node = _KubeNode(trace, kubelet, apiserver)
        node.set_up()
        allocations, metadata, api_source = _providers(clock, kubelet, apiserver.write_kubeconfig(
            Path(scratch) / "kubeconfig"))
        sampler = Sampler(settings, TraceGpuSource(trace, clock, settings.sample_interval_seconds), allocations,
                          metadata, PriceBook.from_settings(PricingSettings()), WorkloadLabelMapper(), None,
                          wall_clock=clock.now)
        try:
            _wait_for_api_server(metadata, api_source, clock)
            sampler.tick()  # virtual second 0: charges nothing, starts the clock and asks the kubelet
            scrapes, ticks, syncs = _run_ticks(trace, clock, sampler, node, api_source)
            sampler.stop()
            scrapes.scrape(sampler.snapshot())
        finally:
            metadata.stop()
            allocations.close()
    return Replay(scrapes, float(ticks) * settings.sample_interval_seconds, ticks, syncs,
                   time.perf_counter() - started)


def _run_ticks(
    trace: LiveNodeTrace, clock: VirtualClock, sampler: Sampler, node: _KubeNode, api_source: ApiServerSource
) -> tuple[Scrapes, int, int]:
    events = trace.events()
    last_tick = math.ceil(trace.last_event_seconds) + FLUSH_SECONDS
    scrapes = Scrapes()
    position = syncs = 0
    for tick in range(1, last_tick + 1):
        api_changed = kubelet_changed = False
        while position < len(events) and events[position].at <= tick:
            event = events[position]
            changed = node.apply(event.pod_index, event.kind)
            api_changed |= changed
            kubelet_changed |= event.kind in ("admitted", "unlisted")
            position += 1
        if kubelet_changed:
            node.publish_kubelet()
        if api_changed:
            node.wait_for_watch(api_source)
            syncs += 1
        clock.advance_to(float(tick))
        sampler.tick()
        if tick % SCRAPE_INTERVAL_SECONDS == 0:
            scrapes.scrape(sampler.snapshot())
    scrapes.scrape(sampler.snapshot())
    return scrapes, last_tick, syncs
