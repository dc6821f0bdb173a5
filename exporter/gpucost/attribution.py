"""Where allocations and pod metadata come from: the seams the sampler reads.

Three providers implement the same two small protocols:
- static: allocations declared in the config file (no Kubernetes);
- scenario: the simulated node's timeline (tests and the demo);
- kubernetes: kubelet pod-resources + API server (`gpucost.kube`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gpucost.engine.edges import AllocationEpisode
from gpucost.model import DeviceAllocation, GpuDevice, NodeInfo, PodMeta, SharingMode
from gpucost.sources.truncation import TruncationCounts, zero_counts

__all__ = [
    "AllocationHistory",
    "AllocationProvider",
    "AllocationView",
    "MetadataProvider",
    "StaticAllocationProvider",
    "StaticMetadataProvider",
    "TruncationReporter",
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
    """Pod labels, namespace labels, the node's labels and pid ownership."""

    name: str

    def refresh(self, now: float) -> None: ...

    def pod(self, namespace: str, pod: str) -> PodMeta | None: ...

    def namespace_labels(self, namespace: str) -> Mapping[str, str]: ...

    def node(self) -> NodeInfo: ...

    def pid_to_pod_uid(self) -> Callable[[int], str | None] | None: ...


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
    name = "static"

    def __init__(self, allocations: Sequence[DeviceAllocation]) -> None:
        self._view = AllocationView(tuple(allocations))

    def refresh(self, devices: Sequence[GpuDevice], now: float) -> None:
        return None

    def current(self) -> AllocationView:
        return self._view


class StaticMetadataProvider:
    """Labels declared in the config file, keyed by (namespace, pod)."""

    name = "static"

    def __init__(self, pods: Sequence[PodMeta], node: NodeInfo) -> None:
        self._pods = {(p.namespace, p.pod): p for p in pods}
        self._node = node

    def refresh(self, now: float) -> None:
        return None

    def pod(self, namespace: str, pod: str) -> PodMeta | None:
        return self._pods.get((namespace, pod))

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return {}

    def node(self) -> NodeInfo:
        return self._node

    def pid_to_pod_uid(self) -> Callable[[int], str | None] | None:
        return None
