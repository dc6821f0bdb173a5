"""The cached view of the kubelet's device assignments, refreshed on a timer.

The kubelet rate-limits the pod-resources API (100 QPS, burst 10, shared by
every client on the node), so List is called at most once per interval and
never on the scrape path.  The caller's loop calls `poll_if_due()`; this class
owns the timing, not a thread.  When the kubelet can't be reached the last
good answer is served until it is older than `max_staleness_seconds`, health
drops to False with the reason in `last_error`, and the next poll starts from
a fresh client (a new channel), so a restarted kubelet is picked up by itself.

Only the assignments of the resources the provider attributes (`keep_resources`)
are kept from a List answer: on a node with thousands of pods the rest of the
answer (NICs, FPGAs, containers without devices) is never copied.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gpucost.errors import SourceUnavailable
from gpucost.truncation import TruncationCounter, TruncationCounts

from .client import ContainerDeviceAssignment, MethodUnsupported, PodResourcesClient, ResourceFilter

__all__ = ["PodResourcesSource"]

_LOG = logging.getLogger(__name__)


class PodResourcesSource:
    """List and GetAllocatableResources, cached, with bounded staleness and health."""

    def __init__(
        self,
        client_factory: Callable[[], PodResourcesClient],
        *,
        interval_seconds: float = 2.0,
        max_staleness_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        fetch_allocatable: bool = True,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        if max_staleness_seconds < 0:
            raise ValueError(f"max_staleness_seconds must not be negative, got {max_staleness_seconds}")
        self._client_factory = client_factory
        self._client: PodResourcesClient | None = None
        self.interval_seconds = interval_seconds
        self.max_staleness_seconds = max_staleness_seconds
        self._clock = clock
        self._fetch_allocatable = fetch_allocatable
        self._last_attempt: float | None = None
        self._last_success: float | None = None
        self._assignments: tuple[ContainerDeviceAssignment, ...] = ()
        self._allocatable: dict[str, tuple[str, ...]] = {}
        self.healthy = False
        self.last_error = "not polled yet"
        # Polls tried so far: after each, what the kubelet says of the moments before it is final.
        self.poll_attempts = 0
        self._keep_resource: ResourceFilter | None = None
        self._truncated = TruncationCounter()

    def keep_resources(self, keep_resource: ResourceFilter) -> None:
        """Keep only assignments of resources `keep_resource` accepts (the provider's GPU resources)."""
        self._keep_resource = keep_resource

    def truncation_counts(self) -> TruncationCounts:
        """How often a List answer held something too long to keep (a device id), by (source, reason)."""
        return self._truncated.snapshot()

    def poll_if_due(self) -> None:
        """Ask the kubelet when the interval has passed since the last attempt; never raises."""
        now = self._clock()
        if self._last_attempt is not None and now - self._last_attempt < self.interval_seconds:
            return
        self._last_attempt = now
        self.poll_attempts += 1
        try:
            self._poll(now)
        except SourceUnavailable as error:
            self._fail(str(error))

    def assignments(self) -> list[ContainerDeviceAssignment] | None:
        """The last good List answer, or None when there is none within the staleness bound."""
        return list(self._assignments) if self._is_fresh() else None

    def allocatable(self) -> dict[str, tuple[str, ...]] | None:
        """The last good GetAllocatableResources answer ({} if the kubelet lacks it), or None when stale."""
        return dict(self._allocatable) if self._is_fresh() else None

    def monotonic(self) -> float:
        """The source's own clock (the poll timer's), for comparing its pace with the sampler's."""
        return self._clock()

    def age_seconds(self) -> float | None:
        """Seconds since the last successful List, or None when there was none."""
        return None if self._last_success is None else self._clock() - self._last_success

    def close(self) -> None:
        self._drop_client()

    # --- internals -------------------------------------------------------------

    def _poll(self, now: float) -> None:
        if self._client is None:
            self._client = self._client_factory()
        if self._keep_resource is None:
            assignments = self._client.list(counter=self._truncated)
        else:
            assignments = self._client.list(self._keep_resource, self._truncated)
        allocatable = self._allocatable
        if self._fetch_allocatable:
            try:
                allocatable = self._client.allocatable()
            except MethodUnsupported as error:
                # Kubelets before 1.23 lack it; shares then fall back to config or counts.
                _LOG.info("kubelet has no GetAllocatableResources: %s", error)
                allocatable = {}
        self._assignments = tuple(assignments)
        self._allocatable = allocatable
        self._last_success = now
        if not self.healthy:
            _LOG.info("kubelet pod-resources reachable again; %d assignments", len(assignments))
        self.healthy = True
        self.last_error = ""

    def _fail(self, reason: str) -> None:
        if self.healthy or reason != self.last_error:
            _LOG.warning("kubelet pod-resources unavailable: %s", reason)
        self.healthy = False
        self.last_error = reason
        # A fresh channel next time: the old one may point at a dead socket inode
        # or sit in gRPC's reconnect backoff.
        self._drop_client()

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    def _is_fresh(self) -> bool:
        return (
            self._last_success is not None
            and self._clock() - self._last_success <= self.max_staleness_seconds
        )
