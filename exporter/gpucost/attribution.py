"""Where allocations, pod metadata and process owners come from: the seams the sampler reads.

Three sets of providers implement the same small protocols:
- static: allocations declared in the config file (no Kubernetes);
- scenario: the simulated node's timeline (tests and the demo);
- kubernetes: kubelet pod-resources + API server (`gpucost.kube`), the
  host's /proc for process owners (`gpucost.sources.procfs`) and the kubelet's
  /metrics/resource for CPU and memory usage (`gpucost.sources.node_resources`).

Each provider's `name` is the health collector its step reports under, taken
from `gpucost.sources.registry`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gpucost.engine.edges import AllocationEpisode
from gpucost.model import DeviceAllocation, GpuDevice, GpuSample, NodeInfo, NodeResourceView, PodMeta, SharingMode
from gpucost.sources.registry import KUBELET_RESOURCE, METADATA, PROCFS, SCENARIO, STATIC
from gpucost.sources.simulated import ScenarioAllocationSource
from gpucost.truncation import TruncationCounts, zero_counts

__all__ = [
    "AllocationHistory",
    "AllocationProvider",
    "AllocationView",
    "MetadataProvider",
    "NodeResourceProvider",
    "PidOwners",
    "Providers",
    "ScenarioAllocationProvider",
    "ScenarioMetadataProvider",
    "ScenarioNodeResourceProvider",
    "ScenarioPidOwners",
    "StaticAllocationProvider",
    "StaticMetadataProvider",
    "TruncationReporter",
    "pod_busy_by_device",
    "truncation_counts",
]


@dataclass(frozen=True, slots=True)
class AllocationView:
    allocations: tuple[DeviceAllocation, ...] = ()
    sharing_modes: Mapping[str, SharingMode] = field(default_factory=dict)
    unmapped: Mapping[str, int] = field(default_factory=dict)


class AllocationProvider(Protocol):
    """Which containers hold which devices.  `refresh` may raise SourceUnavailable;
    `current` then still answers with the last good view (bounded staleness)."""

    name: str

    def refresh(self, devices: Sequence[GpuDevice], now: float) -> None: ...

    def current(self) -> AllocationView: ...


@runtime_checkable
class AllocationHistory(Protocol):
    """An allocation provider whose view of a moment can still change after it (a polled source).

    Optional: the sampler books a tick only `settle_seconds` (sampler clock) after
    its end, with the holders `gpucost.engine.edges` derives from `episodes()`
    and the pods' lifetimes.  Providers that know exact times (static, scenario)
    do not implement it, and their ticks are booked at once from their view.
    """

    @property
    def settle_seconds(self) -> float: ...

    def episodes(self) -> Sequence[AllocationEpisode]: ...


class MetadataProvider(Protocol):
    """Pod labels, namespace labels and the node's labels (and, for whole-node cost, every pod and the node's size)."""

    name: str

    def refresh(self, now: float) -> None: ...

    def pod(self, namespace: str, pod: str) -> PodMeta | None: ...

    def pods(self) -> Sequence[PodMeta]:
        """Every pod bound to the node as last known (finished ones included; deleted ones not)."""
        ...

    def namespace_labels(self, namespace: str) -> Mapping[str, str]: ...

    def node(self) -> NodeInfo: ...


class NodeResourceProvider(Protocol):
    """The node's allocatable CPU/memory/storage and each container's requests and usage (whole-node cost).

    `refresh` may raise SourceUnavailable (the kubelet's /metrics/resource did
    not answer); `current` then answers with the requests and the last known
    usage, so CPU and memory are still charged by request.
    """

    name: str

    def refresh(self, now: float) -> None: ...

    def current(self) -> NodeResourceView: ...


class PidOwners(Protocol):
    """Which pod each host process runs in: the sampler asks once per tick, for the pids it just sampled.

    Raises only when the lookup itself broke; a process that is gone or in no
    pod is simply left out of the answer.
    """

    name: str

    def pod_uids(self, pids: Collection[int]) -> Mapping[int, str]: ...


@dataclass(frozen=True, slots=True)
class Providers:
    """The sources behind one exporter: who holds what, their labels, and (optionally) process owners."""

    allocations: AllocationProvider
    metadata: MetadataProvider
    pid_owners: PidOwners | None = None
    # Whole-node cost: CPU, memory and storage claims; None leaves those parts of the node unallocated.
    node_resources: NodeResourceProvider | None = None


def pod_busy_by_device(
    samples: Mapping[str, GpuSample], owners: Mapping[int, str]
) -> dict[str, dict[str, float]]:
    """Each device's busy fraction per pod UID, summed over the pod's processes.

    Only devices that reported per-process utilization appear: the engine splits
    the others by share.  A process whose pod is unknown counts for no one.
    """
    busy: dict[str, dict[str, float]] = {}
    for uuid, sample in samples.items():
        if not sample.process_utilization:
            continue
        by_pod = busy.setdefault(uuid, {})
        for pid, utilization in sample.process_utilization.items():
            owner = owners.get(pid)
            if owner is not None:
                by_pod[owner] = by_pod.get(owner, 0.0) + utilization
    return busy


@runtime_checkable
class TruncationReporter(Protocol):
    """A provider that cuts oversized source data reports how often, by (source, reason).

    Optional: providers that read nothing unbounded (static, scenario) do not implement it.
    """

    def truncation_counts(self) -> TruncationCounts: ...


def truncation_counts(*providers: object) -> dict[tuple[str, str], int]:
    """Every known cut from zero, plus what the reporting providers counted (for the snapshot)."""
    counts = zero_counts()
    for provider in providers:
        if isinstance(provider, TruncationReporter):
            for key, count in provider.truncation_counts().items():
                counts[key] = counts.get(key, 0) + count
    return counts


class StaticAllocationProvider:
    name = STATIC.collector

    def __init__(self, allocations: Sequence[DeviceAllocation]) -> None:
        self._view = AllocationView(tuple(allocations))

    def refresh(self, devices: Sequence[GpuDevice], now: float) -> None:
        return None

    def current(self) -> AllocationView:
        return self._view


class StaticMetadataProvider:
    """Labels declared in the config file, keyed by (namespace, pod)."""

    name = METADATA.collector

    def __init__(self, pods: Sequence[PodMeta], node: NodeInfo) -> None:
        self._pods = {(p.namespace, p.pod): p for p in pods}
        self._node = node

    def refresh(self, now: float) -> None:
        return None

    def pod(self, namespace: str, pod: str) -> PodMeta | None:
        return self._pods.get((namespace, pod))

    def pods(self) -> Sequence[PodMeta]:
        return tuple(self._pods.values())

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return {}

    def node(self) -> NodeInfo:
        return self._node


class ScenarioAllocationProvider:
    """Allocations straight from the simulated node's timeline (no Kubernetes)."""

    name = SCENARIO.collector

    def __init__(self, source: ScenarioAllocationSource) -> None:
        self._source = source
        self._view = AllocationView()

    def refresh(self, devices: Sequence[GpuDevice], now: float) -> None:
        self._view = AllocationView(tuple(self._source.allocations()))

    def current(self) -> AllocationView:
        return self._view


