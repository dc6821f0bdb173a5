"""Which containers held a device during one tick, and for what part of it: allocation edges.

Pure: a tick's interval, the kubelet's view at its end, the episodes in which the
kubelet listed each allocation, and each pod's lifetime from the API server in;
the holders with their shares scaled by the fraction of the tick they held out.

The kubelet is polled (every few seconds), so it says only that an allocation
was listed at one poll and not at the next.  The API server says within a
second when the pod's first container started and its last one ended.  An
allocation is held over [begin, end) where:

- begin is the pod's `started_at` when the API server gave it (a pod the kubelet
  first listed after it started is charged from its start, back through every
  tick not yet booked); else the poll edge: the tick whose end first saw it
  listed is held whole, as if it had started with that tick;
- end is the earliest of the pod's `finished_at` (every container ended) and
  `deleted_at` (its deletion deadline: the kubelet kills whatever still runs by
  then, and a force delete sets it to the moment of deletion), when the API
  server gave either; and never later than the poll edge, the start of the tick
  whose end first saw the allocation gone (the kubelet had released the device
  by then, whatever the API server last said).

Times are on the sampler's clock; the caller passes a lifetime only for the pod
the episode belongs to (same uid) and only while the API server is current, so
with the API server down every edge is a poll edge, exactly as before lifetimes
were known.  `TickHolding.edges` counts the begin and end edges that fell in the
tick, by who decided them ("apiserver" or "kubelet_poll").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from gpucost.model import ContainerRef, DeviceAllocation

__all__ = [
    "EDGE_SOURCES",
    "AllocationEpisode",
    "AllocationKey",
    "PodTimes",
    "TickHolding",
    "allocation_key",
    "by_key",
    "hold_for_tick",
]

EDGE_SOURCES: tuple[str, ...] = ("apiserver", "kubelet_poll")
APISERVER, KUBELET_POLL = EDGE_SOURCES

AllocationKey = tuple[str, ContainerRef, str]


def allocation_key(allocation: DeviceAllocation) -> AllocationKey:
    """What stays the same while the kubelet keeps listing one holding: device, container, resource."""
    return (allocation.uuid, allocation.container, allocation.resource)


def by_key(allocations: Sequence[DeviceAllocation]) -> dict[AllocationKey, DeviceAllocation]:
    """One allocation per key: a container holding two replicas of a GPU holds their shares summed."""
    merged: dict[AllocationKey, DeviceAllocation] = {}
    for allocation in allocations:
        key = allocation_key(allocation)
        known = merged.get(key)
        merged[key] = allocation if known is None else replace(known, share=known.share + allocation.share)
    return merged


@dataclass(frozen=True, slots=True)
class AllocationEpisode:
    """One unbroken run of polls that listed an allocation.

    `first_listed` is the first poll (sampler clock) whose view held it;
    `first_unlisted` the first that no longer did, None while it still does.
    """

    allocation: DeviceAllocation
    first_listed: float
    first_unlisted: float | None = None

    def listed_at(self, moment: float) -> bool:
        return self.first_listed <= moment and (self.first_unlisted is None or moment < self.first_unlisted)


@dataclass(frozen=True, slots=True)
class PodTimes:
    """A pod's lifetime as the API server gave it; None where it did not say."""

    started_at: float | None = None
    finished_at: float | None = None
    deleted_at: float | None = None

    @property
    def ended_at(self) -> float | None:
        ends = [moment for moment in (self.finished_at, self.deleted_at) if moment is not None]
        return min(ends) if ends else None


@dataclass(frozen=True, slots=True)
class TickHolding:
    allocations: tuple[DeviceAllocation, ...]
    edges: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Held:
    fraction: float
    edges: tuple[str, ...]


def hold_for_tick(
    start: float,
    end: float,
    listed: Sequence[DeviceAllocation],
    episodes: Sequence[tuple[AllocationEpisode, PodTimes | None]],
) -> TickHolding:
    """The holders of the tick [start, end): `listed` is the kubelet's view at `end`.

    A listed allocation no episode explains is kept whole (a provider without
    history); an episode's allocation is taken from the view when the view lists
    it, so a share that changed is charged as it was at the time.
    """
    seconds = end - start
    if seconds <= 0:
        return TickHolding(tuple(listed))
    in_view = by_key(listed)
    explained: set[AllocationKey] = set()
    holders: list[DeviceAllocation] = []
    edges: Counter[str] = Counter()
    for episode, times, floor in _with_floors(episodes):
        key = allocation_key(episode.allocation)
        allocation = in_view.get(key) if episode.listed_at(end) else None
        if allocation is not None:
            explained.add(key)
        held = _held(start, end, episode, times, floor)
        edges.update(held.edges)
        if held.fraction > 0.0:
            base = allocation or episode.allocation
            holders.append(base if held.fraction >= 1.0 else replace(base, share=base.share * held.fraction))
    holders.extend(allocation for key, allocation in in_view.items() if key not in explained)
    return TickHolding(tuple(holders), {source: edges[source] for source in EDGE_SOURCES if edges[source]})


def _with_floors(
    episodes: Sequence[tuple[AllocationEpisode, PodTimes | None]],
) -> list[tuple[AllocationEpisode, PodTimes | None, float | None]]:
    """Each episode with the moment its predecessor of the same key was first seen gone.

    A pod's start reaches back only to there: the earlier ticks belong to the
    earlier episode, and charging both would count the same holding twice.
    """
    ordered = sorted(episodes, key=lambda pair: pair[0].first_listed)
    last_gone: dict[AllocationKey, float | None] = {}
    result: list[tuple[AllocationEpisode, PodTimes | None, float | None]] = []
    for episode, times in ordered:
        key = allocation_key(episode.allocation)
        result.append((episode, times, last_gone.get(key)))
        last_gone[key] = episode.first_unlisted
    return result


def _held(
    start: float, end: float, episode: AllocationEpisode, times: PodTimes | None, floor: float | None
) -> _Held:
    edges: list[str] = []
    started_at = times.started_at if times is not None else None
    if started_at is not None:
        low = max(start, started_at)
        if floor is not None and end < floor:
            low = end  # the previous episode of this holding owns this tick
        if start <= started_at < end:
            edges.append(APISERVER)
    else:
        low = start if episode.first_listed <= end else end
        if start < episode.first_listed <= end:
            edges.append(KUBELET_POLL)

    unlisted = episode.first_unlisted
    high = end if unlisted is None or unlisted > end else start
    ended_at = times.ended_at if times is not None else None
    if ended_at is not None:
        high = min(high, max(start, ended_at))
        if (unlisted is None or ended_at <= unlisted) and start < ended_at <= end:
            edges.append(APISERVER)
        elif unlisted is not None and ended_at > unlisted and start < unlisted <= end:
            edges.append(KUBELET_POLL)
    elif unlisted is not None and start < unlisted <= end:
        edges.append(KUBELET_POLL)
    return _Held(max(0.0, min(1.0, (high - low) / (end - start))), tuple(edges))
