"""What the kubelet listed over the last few polls, on the sampler's clock.

The sampler books a tick only once the kubelet can no longer change what is
known about it (`PollCadence.settle_seconds`); until then a pod the kubelet
lists late can still be charged from its start.  `ListingHistory` keeps, per
allocation, the episodes of consecutive views that listed it, for as long as a
journaled tick may ask about them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import pairwise

from gpucost.engine.edges import AllocationEpisode, AllocationKey, by_key
from gpucost.model import DeviceAllocation

__all__ = ["SETTLE_MARGIN_SECONDS", "ListingHistory", "PollCadence"]

# After the poll that shows a change, the API server's status for it arrives within a
# second or so (watch latency) and the sampler's tick that reads both may come a
# second later: what the kubelet and the API server say of a moment is final by then.
SETTLE_MARGIN_SECONDS = 2.0
# Enough poll gaps to see the longest recent one, few enough to follow a changed interval.
RECENT_POLLS = 8


class PollCadence:
    """How far apart the polls fall on the sampler's clock, and so how long a moment takes to settle.

    The poll timer runs on the monotonic clock, the sampler on the GPU source's
    (which a simulated node runs faster than wall time): the gaps are measured
    on the sampler's clock, and the margin, wall seconds of watch latency, is
    scaled by how fast the sampler's clock ran against the monotonic one.
    """

    def __init__(self, interval_seconds: float) -> None:
        self._interval = interval_seconds
        self._polls: deque[tuple[float, float]] = deque(maxlen=RECENT_POLLS + 1)

    def record(self, clock: float, monotonic: float) -> None:
        if self._polls and clock < self._polls[-1][0]:
            self._polls.clear()  # the clock went back: old gaps mean nothing now
        self._polls.append((clock, monotonic))

    def longest_gap(self) -> float:
        gaps = [later[0] - earlier[0] for earlier, later in pairwise(self._polls)]
        return max([self._interval * self._clock_rate(), *gaps])

    def _clock_rate(self) -> float:
        """Sampler-clock seconds per monotonic second over the recent polls (1 before two polls)."""
        if len(self._polls) < 2:
            return 1.0
        (first_clock, first_monotonic), (last_clock, last_monotonic) = self._polls[0], self._polls[-1]
        elapsed = last_monotonic - first_monotonic
        return (last_clock - first_clock) / elapsed if elapsed > 0 and last_clock > first_clock else 1.0

    @property
    def settle_seconds(self) -> float:
        return self.longest_gap() + SETTLE_MARGIN_SECONDS * self._clock_rate()


class ListingHistory:
    """Episodes of each allocation over the views seen; closed ones stay until `forget_before`."""

    def __init__(self) -> None:
        self._open: dict[AllocationKey, AllocationEpisode] = {}
        self._closed: deque[AllocationEpisode] = deque()

    def observe(self, allocations: Sequence[DeviceAllocation], clock: float) -> None:
        """The view at `clock`: what it lists that was not open opens, what it lacks closes."""
        seen: set[AllocationKey] = set()
        for key, allocation in by_key(allocations).items():
            seen.add(key)
            episode = self._open.get(key)
            if episode is None:
                self._open[key] = AllocationEpisode(allocation, clock)
            elif _another_pod(episode.allocation, allocation):
                self._closed.append(_closed(episode, clock))
                self._open[key] = AllocationEpisode(allocation, clock)
            elif episode.allocation != allocation:
                self._open[key] = AllocationEpisode(_merged(episode.allocation, allocation), episode.first_listed)
        for key in [key for key in self._open if key not in seen]:
            self._closed.append(_closed(self._open.pop(key), clock))

    def episodes(self) -> list[AllocationEpisode]:
        return [*self._closed, *self._open.values()]

    def forget_before(self, clock: float) -> None:
        """Drop episodes that ended before `clock` (no tick still to book reaches back that far)."""
        while self._closed and (self._closed[0].first_unlisted or 0.0) < clock:
            self._closed.popleft()


def _another_pod(known: DeviceAllocation, listed: DeviceAllocation) -> bool:
    """Same device and container name, but a pod with another uid (recreated between two polls)."""
    return bool(known.pod_uid and listed.pod_uid and known.pod_uid != listed.pod_uid)


def _merged(known: DeviceAllocation, listed: DeviceAllocation) -> DeviceAllocation:
    """The latest listing, keeping a uid learnt earlier that the API server no longer gives."""
    if listed.pod_uid or not known.pod_uid:
        return listed
    return DeviceAllocation(listed.uuid, listed.container, listed.share, known.pod_uid, listed.resource)


def _closed(episode: AllocationEpisode, clock: float) -> AllocationEpisode:
    return AllocationEpisode(episode.allocation, episode.first_listed, clock)
