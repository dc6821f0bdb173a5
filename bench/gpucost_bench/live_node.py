"""Live-node attribution accuracy: short pods through the real exporter pieces, scored per pod.

A generated 2-hour trace of one 8-GPU node (`live_trace`; 10 minutes with
`--quick`) is replayed on a virtual clock through the exporter's own parts:
the real `Sampler` ticked once per virtual second, the real
`PodResourcesAllocationProvider` asking a gRPC kubelet (`FakeKubelet`) over its
unix socket, and the real `ApiServerMetadataProvider` list/watching an HTTP API
server (`FakeApiServer`), built as `gpucost.kube.kubernetes_providers` builds
them with the default settings.  The watch runs in real time on its own
thread, so after each virtual second's API changes the replay waits until the
source's cache has them (a sync label on a pod of its own, seen after every
earlier event of the same watch).  The GPU source reports the trace's
utilization averaged over each tick.  The ledger is read the way Prometheus
would read it, every 15 virtual seconds, and once more after the trace's last
event plus a minute and `Sampler.stop()`.

Each pod's charge (its container's GPU-seconds and cost) is compared with the
truth, share x life (and the device's price x share x life); so are two common
methods on the same pods: request x hours at 1-minute resolution (a pod seen at
a minute sample pays the whole minute at one GPU's price) and utilization x
price (the pod's own busy time at its device's price).  Also reported: the
container cost booked with a workload label empty that the pod carried (or
inherited from its namespace) from its start, conservation per device
(allocated + unallocated against cost) and whether every pod was charged.
"""

from __future__ import annotations

import itertools
import math
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpucost.config import ExporterConfig
from gpucost.engine.ledger import ContainerCounters, ContainerKey, GpuCounters
from gpucost.errors import SourceUnavailable
from gpucost.kube import ApiServerMetadataProvider, kubernetes_providers
from gpucost.model import GpuDevice, GpuSample, NodeInfo, PodMeta
from gpucost.pricing.book import PriceBook
from gpucost.pricing.settings import PricingSettings
from gpucost.sampler import Sampler, SamplerSettings
from gpucost.snapshot import ExporterSnapshot
from gpucost.sources.apiserver import ApiServerSource
from gpucost.sources.podresources.client import ContainerDeviceAssignment
from gpucost.sources.podresources.provider import PodResourcesAllocationProvider
from gpucost.sources.workload_labels import DEFAULT_WORKLOAD_LABEL_CONFIG, WorkloadLabelMapper
from gpucost_bench.live_trace import (
    FULL_SHAPE,
    NODE_LABELS,
    NODE_NAME,
    QUICK_SHAPE,
    SHORT_POD_SECONDS,
    EventKind,
    LiveNodeTrace,
    LivePod,
    generate_live_node,
    request_hours_samples,
)
from gpucost_testing.fake_apiserver import FakeApiServer, JsonObject
from gpucost_testing.fake_kubelet import FakeKubelet

__all__ = [
    "DEFAULT_SEED",
    "EPOCH",
    "TARGET_LOST_LABEL_SHARE",
    "TARGET_MEAN_ERROR_PCT",
    "TraceGpuSource",
    "VirtualClock",
    "kube_time",
    "pod_object",
    "replay",
    "run_live_node",
    "score",
]

TARGET_MEAN_ERROR_PCT = 1.0
TARGET_LOST_LABEL_SHARE = 0.0
DEFAULT_SEED = 20250602
# Virtual second 0 is this unix time (2025-06-02T00:00:00Z): the exporter's clock and the pods' timestamps agree.
EPOCH = 1_748_822_400.0
SCRAPE_INTERVAL_SECONDS = 15
# After the trace's last event: long enough for anything the exporter books late.
FLUSH_SECONDS = 60
REQUEST_HOURS_RESOLUTION_SECONDS = 60.0
SECONDS_PER_HOUR = 3600.0
# How long the real-time watch may take to show one virtual second's API changes.
WATCH_SYNC_TIMEOUT_SECONDS = 20.0
STARTUP_TIMEOUT_SECONDS = 30.0
# The API server sets deletionTimestamp to the delete request plus the pod's grace period.
GRACE_PERIOD_SECONDS = 30
# The result file keeps this many pods' rows (the short pods gpucost charged worst), not all of them.
WORST_PODS_KEPT = 10
SYNC_NAMESPACE = "gpucost-bench"
SYNC_POD = "watch-sync"
SYNC_LABEL = "team"  # a key the exporter keeps (the workload mapping reads it), so the cache shows it
CONTAINER = "main"


