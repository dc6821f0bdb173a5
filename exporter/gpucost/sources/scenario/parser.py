"""Parse and validate a whole scenario document into a `Scenario`: node, GPUs, pods and faults.

Every problem is a `ConfigError` naming the file, the key path and the value; `load_scenario` is the only
I/O.  The generic field reads live in `field_reader.py`, the `gpus` section in `gpu_parser.py`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from gpucost.sources.scenario.gpu_parser import DeviceCatalog
from gpucost.sources.scenario.model import Scenario
from gpucost.sources.scenario.parts import (
    FAULT_KINDS,
    REPLICA_SEPARATOR,
    Fault,
    ScenarioContainer,
    ScenarioGpu,
    ScenarioPod,
    ScenarioProcess,
    Timeline,
    TimelinePoint,
)
from gpucost.sources.scenario.resource_parser import ResourceReader
from gpucost.yamlfields import load_yaml_file

__all__ = ["MAX_POD_OCCURRENCES", "load_scenario", "parse_scenario"]

# Checking double booking walks every occurrence of a recurring pod up to the
# scenario's end; this bounds that walk (a day of a pod recurring every second).
MAX_POD_OCCURRENCES = 100_000


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file."""
    return parse_scenario(load_yaml_file(Path(path)), str(path))


def parse_scenario(document: object, file: str = "<scenario>") -> Scenario:
    """Validate an already-loaded YAML document; pure."""
    return _ScenarioParser(file).parse(document)


class _ScenarioParser(ResourceReader):
    """Reads the document's node, pods and faults over the field, GPU and node-resource readers."""

    # -- the document -----------------------------------------------------------

    def parse(self, document: object) -> Scenario:
        top = self.mapping(
            document, "", ("node", "speed", "start_time", "duration", "gpus", "pods", "faults")
        )
        node = self.mapping(top.get("node"), "node", ("name", "labels", "allocatable"))
        node_name = self.text(node.get("name"), "node.name")
        node_labels = self.string_map(node.get("labels"), "node.labels")
        node_allocatable = self.amounts(node.get("allocatable"), "node.allocatable")
        speed = self.positive(top["speed"], "speed") if "speed" in top else 1.0
        start_time = self.number(top["start_time"], "start_time") if "start_time" in top else None

        # An empty list is a node without GPUs: only its CPU, memory and storage are priced.
        gpu_items = self.sequence(top.get("gpus"), "gpus")
        gpus = tuple(self.gpu(item, f"gpus[{position}]") for position, item in enumerate(gpu_items))
        self.check_unique_devices(gpus)

        catalog = DeviceCatalog(gpus)
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
            node_allocatable=node_allocatable,
            gpus=gpus,
            pods=pods,
            faults=faults,
            speed=speed,
            start_time=start_time,
            duration=duration,
        )

    def pod(self, value: object, key_path: str, catalog: DeviceCatalog) -> ScenarioPod:
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

    def container(self, value: object, key_path: str, catalog: DeviceCatalog) -> ScenarioContainer:
        item = self.mapping(
            value, key_path, ("name", "devices", "resource", "processes", "requests", "usage", "usage_repeat_every")
        )
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
            name=name,
            device_ids=tuple(device_ids),
            processes=tuple(processes),
            resource=resource,
            requests=self.amounts(item.get("requests"), f"{key_path}.requests"),
            usage=self.usage(item, key_path),
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

    def fault(self, value: object, key_path: str, catalog: DeviceCatalog) -> Fault:
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
