"""The deferred-booking journal: each tick's inputs wait until they have settled, then go into the ledger.

A tick is booked once the allocation provider can no longer change what it
knows of that tick (its `settle_seconds`; 0, so at once, for providers that
know exact times).  A polled provider (the kubelet) keeps a history of its
views, and the booking bounds every allocation by its pod's lifetime from the
API server (`gpucost.engine.edges`).  Every tick is booked whole, GPU split
and whole-node split together, so allocated + unallocated == cost holds at
every scrape for every GPU and every node resource; `booked_until` is the end
of the last booked tick, what a checkpoint may claim as counted.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from gpucost.attribution import AllocationHistory, AllocationProvider, AllocationView, MetadataProvider
from gpucost.engine.edges import EDGE_SOURCES, AllocationEpisode, PodTimes, TickHolding, hold_for_tick
from gpucost.engine.ledger import Ledger
from gpucost.engine.node_tick import NodeTickInputs, split_node_tick
from gpucost.engine.tick import TickInputs, run_tick
from gpucost.model import ContainerRef, DeviceAllocation, GpuDevice, GpuSample, PodMeta, PriceQuote

__all__ = ["MAX_JOURNAL_TICKS", "Journal", "JournalTick", "LabelMapper"]

# Ticks waiting to be booked, at most: ten minutes of 1 s ticks, far beyond any settle time
# (a poll gap plus a margin); it bounds memory should the clock stall or step back.
MAX_JOURNAL_TICKS = 600


class LabelMapper(Protocol):
    def values(self, pod: PodMeta | None, namespace_labels: Mapping[str, str]) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class JournalTick:
    """One tick's inputs, waiting until the allocation provider's view of [start, end) has settled."""

    start: float
    end: float
    devices: tuple[GpuDevice, ...]
    samples: Mapping[str, GpuSample]
    prices: Mapping[str, PriceQuote]
    allocations: tuple[DeviceAllocation, ...]
    # Resolved when sampled: by the time the tick is booked the processes may be gone.
    busy_by_pod_uid: Mapping[str, Mapping[str, float]]
    # Workload label values as they were during the tick, for the containers its view listed.
    workload: Mapping[ContainerRef, tuple[str, ...]]
    # The node's price by resource and its CPU/memory/storage claims, as sampled (whole-node cost).
    node: NodeTickInputs

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Journal:
    """The ticks waiting to be booked into a ledger, and what booking them has counted so far."""

    def __init__(
        self,
        ledger: Ledger,
        ledger_lock: threading.Lock,
        allocations: AllocationProvider,
        metadata: MetadataProvider,
        labels: LabelMapper,
        booked_until: float | None,
    ) -> None:
        self._ledger = ledger
        # The sampler's lock: scrapes and checkpoints read the ledger and `booked_until` under it.
        self._lock = ledger_lock
        self._allocations = allocations
        self._metadata = metadata
        self._labels = labels
        self._ticks: deque[JournalTick] = deque()
        # End of the last tick in the ledger: what a checkpoint may claim as counted.
        self.booked_until = booked_until
        # Whether the last metadata refresh succeeded: only then do pod lifetimes bound allocations.
        self.metadata_current = False
        self.edges: Counter[str] = Counter(dict.fromkeys(EDGE_SOURCES, 0))

    def add(self, tick: JournalTick) -> None:
        self._ticks.append(tick)

    def _settle_seconds(self) -> float:
        return self._allocations.settle_seconds if isinstance(self._allocations, AllocationHistory) else 0.0

    def book_settled(self, clock: float, wall: float) -> None:
        """Book every journaled tick whose view can no longer change, oldest first."""
        settle = self._settle_seconds()
        while self._ticks and (self._ticks[0].end + settle <= clock or len(self._ticks) > MAX_JOURNAL_TICKS):
            self._book(self._ticks.popleft(), wall)

    def book_all(self, wall: float) -> bool:
        """Book every journaled tick with what is known now; False when there was none."""
        if not self._ticks:
            return False
        while self._ticks:
            self._book(self._ticks.popleft(), wall)
        return True

    def _book(self, tick: JournalTick, wall: float) -> None:
        holding = self._holding(tick)
        costs = run_tick(TickInputs(tick.seconds, tick.devices, tick.samples, tick.prices, holding.allocations,
                                    tick.busy_by_pod_uid))
        node_costs = split_node_tick(tick.seconds, tick.node, costs)
        workload = dict(tick.workload)
        claimants = [item.container for item in tick.node.view.containers]
        for container in [*(allocation.container for allocation in holding.allocations), *claimants]:
            # A pod listed only after this tick, or holding no GPU: its labels as they are now (kept after deletion).
            if container not in workload:
                workload[container] = self._workload_of(container)
        with self._lock:
            for cost in costs:
                self._ledger.record(cost, workload, wall)
            self._ledger.record_node(node_costs, workload, wall)
            self.booked_until = tick.end
        self.edges.update(holding.edges)

    def _holding(self, tick: JournalTick) -> TickHolding:
        if not isinstance(self._allocations, AllocationHistory):
            return TickHolding(tick.allocations)
        episodes = self._allocations.episodes()
        return hold_for_tick(tick.start, tick.end, tick.allocations,
                             [(episode, self._pod_times(episode)) for episode in episodes])

    def _pod_times(self, episode: AllocationEpisode) -> PodTimes | None:
        """The lifetime of the episode's pod, or None for poll edges (API server down, pod unknown or another)."""
        if not self.metadata_current:
            return None
        ref = episode.allocation.container
        pod = self._metadata.pod(ref.namespace, ref.pod)
        if pod is None or (pod.uid and episode.allocation.pod_uid and pod.uid != episode.allocation.pod_uid):
            return None
        if pod.started_at is None and pod.finished_at is None and pod.deleted_at is None:
            return None
        return PodTimes(pod.started_at, pod.finished_at, pod.deleted_at)

    def workload_values(self, view: AllocationView) -> dict[ContainerRef, tuple[str, ...]]:
        values: dict[ContainerRef, tuple[str, ...]] = {}
        for allocation in view.allocations:
            ref = allocation.container
            if ref not in values:
                values[ref] = self._workload_of(ref)
        return values

    def _workload_of(self, ref: ContainerRef) -> tuple[str, ...]:
        pod = self._metadata.pod(ref.namespace, ref.pod)
        return self._labels.values(pod, self._metadata.namespace_labels(ref.namespace))
