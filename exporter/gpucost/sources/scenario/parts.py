"""The parts of a simulated-node scenario: timelines, GPUs and MIG slices, pods, processes and faults.

Frozen values built by `gpucost.sources.scenario.parser` and held by `Scenario` (`model.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from gpucost.model import ContainerRef, GpuDevice

__all__ = [
    "DEFAULT_IDLE_POWER_WATTS",
    "DEFAULT_MAX_POWER_WATTS",
    "DEFAULT_PARENT_SLICES",
    "FAULT_KINDS",
    "GPU_RESOURCE",
    "REPLICA_SEPARATOR",
    "ContainerDeviceIds",
    "Fault",
    "FaultKind",
    "MigSlice",
    "ScenarioContainer",
    "ScenarioGpu",
    "ScenarioPod",
    "ScenarioProcess",
    "Timeline",
    "TimelineField",
    "TimelinePoint",
    "replica_device_id",
]

GPU_RESOURCE = "nvidia.com/gpu"
REPLICA_SEPARATOR = "::"
DEFAULT_PARENT_SLICES = 7
DEFAULT_IDLE_POWER_WATTS = 60.0
DEFAULT_MAX_POWER_WATTS = 400.0

FaultKind = Literal["nvml_error", "init_error"]
FAULT_KINDS: tuple[FaultKind, ...] = ("nvml_error", "init_error")
# A GPU's or process's fields, then a container's CPU and memory usage (whole-node cost).
TimelineField = Literal["utilization", "memory_used_bytes", "power_watts", "cpu_cores", "memory_bytes"]


def replica_device_id(gpu_uuid: str, replica: int) -> str:
    """The kubelet device id the NVIDIA device plugin gives one time-slicing replica."""
    return f"{gpu_uuid}{REPLICA_SEPARATOR}{replica}"


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """Values from `at` on; `linear` ramps each value towards the next point's."""

    at: float
    utilization: float | None = None
    memory_used_bytes: int | None = None
    power_watts: float | None = None
    linear: bool = False
    cpu_cores: float | None = None
    memory_bytes: float | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """Piecewise-constant or piecewise-linear values over scenario time.

    Before the first point the first point's values hold; after the last,
    the last point's values hold unless `repeat_every` wraps time around so a
    short timeline drives a long demo.
    """

    points: tuple[TimelinePoint, ...]
    repeat_every: float | None = None

    def has(self, name: TimelineField) -> bool:
        return bool(self.points) and getattr(self.points[0], name) is not None

    def value_at(self, name: TimelineField, t: float) -> float | None:
        if not self.has(name):
            return None
        points = self.points
        local_t = t
        if self.repeat_every is not None and t >= 0:
            local_t = math.fmod(t, self.repeat_every)
        if local_t <= points[0].at:
            return _number(getattr(points[0], name))
        position = _last_index_at_or_before(points, local_t)
        current = points[position]
        value = _number(getattr(current, name))
        if not current.linear:
            return value
        if position + 1 < len(points):
            following_at, following_value = points[position + 1].at, getattr(points[position + 1], name)
        elif self.repeat_every is not None:
            # The last segment of a repeating timeline ramps back to the first point.
            following_at, following_value = self.repeat_every + points[0].at, getattr(points[0], name)
        else:
            return value
        span = following_at - current.at
        fraction = (local_t - current.at) / span if span > 0 else 0.0
        return value + (_number(following_value) - value) * fraction


def _number(value: object) -> float:
    assert isinstance(value, int | float)  # guaranteed by the parser's all-or-none check
    return float(value)


def _last_index_at_or_before(points: Sequence[TimelinePoint], t: float) -> int:
    low, high = 0, len(points) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if points[middle].at <= t:
            low = middle
        else:
            high = middle - 1
    return low


@dataclass(frozen=True, slots=True)
class MigSlice:
    """One MIG device carved from a GPU."""

    uuid: str
    profile: str
    gpu_instance_id: int
    compute_instance_id: int
    slices: int
    memory_total_bytes: int
    timeline: Timeline | None = None


