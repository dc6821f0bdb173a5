"""Parse and validate a simulated-node scenario file into frozen values.

A scenario describes one Kubernetes GPU node over scenario time (seconds from
the scenario's start): its labels, its GPUs (full, time-sliced or MIG-carved),
what each GPU reports over time, which pods hold which devices when, and
injected NVML faults.  The simulated GPU backend, the static allocation source
and tests read it through the pure query methods of `Scenario`.

This module does no I/O besides `load_scenario` reading the one file; every
problem is a `ConfigError` naming the file, the key path and the value.  The
format is documented in docs/scenarios.md.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gpucost.errors import ConfigError
from gpucost.model import ContainerRef, DeviceAllocation, GpuDevice, NodeInfo, PodMeta
from gpucost.yamlfields import load_yaml_file, reject_unknown_keys, require_mapping

__all__ = [
    "ContainerDeviceIds",
    "Fault",
    "FaultKind",
    "MigSlice",
    "Scenario",
    "ScenarioContainer",
    "ScenarioGpu",
    "ScenarioPod",
    "ScenarioProcess",
    "Timeline",
    "TimelineField",
    "TimelinePoint",
    "load_scenario",
    "parse_scenario",
    "replica_device_id",
]

GPU_RESOURCE = "nvidia.com/gpu"
REPLICA_SEPARATOR = "::"
DEFAULT_PARENT_SLICES = 7
DEFAULT_IDLE_POWER_WATTS = 60.0
DEFAULT_MAX_POWER_WATTS = 400.0

FaultKind = Literal["nvml_error", "init_error"]
FAULT_KINDS: tuple[FaultKind, ...] = ("nvml_error", "init_error")
TimelineField = Literal["utilization", "memory_used_bytes", "power_watts"]

# ASCII digits only: `\d` also matches digits such as "٣" and runs of any length.
_MIG_PROFILE = re.compile(r"([0-9]{1,2})g\.([0-9]{1,5})gb(\+me)?")
_MEMORY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?\s*")
# A PiB per device is far beyond any GPU and keeps byte counts exact as floats.
MAX_MEMORY_BYTES = 2**50
# Ids, indexes, pids and replica counts fit a kubelet/NVML 32-bit field.
MAX_SCENARIO_INTEGER = 2**31 - 1
# Checking double booking walks every occurrence of a recurring pod up to the
# scenario's end; this bounds that walk (a day of a pod recurring every second).
MAX_POD_OCCURRENCES = 100_000
_MEMORY_UNITS: Mapping[str, int] = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}


def replica_device_id(gpu_uuid: str, replica: int) -> str:
    """The kubelet device id the NVIDIA device plugin gives one time-slicing replica."""
    return f"{gpu_uuid}{REPLICA_SEPARATOR}{replica}"


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """Values from `at` on; `linear` ramps each value towards the next point's."""

    at: float
    utilization: float | None = None
    memory_used_bytes: int | None = None
    power_watts: float | None = None
    linear: bool = False


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
    name: str
    device_ids: tuple[str, ...]
    processes: tuple[ScenarioProcess, ...] = ()
    resource: str = ""


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


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario: the node, its GPUs, pods and faults, with pure queries by scenario time."""

    source: str
    node_name: str
    node_labels: Mapping[str, str]
    gpus: tuple[ScenarioGpu, ...]
    pods: tuple[ScenarioPod, ...]
    faults: tuple[Fault, ...] = ()
    speed: float = 1.0
    start_time: float | None = None
    duration: float = 0.0

    def node_info(self) -> NodeInfo:
        return NodeInfo(name=self.node_name, labels=dict(self.node_labels))

    def devices(self) -> tuple[GpuDevice, ...]:
        """Every device NVML would list: full GPUs, MIG-enabled parents, MIG slices."""
        return tuple(device for gpu in self.gpus for device in gpu.devices())

    def gpu(self, uuid: str) -> ScenarioGpu:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise KeyError(uuid)

    def running_pods_at(self, t: float) -> list[tuple[ScenarioPod, int]]:
        """(pod, occurrence) for every pod running at scenario time `t`."""
        running = []
        for pod in self.pods:
            occurrence = pod.occurrence_at(t)
            if occurrence is not None:
                running.append((pod, occurrence))
        return running

    def pods_at(self, t: float) -> list[PodMeta]:
        metas = []
        for pod, occurrence in self.running_pods_at(t):
            name, uid = pod.identity(occurrence)
            metas.append(
                PodMeta(
                    namespace=pod.namespace,
                    pod=name,
                    uid=uid,
                    labels=dict(pod.labels),
                    annotations=dict(pod.annotations),
                    owner_kind=pod.owner_kind,
                    owner_name=pod.owner_name,
                )
            )
        return metas

    def device_ids_at(self, t: float) -> list[ContainerDeviceIds]:
        """Per container and resource, the raw kubelet device ids held at `t`."""
        listed = []
        for pod, occurrence in self.running_pods_at(t):
            name, uid = pod.identity(occurrence)
            for container in pod.containers:
                by_resource: dict[str, list[str]] = {}
                for device_id in container.device_ids:
                    resource = container.resource or self.resource_of(device_id)
                    by_resource.setdefault(resource, []).append(device_id)
                for resource, device_ids in by_resource.items():
                    listed.append(
                        ContainerDeviceIds(
                            container=ContainerRef(pod.namespace, name, container.name),
                            pod_uid=uid,
                            resource=resource,
                            device_ids=tuple(device_ids),
                        )
                    )
        return listed

    def allocations_at(self, t: float) -> list[DeviceAllocation]:
        """Who holds which device at `t`: share 1.0 exclusive or MIG, 1/replicas per replica id.

        Replica ids of one GPU held by one container are merged into one
        allocation whose share is their sum.
        """
        allocations: list[DeviceAllocation] = []
        for held in self.device_ids_at(t):
            shares: dict[str, float] = {}
            for device_id in held.device_ids:
                uuid, share = self.share_of(device_id)
                shares[uuid] = shares.get(uuid, 0.0) + share
            allocations.extend(
                DeviceAllocation(
                    uuid=uuid,
                    container=held.container,
                    share=share,
                    pod_uid=held.pod_uid,
                    resource=held.resource,
                )
                for uuid, share in shares.items()
            )
        return allocations

    def share_of(self, device_id: str) -> tuple[str, float]:
        """(device uuid, share of it) that one kubelet device id stands for."""
        uuid, separator, _replica = device_id.partition(REPLICA_SEPARATOR)
        if not separator:
            return uuid, 1.0
        return uuid, 1.0 / self.gpu(uuid).replicas

    def resource_of(self, device_id: str) -> str:
        """The extended resource name the NVIDIA device plugin (mixed MIG strategy) uses."""
        for gpu in self.gpus:
            for mig in gpu.mig_slices:
                if mig.uuid == device_id:
                    return f"nvidia.com/mig-{mig.profile}"
        return GPU_RESOURCE

    def processes_at(self, t: float) -> list[tuple[str, ScenarioProcess]]:
        """(pod uid, process) for every process of a pod running at `t`."""
        found: list[tuple[str, ScenarioProcess]] = []
        for pod, occurrence in self.running_pods_at(t):
            _name, uid = pod.identity(occurrence)
            for container in pod.containers:
                found.extend((uid, process) for process in container.processes)
        return found

    def pid_to_pod_uid(self, pid: int, at: float | None = None) -> str | None:
        """The uid of the pod owning host `pid`.

        Without `at` this is the declaring pod's uid (for a recurring pod:
        occurrence 0's); with `at`, the uid of the occurrence running then,
        or None if the pod is not running at `at`.
        """
        for pod in self.pods:
            if not any(process.pid == pid for container in pod.containers for process in container.processes):
                continue
            if at is None:
                return pod.identity(0)[1]
            occurrence = pod.occurrence_at(at)
            return None if occurrence is None else pod.identity(occurrence)[1]
        return None

    def faults_at(self, t: float, kind: FaultKind) -> list[Fault]:
        return [fault for fault in self.faults if fault.kind == kind and fault.active_at(t)]


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file."""
    return parse_scenario(load_yaml_file(Path(path)), str(path))