class ScenarioMetadataProvider(StaticMetadataProvider):
    """The scenario's pods and node, re-read from its timeline on every refresh."""

    def __init__(self, source: ScenarioAllocationSource) -> None:
        super().__init__((), NodeInfo())  # node() reads the timeline instead
        self._source = source

    def refresh(self, now: float) -> None:
        self._pods = {(p.namespace, p.pod): p for p in self._source.pods()}

    def node(self) -> NodeInfo:
        return self._source.node_info()


class ScenarioPidOwners:
    """The scenario's processes, standing in for the host's /proc (so it reports as `procfs`)."""

    name = PROCFS.collector

    def __init__(self, source: ScenarioAllocationSource) -> None:
        self._source = source

    def pod_uids(self, pids: Collection[int]) -> Mapping[int, str]:
        owners = {pid: self._source.pid_to_pod_uid(pid) for pid in pids}
        return {pid: uid for pid, uid in owners.items() if uid is not None}


class ScenarioNodeResourceProvider:
    """The scenario's allocatable, requests and usage timelines, standing in for the kubelet's /metrics/resource."""

    name = KUBELET_RESOURCE.collector

    def __init__(self, source: ScenarioAllocationSource) -> None:
        self._source = source
        self._view = NodeResourceView()

    def refresh(self, now: float) -> None:
        self._view = self._source.node_resources()

    def current(self) -> NodeResourceView:
        return self._view
