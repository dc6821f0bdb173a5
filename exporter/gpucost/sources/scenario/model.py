"""`Scenario`: one simulated node over scenario time, with the pure queries its readers use.

The simulated GPU backend, the static allocation source and tests ask it what runs, who holds which
device and which faults are active at a scenario time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpucost.model import (
    ContainerRef,
    ContainerResources,
    DeviceAllocation,
    GpuDevice,
    NodeInfo,
    NodeResourceView,
    PodMeta,
)
from gpucost.sources.scenario.parts import (
    GPU_RESOURCE,
    REPLICA_SEPARATOR,
    ContainerDeviceIds,
    Fault,
    FaultKind,
    ScenarioGpu,
    ScenarioPod,
    ScenarioProcess,
    TimelineField,
)

__all__ = ["Scenario"]

# The kubelet's usage readings a container's usage timeline stands for: resource -> timeline field.
_USAGE_FIELDS: tuple[tuple[str, TimelineField], ...] = (("cpu", "cpu_cores"), ("memory", "memory_bytes"))


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
    # Whole-node cost: cpu cores, memory and storage bytes; empty when the scenario does not say.
    node_allocatable: Mapping[str, float] = field(default_factory=dict)

    def node_info(self) -> NodeInfo:
        return NodeInfo(name=self.node_name, labels=dict(self.node_labels), allocatable=dict(self.node_allocatable))

    def node_resources_at(self, t: float) -> NodeResourceView:
        """The node's allocatable and every running container's requests and usage at `t`."""
        containers = []
        for pod, occurrence in self.running_pods_at(t):
            name, uid = pod.identity(occurrence)
            for container in pod.containers:
                usage: dict[str, float] = {}
                if container.usage is not None:
                    for resource, field_name in _USAGE_FIELDS:
                        value = container.usage.value_at(field_name, t)
                        if value is not None:
                            usage[resource] = value
                containers.append(ContainerResources(
                    ContainerRef(pod.namespace, name, container.name), uid, dict(container.requests), usage
                ))
        return NodeResourceView(dict(self.node_allocatable), tuple(containers))

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
                    container_requests={c.name: dict(c.requests) for c in pod.containers},
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