@dataclass(frozen=True, slots=True)
class ScenarioGpu:
    """One physical GPU of the node, and its MIG slices if MIG is enabled."""

    uuid: str
    index: int
    model: str
    memory_total_bytes: int
    minor_number: int
    timeline: Timeline | None = None
    replicas: int = 0
    sharing: Literal["exclusive", "time_slicing", "mps", "mig"] = "exclusive"
    mig_slices: tuple[MigSlice, ...] = ()
    parent_slices: int = DEFAULT_PARENT_SLICES
    idle_power_watts: float = DEFAULT_IDLE_POWER_WATTS
    max_power_watts: float = DEFAULT_MAX_POWER_WATTS

    @property
    def mig_enabled(self) -> bool:
        return bool(self.mig_slices)

    def devices(self) -> tuple[GpuDevice, ...]:
        """The parent GPU followed by its MIG slices, as NVML would list them."""
        parent = GpuDevice(
            uuid=self.uuid,
            index=str(self.index),
            model=self.model,
            memory_total_bytes=self.memory_total_bytes,
            minor_number=self.minor_number,
        )
        slices = tuple(
            GpuDevice(
                uuid=mig.uuid,
                index=f"{self.index}/mig{mig.gpu_instance_id}",
                model=self.model,
                memory_total_bytes=mig.memory_total_bytes,
                minor_number=self.minor_number,
                parent_uuid=self.uuid,
                mig_profile=mig.profile,
                gpu_instance_id=mig.gpu_instance_id,
                compute_instance_id=mig.compute_instance_id,
                mig_slices=mig.slices,
                parent_slices=self.parent_slices,
            )
            for mig in self.mig_slices
        )
        return (parent, *slices)


@dataclass(frozen=True, slots=True)
class ScenarioProcess:
    """A host pid of a container, busy on one device (a GPU uuid or a MIG uuid)."""

    pid: int
    device_uuid: str
    utilization: Timeline


@dataclass(frozen=True, slots=True)
class ScenarioContainer:
    """A container: the devices it holds, its GPU processes, and its CPU/memory requests and usage.

    `requests` are `NODE_RESOURCES` amounts (cpu cores, memory and storage
    bytes); `usage` is a timeline of `cpu_cores` and `memory_bytes`, None when
    the scenario does not say (the kubelet's reading is then unknown).
    """

    name: str
    device_ids: tuple[str, ...]
    processes: tuple[ScenarioProcess, ...] = ()
    resource: str = ""
    requests: Mapping[str, float] = field(default_factory=dict)
    usage: Timeline | None = None


@dataclass(frozen=True, slots=True)
class ScenarioPod:
    """A pod running from `start` to `end` (None: forever), optionally recurring.

    With `repeat_every` the pod recurs: occurrence k runs from
    `start + k * repeat_every` to `end + k * repeat_every` and is named
    `<name>-<k>` with uid `<uid>-<k>`, as a CronJob or a restarted Job would be.
    """

    namespace: str
    name: str
    uid: str
    start: float
    end: float | None
    containers: tuple[ScenarioContainer, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    owner_kind: str = ""
    owner_name: str = ""
    repeat_every: float | None = None

    def occurrence_at(self, t: float) -> int | None:
        """Which occurrence runs at `t` (0 for a pod that does not recur), or None."""
        if t < self.start:
            return None
        occurrence = 0
        if self.repeat_every is not None:
            occurrence = int((t - self.start) // self.repeat_every)
        began = self.start + occurrence * (self.repeat_every or 0.0)
        if self.end is not None and t >= self.end + (began - self.start):
            return None
        return occurrence

    def identity(self, occurrence: int) -> tuple[str, str]:
        """(pod name, pod uid) of one occurrence."""
        if self.repeat_every is None:
            return self.name, self.uid
        return f"{self.name}-{occurrence}", f"{self.uid}-{occurrence}"


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected fault from `start` to `end` (scenario seconds).

    `nvml_error` makes one device's samples fail; `init_error` makes the
    backend's start() fail with SourceUnavailable (gpu is empty then).
    """

    kind: FaultKind
    start: float
    end: float
    gpu_uuid: str = ""
    message: str = "simulated NVML error"

    def active_at(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class ContainerDeviceIds:
    """What the kubelet's pod-resources API would list for one container and one resource."""

    container: ContainerRef
    pod_uid: str
    resource: str
    device_ids: tuple[str, ...]
