"""The kubelet as the sampler's `AllocationProvider`: poll when due, attribute, keep the view.

Glue only: `PodResourcesSource` decides when to call the kubelet and how long
an old answer stays usable, `attribute` computes the shares.  Past the
staleness bound the view is empty, so device cost goes to unallocated rather
than to pods that may be long gone.

It is also an `AllocationHistory`: each view is recorded on the sampler's
clock (`ListingHistory`), and the sampler waits `settle_seconds` (a poll gap
plus a margin) before booking a tick, so a pod listed late is charged from
its start (see `gpucost.engine.edges`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from gpucost.attribution import AllocationView
from gpucost.engine.edges import AllocationEpisode
from gpucost.errors import SourceUnavailable
from gpucost.model import GpuDevice, SharingMode
from gpucost.sources.registry import PODRESOURCES
from gpucost.truncation import TruncationCounts

from .attribution import DEFAULT_RESOURCE_NAMES, attribute, is_gpu_resource
from .history import ListingHistory, PollCadence
from .source import PodResourcesSource
from .unmapped_log import UnmappedDeviceLog

__all__ = ["PodResourcesAllocationProvider"]


def _no_pod_uids() -> Mapping[tuple[str, str], str]:
    return {}


class PodResourcesAllocationProvider:
    """Allocations from the kubelet's pod-resources API, refreshed at most once per interval."""

    name = PODRESOURCES.collector

    def __init__(
        self,
        source: PodResourcesSource,
        *,
        extra_resource_names: Collection[str] = (),
        mps_resources: Collection[str] = (),
        replicas_per_gpu: int | None = None,
        replica_mode: SharingMode = "time_slicing",
        pod_uids: Callable[[], Mapping[tuple[str, str], str]] = _no_pod_uids,
        unmapped_log: UnmappedDeviceLog | None = None,
    ) -> None:
        self._source = source
        self._resource_names = (*DEFAULT_RESOURCE_NAMES, *extra_resource_names)
        # attribute() ignores every other resource, so the source need not keep them.
        resource_names = self._resource_names
        source.keep_resources(lambda resource: is_gpu_resource(resource, resource_names))
        self._mps_resources = tuple(mps_resources)
        self._replicas_per_gpu = replicas_per_gpu
        self._replica_mode = replica_mode
        self._pod_uids = pod_uids
        self._unmapped_log = unmapped_log or UnmappedDeviceLog()
        self._view = AllocationView()
        self._history = ListingHistory()
        self._cadence = PollCadence(source.interval_seconds)
        self._polls_seen = 0

    def refresh(self, devices: Sequence[GpuDevice], now: float) -> None:
        """Poll when due and recompute the view; raises SourceUnavailable while the kubelet is away.

        `now` is not used for timing: the source keeps its own monotonic clock
        so a wall-clock jump can neither stall nor hammer the kubelet.  It dates
        the view in the history and measures the poll gaps on the sampler's clock.
        """
        self._source.poll_if_due()
        if self._source.poll_attempts != self._polls_seen:
            # A failed poll settles the past too: the stale view it leaves will not change it.
            self._polls_seen = self._source.poll_attempts
            self._cadence.record(now, self._source.monotonic())
        assignments = self._source.assignments()
        if assignments is None:
            self._view = AllocationView()
        else:
            result = attribute(
                assignments,
                self._source.allocatable() or {},
                devices,
                resource_names=self._resource_names,
                mps_resources=self._mps_resources,
                pod_uids=self._pod_uids(),
                replicas_per_gpu=self._replicas_per_gpu,
                replica_mode=self._replica_mode,
            )
            self._unmapped_log.report(result.unmapped_ids)
            self._view = AllocationView(result.allocations, result.sharing_modes, result.unmapped)
        self._history.observe(self._view.allocations, now)
        # A journaled tick is at most a settle time old; twice that keeps every episode it can ask about.
        self._history.forget_before(now - 2 * self._cadence.settle_seconds)
        if not self._source.healthy:
            raise SourceUnavailable(self._source.last_error)

    def current(self) -> AllocationView:
        return self._view

    @property
    def settle_seconds(self) -> float:
        """How long after a moment a poll may still show what held the devices then (sampler clock)."""
        return self._cadence.settle_seconds

    def episodes(self) -> list[AllocationEpisode]:
        return self._history.episodes()

    def truncation_counts(self) -> TruncationCounts:
        return self._source.truncation_counts()

    def close(self) -> None:
        self._source.close()