class VirtualClock:
    """Unix seconds that move only when the replay says so."""

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch
        self._seconds = 0.0

    def now(self) -> float:
        return self.epoch + self._seconds

    def advance_to(self, seconds: float) -> None:
        self._seconds = seconds


class _DeviceWindows:
    """The pods of one device that overlap a window, for windows asked in increasing order."""

    def __init__(self, pods: Sequence[LivePod]) -> None:
        self._pending = sorted(pods, key=lambda pod: pod.start)
        self._next = 0
        self._open: list[LivePod] = []

    def overlapping(self, begin: float, end: float) -> list[LivePod]:
        while self._next < len(self._pending) and self._pending[self._next].start < end:
            self._open.append(self._pending[self._next])
            self._next += 1
        self._open = [pod for pod in self._open if pod.end > begin]
        return [pod for pod in self._open if pod.start < end]


def _average_utilization(pods: Sequence[LivePod], begin: float, end: float) -> float:
    """The device's busy fraction (its pods' sum, capped at 1) averaged exactly over [begin, end)."""
    edges = sorted({begin, end, *(t for pod in pods for t in pod.boundaries() if begin < t < end)})
    busy = 0.0
    for a, b in itertools.pairwise(edges):
        middle = (a + b) / 2.0
        busy += min(1.0, sum(pod.utilization_at(middle) for pod in pods)) * (b - a)
    return busy / (end - begin) if end > begin else 0.0


class TraceGpuSource:
    """`GpuSource` over the trace: the devices, and each tick's utilization averaged over the tick."""

    name = "bench-trace"

    def __init__(self, trace: LiveNodeTrace, clock: VirtualClock, tick_seconds: float) -> None:
        self._trace = trace
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._mig_parents = {device.parent_uuid for device in trace.devices if device.is_mig}
        self._windows = {device.uuid: _DeviceWindows(trace.pods_on(device.uuid)) for device in trace.devices}
        self._last_sampled: dict[str, float] = {}

    def start(self) -> None:
        """Nothing to open: the trace is in memory."""

    def close(self) -> None:
        """Nothing to release."""

    def now(self) -> float:
        return self._clock.now()

    def devices(self) -> Sequence[GpuDevice]:
        return self._trace.devices

    def sample(self, device: GpuDevice) -> GpuSample:
        now = self._clock.now()
        seconds = now - self._clock.epoch
        if device.uuid in self._mig_parents:  # NVML reports no utilization for a MIG-enabled GPU
            return GpuSample(device.uuid, now, None, memory_total_bytes=device.memory_total_bytes)
        since = self._last_sampled.get(device.uuid, seconds - self._tick_seconds)
        self._last_sampled[device.uuid] = seconds
        begin = min(since, seconds)
        pods = self._windows[device.uuid].overlapping(begin, seconds)
        utilization = _average_utilization(pods, begin, seconds) if seconds > begin else 0.0
        return GpuSample(device.uuid, now, utilization, memory_total_bytes=device.memory_total_bytes)


