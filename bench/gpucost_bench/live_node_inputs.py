"""What the live-node replay feeds the exporter from a trace: a virtual clock, GPU samples, pod objects.

`TraceGpuSource` is a `GpuSource` whose utilization is the trace's, averaged over each
tick; `pod_object` is a trace pod as the API server serves it at each step of its life.
Both read time from `VirtualClock`, virtual second 0 being `EPOCH`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from gpucost.model import GpuDevice, GpuSample
from gpucost_bench.live_trace import NODE_NAME, EventKind, LiveNodeTrace, LivePod
from gpucost_testing.fake_apiserver import JsonObject

__all__ = ["CONTAINER", "EPOCH", "TraceGpuSource", "VirtualClock", "kube_time", "pod_object"]

# Virtual second 0 is this unix time (2025-06-02T00:00:00Z): the exporter's clock and the pods' timestamps agree.
EPOCH = 1_748_822_400.0
# The API server sets deletionTimestamp to the delete request plus the pod's grace period.
GRACE_PERIOD_SECONDS = 30
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