def parse_scenario(document: object, file: str = "<scenario>") -> Scenario:
    """Validate an already-loaded YAML document; pure."""
    return _ScenarioParser(file).parse(document)


class _ScenarioParser:
    """Walks the document keeping the file name so each error can name file, key path and value."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key_path: str, value: object, problem: str) -> ConfigError:
        return ConfigError(self.file, key_path, value, problem)

    # -- generic field readers ------------------------------------------------

    def mapping(self, value: object, key_path: str, allowed: Sequence[str]) -> Mapping[str, object]:
        mapping = require_mapping(value, self.file, key_path)
        reject_unknown_keys(mapping, allowed, self.file, key_path)
        return mapping

    def sequence(self, value: object, key_path: str) -> Sequence[object]:
        if not isinstance(value, list):
            raise self.fail(key_path, value, "must be a list")
        return value

    def text(self, value: object, key_path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key_path, value, "must be a non-empty string")
        return value

    def number(self, value: object, key_path: str, minimum: float = 0.0, maximum: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key_path, value, "must be a number")
        try:
            number = float(value)
        except OverflowError:  # 10**400 has no float
            raise self.fail(key_path, value, "must be a finite number") from None
        if not math.isfinite(number):
            raise self.fail(key_path, value, "must be a finite number")
        if not minimum <= number <= maximum:
            raise self.fail(key_path, value, f"must be between {minimum:g} and {maximum:g}")
        return number

    def positive(self, value: object, key_path: str) -> float:
        number = self.number(value, key_path)
        if number <= 0:
            raise self.fail(key_path, value, "must be greater than 0")
        return number

    def integer(self, value: object, key_path: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key_path, value, "must be an integer")
        if value < minimum:
            raise self.fail(key_path, value, f"must be at least {minimum}")
        if value > MAX_SCENARIO_INTEGER:
            raise self.fail(key_path, value, f"must be at most {MAX_SCENARIO_INTEGER}")
        return value

    def memory(self, value: object, key_path: str) -> int:
        """Bytes, given as an integer or a string with a unit (`80GiB`, `81920MiB`, `40GB`)."""
        size: float | None = None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            size = value
        elif isinstance(value, str):
            match = _MEMORY.fullmatch(value)
            if match:
                size = float(match.group(1)) * _MEMORY_UNITS[match.group(2) or "B"]
        if size is None:
            raise self.fail(key_path, value, "must be bytes: an integer or a size like 80GiB, 81920MiB, 40GB")
        if not size <= MAX_MEMORY_BYTES:  # also false for inf: "9" * 400 + "GiB" parses as inf
            raise self.fail(key_path, value, "must be at most 1 PiB")
        return round(size)

    def string_map(self, value: object, key_path: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key_path, value, "must be a mapping of strings")
        result = {}
        for key, item in value.items():
            if not isinstance(key, str) or isinstance(item, bool) or not isinstance(item, str | int | float):
                raise self.fail(f"{key_path}.{key}", item, "must be a string")
            result[key] = str(item)
        return result

    # -- the document -----------------------------------------------------------

    def parse(self, document: object) -> Scenario:
        top = self.mapping(
            document, "", ("node", "speed", "start_time", "duration", "gpus", "pods", "faults")
        )
        node = self.mapping(top.get("node"), "node", ("name", "labels"))
        node_name = self.text(node.get("name"), "node.name")
        node_labels = self.string_map(node.get("labels"), "node.labels")
        speed = self.positive(top["speed"], "speed") if "speed" in top else 1.0
        start_time = self.number(top["start_time"], "start_time") if "start_time" in top else None

        gpu_items = self.sequence(top.get("gpus"), "gpus")
        if not gpu_items:
            raise self.fail("gpus", gpu_items, "must list at least one GPU")
        gpus = tuple(self.gpu(item, f"gpus[{position}]") for position, item in enumerate(gpu_items))
        self.check_unique_devices(gpus)

        catalog = _DeviceCatalog(gpus)
        pod_items = self.sequence(top.get("pods", []), "pods")
        pods = tuple(self.pod(item, f"pods[{position}]", catalog) for position, item in enumerate(pod_items))
        fault_items = self.sequence(top.get("faults", []), "faults")
        faults = tuple(
            self.fault(item, f"faults[{position}]", catalog) for position, item in enumerate(fault_items)
        )
        self.check_unique_pods(pods)
        self.check_unique_pids(pods)
        derived_duration = _natural_duration(gpus, pods, faults)
        duration = self.positive(top["duration"], "duration") if "duration" in top else derived_duration
        self.check_no_double_booking(pods, max(duration, derived_duration))
        return Scenario(
            source=self.file,
            node_name=node_name,
            node_labels=node_labels,
            gpus=gpus,
            pods=pods,
            faults=faults,
            speed=speed,
            start_time=start_time,
            duration=duration,
        )

    def gpu(self, value: object, key_path: str) -> ScenarioGpu:
        item = self.mapping(
            value,
            key_path,
            (
                "uuid",
                "index",
                "model",
                "memory",
                "minor_number",
                "timeline",
                "repeat_every",
                "sharing",
                "replicas",
                "mig",
                "idle_power_watts",
                "max_power_watts",
            ),
        )
        uuid = self.text(item.get("uuid"), f"{key_path}.uuid")
        if not uuid.startswith("GPU-"):
            raise self.fail(f"{key_path}.uuid", uuid, "a GPU uuid starts with GPU- as NVML reports it")
        index = self.integer(item.get("index"), f"{key_path}.index")
        minor = self.integer(item.get("minor_number", index), f"{key_path}.minor_number")
        model = self.text(item.get("model"), f"{key_path}.model")
        memory_total = self.memory(item.get("memory"), f"{key_path}.memory")
        idle_power = self.number(
            item.get("idle_power_watts", DEFAULT_IDLE_POWER_WATTS), f"{key_path}.idle_power_watts"
        )
        max_power = self.number(
            item.get("max_power_watts", max(idle_power, DEFAULT_MAX_POWER_WATTS)),
            f"{key_path}.max_power_watts",
        )
        if max_power < idle_power:
            raise self.fail(f"{key_path}.max_power_watts", max_power, "must not be below idle_power_watts")
        timeline = self.optional_timeline(item, key_path, memory_total)

        sharing = item.get("sharing", "exclusive")
        if sharing not in ("exclusive", "time_slicing", "mps"):
            raise self.fail(f"{key_path}.sharing", sharing, "must be exclusive, time_slicing or mps")
        replicas = 0
        if sharing != "exclusive":
            replicas = self.integer(item.get("replicas"), f"{key_path}.replicas", minimum=2)
        elif "replicas" in item:
            raise self.fail(
                f"{key_path}.replicas", item["replicas"], "replicas need sharing: time_slicing or mps"
            )

        mig_slices: tuple[MigSlice, ...] = ()
        parent_slices = DEFAULT_PARENT_SLICES
        if "mig" in item:
            if sharing != "exclusive":
                raise self.fail(f"{key_path}.sharing", sharing, "a MIG-enabled GPU cannot also be shared")
            mig = self.mapping(item["mig"], f"{key_path}.mig", ("parent_slices", "slices"))
            parent_slices = self.integer(
                mig.get("parent_slices", DEFAULT_PARENT_SLICES), f"{key_path}.mig.parent_slices", 1
            )
            slice_items = self.sequence(mig.get("slices"), f"{key_path}.mig.slices")
            if not slice_items:
                raise self.fail(f"{key_path}.mig.slices", slice_items, "must list at least one MIG slice")
            mig_slices = tuple(
                self.mig_slice(slice_item, f"{key_path}.mig.slices[{position}]")
                for position, slice_item in enumerate(slice_items)
            )
            carved = sum(mig.slices for mig in mig_slices)
            if carved > parent_slices:
                raise self.fail(
                    f"{key_path}.mig.slices",
                    carved,
                    f"slices add up to more than parent_slices ({parent_slices})",
                )
            seen_instances: set[int] = set()
            for position, mig_slice in enumerate(mig_slices):
                if mig_slice.gpu_instance_id in seen_instances:
                    raise self.fail(
                        f"{key_path}.mig.slices[{position}].gpu_instance_id",
                        mig_slice.gpu_instance_id,
                        "GPU-instance ids must be unique on one GPU",
                    )
                seen_instances.add(mig_slice.gpu_instance_id)
        return ScenarioGpu(
            uuid=uuid,
            index=index,
            model=model,
            memory_total_bytes=memory_total,
            minor_number=minor,
            timeline=timeline,
            replicas=replicas,
            sharing="mig" if mig_slices else sharing,
            mig_slices=mig_slices,
            parent_slices=parent_slices,
            idle_power_watts=idle_power,
            max_power_watts=max_power,
        )

    def mig_slice(self, value: object, key_path: str) -> MigSlice:
        item = self.mapping(
            value,
            key_path,
            (
                "uuid",
                "profile",
                "gpu_instance_id",
                "compute_instance_id",
                "memory",
                "timeline",
                "repeat_every",
            ),
        )
        uuid = self.text(item.get("uuid"), f"{key_path}.uuid")
        if not uuid.startswith("MIG-"):
            raise self.fail(f"{key_path}.uuid", uuid, "a MIG device uuid starts with MIG- as NVML reports it")
        profile = self.text(item.get("profile"), f"{key_path}.profile")
        match = _MIG_PROFILE.fullmatch(profile)
        if match is None:
            raise self.fail(f"{key_path}.profile", profile, "must be a MIG profile like 3g.40gb or 1g.10gb")
        slices = int(match.group(1))
        memory_total = (
            self.memory(item["memory"], f"{key_path}.memory")
            if "memory" in item
            else int(match.group(2)) * 2**30
        )
        return MigSlice(
            uuid=uuid,
            profile=profile,
            gpu_instance_id=self.integer(item.get("gpu_instance_id"), f"{key_path}.gpu_instance_id"),
            compute_instance_id=self.integer(
                item.get("compute_instance_id", 0), f"{key_path}.compute_instance_id"
            ),
            slices=slices,
            memory_total_bytes=memory_total,
            timeline=self.optional_timeline(item, key_path, memory_total),
        )

    def optional_timeline(
        self, item: Mapping[str, object], key_path: str, memory_total: int
    ) -> Timeline | None:
        if "timeline" not in item:
            if "repeat_every" in item:
                raise self.fail(
                    f"{key_path}.repeat_every", item["repeat_every"], "repeat_every needs a timeline"
                )
            return None
        repeat_every = (
            self.positive(item["repeat_every"], f"{key_path}.repeat_every")
            if "repeat_every" in item
            else None
        )
        return self.timeline(
            item["timeline"],
            f"{key_path}.timeline",
            repeat_every=repeat_every,
            repeat_key=f"{key_path}.repeat_every",
            memory_total=memory_total,
        )

    def timeline(
        self,
        value: object,
        key_path: str,
        *,
        repeat_every: float | None,
        repeat_key: str,
        memory_total: int | None,
        allowed: Sequence[str] = ("at", "utilization", "memory_used", "power_watts", "ramp"),
    ) -> Timeline:
        items = self.sequence(value, key_path)
        if not items:
            raise self.fail(key_path, items, "must list at least one point")
        points: list[TimelinePoint] = []
        for position, raw in enumerate(items):
            where = f"{key_path}[{position}]"
            point = self.mapping(raw, where, allowed)
            at = self.number(point.get("at"), f"{where}.at")
            if points and at <= points[-1].at:
                raise self.fail(f"{where}.at", at, "points must be in increasing time order")
            ramp = point.get("ramp", "step")
            if ramp not in ("step", "linear"):
                raise self.fail(f"{where}.ramp", ramp, "must be step or linear")
            memory_used = None
            if "memory_used" in point:
                memory_used = self.memory(point["memory_used"], f"{where}.memory_used")
                if memory_total is not None and memory_used > memory_total:
                    raise self.fail(
                        f"{where}.memory_used", point["memory_used"], "exceeds the device's memory"
                    )
            points.append(
                TimelinePoint(
                    at=at,
                    utilization=(
                        self.number(point["utilization"], f"{where}.utilization", 0.0, 1.0)
                        if "utilization" in point
                        else None
                    ),
                    memory_used_bytes=memory_used,
                    power_watts=self.number(point["power_watts"], f"{where}.power_watts")
                    if "power_watts" in point
                    else None,
                    linear=ramp == "linear",
                )
            )
        for name, key in (
            ("utilization", "utilization"),
            ("memory_used_bytes", "memory_used"),
            ("power_watts", "power_watts"),
        ):
            present = [getattr(point, name) is not None for point in points]
            if any(present) and not all(present):
                position = present.index(False)
                raise self.fail(
                    f"{key_path}[{position}].{key}", None, f"{key} must be given in every point or in none"
                )
        if repeat_every is not None and repeat_every <= points[-1].at:
            raise self.fail(repeat_key, repeat_every, "must be longer than the last point's `at`")
        return Timeline(points=tuple(points), repeat_every=repeat_every)

    def pod(self, value: object, key_path: str, catalog: _DeviceCatalog) -> ScenarioPod:
        item = self.mapping(
            value,
            key_path,
            (
                "namespace",
                "name",
                "uid",
                "labels",
                "annotations",
                "owner",
                "start",
                "end",
                "repeat_every",
                "containers",
            ),
        )
        namespace = self.text(item.get("namespace"), f"{key_path}.namespace")
        name = self.text(item.get("name"), f"{key_path}.name")
        uid = self.text(item.get("uid"), f"{key_path}.uid")
        owner_kind = owner_name = ""
        if "owner" in item:
            owner = self.mapping(item["owner"], f"{key_path}.owner", ("kind", "name"))
            owner_kind = self.text(owner.get("kind"), f"{key_path}.owner.kind")
            owner_name = self.text(owner.get("name"), f"{key_path}.owner.name")
        start = self.number(item.get("start", 0), f"{key_path}.start")
        end = None
        if item.get("end") is not None:
            end = self.number(item["end"], f"{key_path}.end")
            if end <= start:
                raise self.fail(f"{key_path}.end", end, "must be after start")
        repeat_every = None
        if "repeat_every" in item:
            repeat_every = self.positive(item["repeat_every"], f"{key_path}.repeat_every")
            if end is None or repeat_every < end - start:
                raise self.fail(
                    f"{key_path}.repeat_every",
                    repeat_every,
                    "a recurring pod needs an end and must not overlap itself",
                )
        container_items = self.sequence(item.get("containers"), f"{key_path}.containers")
        if not container_items:
            raise self.fail(f"{key_path}.containers", container_items, "must list at least one container")
        containers = tuple(
            self.container(container, f"{key_path}.containers[{position}]", catalog)
            for position, container in enumerate(container_items)
        )
        names = [container.name for container in containers]
        if len(set(names)) != len(names):
            raise self.fail(f"{key_path}.containers", names, "container names must be unique in a pod")
        return ScenarioPod(
            namespace=namespace,
            name=name,
            uid=uid,
            start=start,
            end=end,
            containers=containers,
            labels=self.string_map(item.get("labels"), f"{key_path}.labels"),
            annotations=self.string_map(item.get("annotations"), f"{key_path}.annotations"),
            owner_kind=owner_kind,
            owner_name=owner_name,
            repeat_every=repeat_every,
        )

    def container(self, value: object, key_path: str, catalog: _DeviceCatalog) -> ScenarioContainer:
        item = self.mapping(value, key_path, ("name", "devices", "resource", "processes"))
        name = self.text(item.get("name"), f"{key_path}.name")
        device_items = self.sequence(item.get("devices", []), f"{key_path}.devices")
        device_ids = []
        for position, raw in enumerate(device_items):
            where = f"{key_path}.devices[{position}]"
            device_id = self.text(raw, where)
            problem = catalog.problem_with(device_id)
            if problem:
                raise self.fail(where, device_id, problem)
            if device_id in device_ids:
                raise self.fail(where, device_id, "listed twice")
            device_ids.append(device_id)
        held_uuids = {device_id.partition(REPLICA_SEPARATOR)[0] for device_id in device_ids}
        process_items = self.sequence(item.get("processes", []), f"{key_path}.processes")
        processes = []
        for position, raw in enumerate(process_items):
            where = f"{key_path}.processes[{position}]"
            process = self.mapping(raw, where, ("pid", "device", "utilization", "repeat_every"))
            device = self.text(process.get("device"), f"{where}.device")
            if device not in held_uuids:
                raise self.fail(
                    f"{where}.device", device, "a process can only use a device its container holds"
                )
            processes.append(
                ScenarioProcess(
                    pid=self.integer(process.get("pid"), f"{where}.pid", minimum=1),
                    device_uuid=device,
                    utilization=self.process_utilization(process, where),
                )
            )
        resource = self.text(item["resource"], f"{key_path}.resource") if "resource" in item else ""
        return ScenarioContainer(
            name=name, device_ids=tuple(device_ids), processes=tuple(processes), resource=resource
        )

    def process_utilization(self, process: Mapping[str, object], key_path: str) -> Timeline:
        raw = process.get("utilization")
        repeat_every = (
            self.positive(process["repeat_every"], f"{key_path}.repeat_every")
            if "repeat_every" in process
            else None
        )
        if isinstance(raw, list):
            timeline = self.timeline(
                raw,
                f"{key_path}.utilization",
                repeat_every=repeat_every,
                repeat_key=f"{key_path}.repeat_every",
                memory_total=None,
                allowed=("at", "utilization", "ramp"),
            )
            if not timeline.has("utilization"):
                raise self.fail(
                    f"{key_path}.utilization[0].utilization", None, "each point needs a utilization"
                )
            return timeline
        value = self.number(raw, f"{key_path}.utilization", 0.0, 1.0)
        return Timeline(points=(TimelinePoint(at=0.0, utilization=value),))

    def fault(self, value: object, key_path: str, catalog: _DeviceCatalog) -> Fault:
        item = self.mapping(value, key_path, ("kind", "gpu", "from", "to", "message"))
        kind = item.get("kind", "nvml_error")
        if kind not in FAULT_KINDS:
            raise self.fail(f"{key_path}.kind", kind, f"must be one of {', '.join(FAULT_KINDS)}")
        start = self.number(item.get("from"), f"{key_path}.from")
        end = self.number(item.get("to"), f"{key_path}.to")
        if end <= start:
            raise self.fail(f"{key_path}.to", end, "must be after from")
        gpu = ""
        if kind == "nvml_error":
            gpu = self.text(item.get("gpu"), f"{key_path}.gpu")
            if gpu not in catalog.device_uuids:
                raise self.fail(f"{key_path}.gpu", gpu, "no GPU or MIG device with this uuid")
        message = self.text(item.get("message", "simulated NVML error"), f"{key_path}.message")
        return Fault(kind=kind, start=start, end=end, gpu_uuid=gpu, message=message)

    # -- whole-document checks ------------------------------------------------

    def check_unique_devices(self, gpus: Sequence[ScenarioGpu]) -> None:
        seen_uuids: set[str] = set()
        seen_indexes: set[int] = set()
        seen_minors: set[int] = set()
        for position, gpu in enumerate(gpus):
            for device in gpu.devices():
                if device.uuid in seen_uuids:
                    raise self.fail(f"gpus[{position}].uuid", device.uuid, "device uuids must be unique")
                seen_uuids.add(device.uuid)
            for key, number, seen in (
                ("index", gpu.index, seen_indexes),
                ("minor_number", gpu.minor_number, seen_minors),
            ):
                if number in seen:
                    raise self.fail(f"gpus[{position}].{key}", number, f"GPU {key} values must be unique")
                seen.add(number)

    def check_unique_pods(self, pods: Sequence[ScenarioPod]) -> None:
        seen_uids: set[str] = set()
        seen_names: set[tuple[str, str]] = set()
        for position, pod in enumerate(pods):
            if pod.uid in seen_uids:
                raise self.fail(f"pods[{position}].uid", pod.uid, "pod uids must be unique")
            if (pod.namespace, pod.name) in seen_names:
                raise self.fail(f"pods[{position}].name", pod.name, "pod names must be unique in a namespace")
            seen_uids.add(pod.uid)
            seen_names.add((pod.namespace, pod.name))

    def check_unique_pids(self, pods: Sequence[ScenarioPod]) -> None:
        seen: set[int] = set()
        for pod_position, pod in enumerate(pods):
            for container_position, container in enumerate(pod.containers):
                for process_position, process in enumerate(container.processes):
                    if process.pid in seen:
                        raise self.fail(
                            f"pods[{pod_position}].containers[{container_position}].processes[{process_position}].pid",
                            process.pid,
                            "pids must be unique in a scenario",
                        )
                    seen.add(process.pid)

    def check_no_double_booking(self, pods: Sequence[ScenarioPod], horizon: float) -> None:
        """A device id (a whole GPU, a MIG slice or one replica) is held by one pod at a time."""
        intervals: dict[str, list[tuple[float, float, int]]] = {}
        occurrences = 0.0
        for position, pod in enumerate(pods):
            if pod.repeat_every is not None:
                occurrences += max(horizon - pod.start, 0.0) / pod.repeat_every
                if not occurrences <= MAX_POD_OCCURRENCES:
                    raise self.fail(
                        f"pods[{position}].repeat_every",
                        pod.repeat_every,
                        f"recurring pods would start more than {MAX_POD_OCCURRENCES} times"
                        f" within the scenario's {horizon:g}s",
                    )
            device_ids = {device_id for container in pod.containers for device_id in container.device_ids}
            for begin, finish in _occurrences(pod, horizon):
                for device_id in device_ids:
                    intervals.setdefault(device_id, []).append((begin, finish, position))
        for device_id, held in intervals.items():
            held.sort()
            for (_begin, finish, first), (begin, _finish, second) in itertools.pairwise(held):
                if begin < finish and first != second:
                    raise self.fail(
                        f"pods[{second}].start",
                        begin,
                        f"device {device_id} is already held by pods[{first}] until {finish:g}",
                    )


class _DeviceCatalog:
    """The device ids a container may request, by kind."""

    def __init__(self, gpus: Sequence[ScenarioGpu]) -> None:
        self.device_uuids = {device.uuid for gpu in gpus for device in gpu.devices()}
        self.gpus = {gpu.uuid: gpu for gpu in gpus}
        self.mig_uuids = {mig.uuid for gpu in gpus for mig in gpu.mig_slices}

    def problem_with(self, device_id: str) -> str:
        """Why a container cannot request `device_id` ("" when it can)."""
        uuid, separator, replica = device_id.partition(REPLICA_SEPARATOR)
        if uuid in self.mig_uuids and not separator:
            return ""
        gpu = self.gpus.get(uuid)
        if gpu is None:
            return "no GPU or MIG device with this uuid"
        if gpu.mig_enabled:
            return "MIG is enabled on this GPU: request one of its MIG slices"
        if not separator:
            if gpu.replicas:
                return f"this GPU is shared: request a replica id {uuid}::<0..{gpu.replicas - 1}>"
            return ""
        if not gpu.replicas:
            return "replica ids (::N) need sharing: time_slicing or mps on the GPU"
        # isascii and the length keep int() from refusing digits such as "²" or 5,000 of them.
        if not (replica.isascii() and replica.isdigit() and len(replica) <= 10) or int(replica) >= gpu.replicas:
            return f"replica must be 0..{gpu.replicas - 1}"
        return ""


def _occurrences(pod: ScenarioPod, horizon: float) -> list[tuple[float, float]]:
    if pod.repeat_every is None or pod.end is None:
        return [(pod.start, math.inf if pod.end is None else pod.end)]
    length = pod.end - pod.start
    spans = []
    occurrence = 0
    while pod.start + occurrence * pod.repeat_every < horizon:
        begin = pod.start + occurrence * pod.repeat_every
        spans.append((begin, begin + length))
        occurrence += 1
    return spans


def _natural_duration(
    gpus: Sequence[ScenarioGpu], pods: Sequence[ScenarioPod], faults: Sequence[Fault]
) -> float:
    """The latest time the file mentions: a timeline point, a repeat period, a pod's end or a fault's end."""
    moments: list[float] = [0.0]
    timelines: list[Timeline] = []
    for gpu in gpus:
        timelines.extend(
            timeline for timeline in [gpu.timeline, *(mig.timeline for mig in gpu.mig_slices)] if timeline
        )
    for timeline in timelines:
        moments.append(timeline.repeat_every or timeline.points[-1].at)
    for pod in pods:
        moments.append(pod.end if pod.end is not None else pod.start)
        if pod.repeat_every is not None:
            moments.append(pod.start + pod.repeat_every)
    moments.extend(fault.end for fault in faults)
    return max(moments)