def kube_time(seconds: float) -> str:
    """A virtual second as the API server writes times: RFC 3339, whole seconds, truncated."""
    return datetime.fromtimestamp(EPOCH + math.floor(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _container_status(pod: LivePod, state: EventKind) -> JsonObject:
    status: JsonObject = {"name": CONTAINER, "image": "registry.local/bench:1", "restartCount": 0}
    if state == "admitted":
        return {**status, "ready": False, "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
    if state == "running":
        return {**status, "ready": True, "started": True,
                "state": {"running": {"startedAt": kube_time(pod.start)}}}
    terminated = {"exitCode": 0, "reason": "Completed", "startedAt": kube_time(pod.start),
                  "finishedAt": kube_time(pod.end)}
    return {**status, "ready": False, "started": False, "state": {"terminated": terminated}}


_PHASES: Mapping[EventKind, str] = {"admitted": "Pending", "running": "Running"}


def pod_object(pod: LivePod, state: EventKind) -> JsonObject:
    """The pod as the API server serves it after `state` (admitted, running, terminated or deleting)."""
    metadata: JsonObject = {
        "name": pod.name,
        "namespace": pod.namespace,
        "uid": pod.uid,
        "labels": dict(pod.labels),
        "creationTimestamp": kube_time(pod.event_times["admitted"]),
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": pod.name, "uid": pod.uid,
                             "controller": True}],
    }
    if state == "deleting":
        metadata["deletionTimestamp"] = kube_time(pod.event_times["deleting"] + GRACE_PERIOD_SECONDS)
        metadata["deletionGracePeriodSeconds"] = GRACE_PERIOD_SECONDS
    return {
        "metadata": metadata,
        "spec": {"nodeName": NODE_NAME, "containers": [{"name": CONTAINER}]},
        "status": {
            "phase": _PHASES.get(state, "Succeeded"),
            "startTime": kube_time(pod.event_times["admitted"]),
            "containerStatuses": [_container_status(pod, state)],
        },
    }


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
class _Scrapes:
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
class _Replay:
    scrapes: _Scrapes
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


def _sampler_settings() -> SamplerSettings:
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


def replay(trace: LiveNodeTrace) -> _Replay:
    """Run the trace through the exporter's sampler and Kubernetes providers; returns what was scraped."""
    started = time.perf_counter()
    clock = VirtualClock(EPOCH)
    settings = _sampler_settings()
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
    return _Replay(scrapes, float(ticks) * settings.sample_interval_seconds, ticks, syncs,
                   time.perf_counter() - started)


def _run_ticks(
    trace: LiveNodeTrace, clock: VirtualClock, sampler: Sampler, node: _KubeNode, api_source: ApiServerSource
) -> tuple[_Scrapes, int, int]:
    events = trace.events()
    last_tick = math.ceil(trace.last_event_seconds) + FLUSH_SECONDS
    scrapes = _Scrapes()
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


# --- scoring -------------------------------------------------------------------


@dataclass(slots=True)
class _PodCharge:
    gpu_seconds: float = 0.0
    usd: float = 0.0
    lost_label_usd: float = 0.0
    wrong_label_usd: float = 0.0
    lost_labels: set[str] = field(default_factory=set)


def _truth_prices(trace: LiveNodeTrace) -> dict[str, float]:
    """Each device's hourly price for the trace's node labels, asked of the price book directly."""
    book = PriceBook.from_settings(PricingSettings())
    node = NodeInfo(NODE_NAME, dict(NODE_LABELS))
    full_gpus = sum(1 for device in trace.devices if not device.is_mig)
    return {device.uuid: book.quote(node, device, full_gpus).price_per_hour_usd for device in trace.devices}


def _expected_labels(trace: LiveNodeTrace) -> dict[tuple[str, str], tuple[str, ...]]:
    """Each pod's workload label values from its labels at its start (and its namespace's)."""
    mapper = WorkloadLabelMapper()
    return {
        (pod.namespace, pod.name): mapper.values(
            PodMeta(pod.namespace, pod.name, pod.uid, labels=dict(pod.labels)),
            trace.namespace_labels.get(pod.namespace, {}),
        )
        for pod in trace.pods
    }


def _charges(
    trace: LiveNodeTrace, scrapes: _Scrapes
) -> tuple[dict[tuple[str, str], _PodCharge], dict[str, float], float]:
    """Per pod: what the ledger charged, and the part with a lost or wrong label; plus strangers' cost."""
    expected = _expected_labels(trace)
    names = DEFAULT_WORKLOAD_LABEL_CONFIG.label_names
    charges = {key: _PodCharge() for key in expected}
    lost_by_label = dict.fromkeys(names, 0.0)
    strangers_usd = 0.0
    for key, seen in scrapes.containers.items():
        counters = seen.total
        usd = counters.active_usd + counters.idle_usd
        pod_key = (key.container.namespace, key.container.pod)
        if pod_key not in charges:
            strangers_usd += usd
            continue
        charge = charges[pod_key]
        charge.gpu_seconds += counters.gpu_seconds
        charge.usd += usd
        lost = {name for name, got, want in zip(names, key.workload, expected[pod_key], strict=True)
                if want and not got}
        wrong = any(got and got != want for got, want in zip(key.workload, expected[pod_key], strict=True))
        if lost:
            charge.lost_label_usd += usd
            charge.lost_labels |= lost
            for name in lost:
                lost_by_label[name] += usd
        if wrong:
            charge.wrong_label_usd += usd
    return charges, lost_by_label, strangers_usd


def _error_pct(estimate: float, truth: float) -> float:
    return (estimate - truth) / truth * 100.0 if truth > 0.0 else 0.0


def _pod_row(pod: LivePod, charge: _PodCharge, prices: Mapping[str, float], full_price: float) -> dict[str, Any]:
    """One pod's charge by each method, as the cost of holding its device: price x GPU-seconds.

    gpucost's held cost is its GPU-seconds counter at the device's price, so its
    error is the GPU-seconds error whatever the active/idle split does with the
    money; `gpucost_container_usd` is what its container series actually carry.
    """
    price = prices[pod.slot.device_uuid]
    truth_usd = price * pod.truth_gpu_seconds / SECONDS_PER_HOUR
    gpucost_usd = price * charge.gpu_seconds / SECONDS_PER_HOUR
    request_hours_usd = (request_hours_samples(pod, REQUEST_HOURS_RESOLUTION_SECONDS)
                         * REQUEST_HOURS_RESOLUTION_SECONDS / SECONDS_PER_HOUR * full_price)
    utilization_usd = price * pod.busy_seconds() / SECONDS_PER_HOUR
    return {
        "pod": f"{pod.namespace}/{pod.name}",
        "kind": pod.kind,
        "device_id": pod.slot.device_id,
        "id_form": pod.slot.id_form,
        "share": pod.slot.share,
        "start_seconds": round(pod.start, 3),
        "end_seconds": round(pod.end, 3),
        "life_seconds": round(pod.life_seconds, 3),
        "truth_gpu_seconds": pod.truth_gpu_seconds,
        "gpucost_gpu_seconds": charge.gpu_seconds,
        "truth_usd": truth_usd,
        "gpucost_usd": gpucost_usd,
        "gpucost_error_pct": _error_pct(gpucost_usd, truth_usd),
        "request_hours_1m_usd": request_hours_usd,
        "request_hours_1m_error_pct": _error_pct(request_hours_usd, truth_usd),
        "utilization_times_price_usd": utilization_usd,
        "utilization_times_price_error_pct": _error_pct(utilization_usd, truth_usd),
        "gpucost_container_usd": charge.usd,
        "lost_label_usd": charge.lost_label_usd,
        "lost_labels": sorted(charge.lost_labels),
    }


METHODS = ("gpucost", "request_hours_1m", "utilization_times_price")


def _percentile_95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def _error_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    stats: dict[str, Any] = {"pods": len(rows)}
    for method in METHODS:
        errors = [float(row[f"{method}_error_pct"]) for row in rows]
        absolute = [abs(error) for error in errors]
        stats[method] = {
            "mean_abs_error_pct": statistics.fmean(absolute) if absolute else 0.0,
            "p95_abs_error_pct": _percentile_95(absolute),
            "max_abs_error_pct": max(absolute, default=0.0),
            "mean_signed_error_pct": statistics.fmean(errors) if errors else 0.0,
        }
    return stats


def _device_checks(
    trace: LiveNodeTrace, gpus: Mapping[str, GpuCounters], prices: Mapping[str, float], charged_seconds: float
) -> dict[str, Any]:
    per_device: dict[str, dict[str, float | str]] = {}
    for device in trace.devices:
        counters = gpus.get(device.uuid, GpuCounters())
        residual = counters.allocated_usd + counters.unallocated_usd - counters.cost_usd
        per_device[device.uuid] = {
            "gpu": device.index,
            "cost_usd": counters.cost_usd,
            "allocated_usd": counters.allocated_usd,
            "unallocated_usd": counters.unallocated_usd,
            "conservation_residual_usd": residual,
            "conservation_relative": abs(residual) / counters.cost_usd if counters.cost_usd else 0.0,
        }
    # A MIG GPU's price is its parent's (uncarved) part plus its slices': compare each physical GPU whole.
    price_differences = []
    for device in trace.devices:
        if device.is_mig:
            continue
        node_part = [d for d in trace.devices if device.uuid in (d.uuid, d.parent_uuid)]
        booked = sum(float(per_device[d.uuid]["cost_usd"]) for d in node_part)
        expected = prices[device.uuid] * charged_seconds / SECONDS_PER_HOUR
        price_differences.append(abs(booked - expected) / expected if expected else 0.0)
    return {
        "per_device": per_device,
        "conservation_max_abs_usd": max(abs(float(d["conservation_residual_usd"])) for d in per_device.values()),
        "conservation_max_relative": max(float(d["conservation_relative"]) for d in per_device.values()),
        "gpu_cost_vs_price_max_relative_difference": max(price_differences),
        "unallocated_usd": sum(float(d["unallocated_usd"]) for d in per_device.values()),
    }


def _trace_summary(trace: LiveNodeTrace) -> dict[str, Any]:
    pods = trace.pods
    return {
        "seed": trace.seed,
        "horizon_seconds": trace.shape.horizon_seconds,
        "gpus": sum(1 for device in trace.devices if not device.is_mig),
        "devices": len(trace.devices),
        "pods": len(pods),
        "short_pods": sum(1 for pod in pods if pod.kind == "short"),
        "long_pods": sum(1 for pod in pods if pod.kind == "long"),
        "abandoned_pods": sum(1 for pod in pods if pod.kind == "abandoned"),
        "short_pod_seconds": list(SHORT_POD_SECONDS),
        "time_sliced_replicas": sum(1 for slot in trace.slots if slot.id_form == "replica"),
        "mig_slices": [d.mig_profile for d in trace.devices if d.is_mig],
        "device_id_forms": sorted({slot.id_form for slot in trace.slots}),
        "namespaces": {name: dict(labels) for name, labels in trace.namespace_labels.items()},
        "events": len(trace.events()),
    }


def _label_summary(charges: Mapping[tuple[str, str], _PodCharge], lost_by_label: Mapping[str, float],
                   container_usd: float) -> dict[str, Any]:
    lost_usd = sum(charge.lost_label_usd for charge in charges.values())
    return {
        "container_cost_usd": container_usd,
        "lost_label_usd": lost_usd,
        "lost_label_share": lost_usd / container_usd if container_usd else 0.0,
        "lost_label_pods": sum(1 for charge in charges.values() if charge.lost_label_usd > 0.0),
        "lost_label_usd_by_label": dict(lost_by_label),
        "wrong_label_usd": sum(charge.wrong_label_usd for charge in charges.values()),
    }


def _totals(rows: Sequence[Mapping[str, Any]], container_usd: float) -> dict[str, float]:
    totals = {f"{name}_usd": sum(float(row[f"{name}_usd"]) for row in rows) for name in ("truth", *METHODS)}
    return {**totals, "gpucost_container_usd": container_usd}


def score(trace: LiveNodeTrace, result: _Replay) -> dict[str, Any]:
    """The replay's ledger against the trace: per-pod errors, labels, coverage, devices, targets."""
    prices = _truth_prices(trace)
    full_price = max(prices.values())
    charges, lost_by_label, strangers_usd = _charges(trace, result.scrapes)
    rows = [_pod_row(pod, charges[(pod.namespace, pod.name)], prices, full_price) for pod in trace.pods]
    short = [row for row in rows if row["kind"] == "short"]
    short_stats = _error_stats(short)
    container_usd = sum(float(row["gpucost_container_usd"]) for row in rows) + strangers_usd
    labels = _label_summary(charges, lost_by_label, container_usd)
    missed = [row["pod"] for row in rows if float(row["gpucost_gpu_seconds"]) <= 0.0]
    settings = _sampler_settings()
    return {
        "trace": _trace_summary(trace),
        "settings": {
            "pod_resources_interval_seconds": ExporterConfig().kubernetes.pod_resources_interval_seconds,
            "sample_interval_seconds": settings.sample_interval_seconds,
            "retention_seconds": settings.retention_seconds,
            "scrape_interval_seconds": SCRAPE_INTERVAL_SECONDS,
            "flush_seconds": FLUSH_SECONDS,
            "epoch_utc": kube_time(0.0),
        },
        "replay": {"ticks": result.ticks, "charged_seconds": result.charged_seconds,
                   "watch_syncs": result.watch_syncs, "scrapes": result.scrapes.count,
                   "wall_seconds": result.wall_seconds, "source_health": dict(sorted(result.scrapes.health.items()))},
        "short_pods": short_stats,
        "all_pods": _error_stats(rows),
        "worst_short_pods": sorted(short, key=lambda row: -abs(float(row["gpucost_error_pct"])))[:WORST_PODS_KEPT],
        "labels": labels,
        "coverage": {
            "pods_charged": len(rows) - len(missed),
            "pods_missed": missed,
            "unknown_container_usd": strangers_usd,
            "most_unmapped_device_ids": result.scrapes.most_unmapped_ids,
        },
        "devices": _device_checks(trace, result.scrapes.gpus, prices, result.charged_seconds),
        "totals": _totals(rows, container_usd),
        "target": {"mean_error_pct": TARGET_MEAN_ERROR_PCT, "lost_label_share": TARGET_LOST_LABEL_SHARE},
        "passed": {
            "mean_error": short_stats["gpucost"]["mean_abs_error_pct"] <= TARGET_MEAN_ERROR_PCT,
            "lost_label_share": labels["lost_label_share"] <= TARGET_LOST_LABEL_SHARE,
        },
        "per_pod": rows,
    }


def run_live_node(quick: bool = False, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    started = time.perf_counter()
    trace = generate_live_node(seed, QUICK_SHAPE if quick else FULL_SHAPE)
    result = score(trace, replay(trace))
    del result["per_pod"]  # a row per pod would be most of the file; the worst short pods stay
    return {"benchmark": "live_node", **result, "wall_seconds": time.perf_counter() - started}

