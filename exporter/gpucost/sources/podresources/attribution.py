"""Turn the kubelet's device assignments into `DeviceAllocation`s with shares.

Pure: assignments, allocatable ids and NVML devices in, allocations out.

- An exclusive GPU or a MIG slice is held with share 1.0.
- A replica (`GPU-<uuid>::N`, GKE `nvidia0/vgpuN`, or any id of
  `nvidia.com/gpu.shared`) holds 1/R of its device, where R is the number of
  replicas of that device the kubelet advertises as allocatable, else the
  configured `replicas_per_gpu`, else the number of replicas seen held.  Three
  pods holding three of four replicas get 1/4 each; 1/4 stays unallocated.
- Shares on one device never add up to more than 1: an id held by several
  containers (an init container's device reused by the app container) is
  split between them, and R is never below the number of replicas held.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gpucost.model import ContainerRef, DeviceAllocation, GpuDevice, SharingMode

from .client import ContainerDeviceAssignment
from .device_ids import MappedDevice, map_device_id

__all__ = [
    "DEFAULT_RESOURCE_NAMES",
    "SHARED_GPU_RESOURCE",
    "AttributionResult",
    "attribute",
    "is_gpu_resource",
]

SHARED_GPU_RESOURCE = "nvidia.com/gpu.shared"
# A trailing `*` matches any suffix: the device plugin names MIG resources
# after the profile (`nvidia.com/mig-1g.10gb`, `nvidia.com/mig-3g.40gb`, ...).
DEFAULT_RESOURCE_NAMES: tuple[str, ...] = ("nvidia.com/gpu", SHARED_GPU_RESOURCE, "nvidia.com/mig-*")

# When one physical GPU carries holders of several kinds, the most specific wins.
_MODE_PRIORITY: tuple[SharingMode, ...] = ("mig", "mps", "time_slicing", "exclusive")

# A unit is one allocatable thing: a device and, for a replica, which replica.
# A shared id without a replica index (`nvidia.com/gpu.shared` from a plugin
# that doesn't number them) is keyed by the id itself.
_Unit = tuple[str, int | str | None]


@dataclass(frozen=True, slots=True)
class AttributionResult:
    """Allocations, the sharing mode of each device, and unmapped id counts.

    `sharing_modes` has every listed device: a MIG-carved GPU and its slices
    are `mig`; another GPU is `exclusive`, `time_slicing` or `mps` by how its
    holders share it, or `none` when nothing holds it.

    `unmapped` counts distinct unmappable device ids per resource name (for
    `gpucost_exporter_unmapped_devices{resource}`); `unmapped_ids` lists them
    as (resource, device id) so a caller can log each once.
    """

    allocations: tuple[DeviceAllocation, ...]
    sharing_modes: Mapping[str, SharingMode]
    unmapped: Mapping[str, int]
    unmapped_ids: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class _Holder:
    container: ContainerRef
    pod_uid: str
    resource: str


def is_gpu_resource(resource: str, resource_names: Collection[str]) -> bool:
    """Whether `resource` is one of `resource_names` (a trailing `*` matches any suffix)."""
    return any(
        resource.startswith(name[:-1]) if name.endswith("*") else resource == name for name in resource_names
    )


def attribute(
    assignments: Iterable[ContainerDeviceAssignment],
    allocatable: Mapping[str, Sequence[str]],
    devices: Sequence[GpuDevice],
    *,
    resource_names: Collection[str] = DEFAULT_RESOURCE_NAMES,
    mps_resources: Collection[str] = (),
    pod_uids: Mapping[tuple[str, str], str] | None = None,
    replicas_per_gpu: int | None = None,
    replica_mode: SharingMode = "time_slicing",
) -> AttributionResult:
    """Allocations with shares for every GPU device id the kubelet assigned.

    `mps_resources` names the resources whose replicas are MPS clients; other
    replicas are reported as `replica_mode` (time_slicing unless the node is
    configured for MPS), because the two cannot be told apart from the ids.
    """
    uids = pod_uids or {}
    unmapped_ids: set[tuple[str, str]] = set()
    holders: dict[_Unit, set[_Holder]] = defaultdict(set)
    unit_modes: dict[_Unit, SharingMode] = {}
    mig_uuids = {device.uuid for device in devices if device.is_mig}
    physical_of: dict[str, str] = {}

    for assignment in assignments:
        if not is_gpu_resource(assignment.resource, resource_names):
            continue
        holder = _Holder(
            ContainerRef(assignment.namespace, assignment.pod, assignment.container),
            uids.get((assignment.namespace, assignment.pod), ""),
            assignment.resource,
        )
        for device_id in assignment.device_ids:
            mapped = map_device_id(device_id, devices)
            if mapped is None:
                unmapped_ids.add((assignment.resource, device_id))
                continue
            unit = _unit(mapped, device_id, assignment.resource)
            holders[unit].add(holder)
            unit_modes.setdefault(
                unit, _unit_mode(unit, assignment.resource, mig_uuids, mps_resources, replica_mode)
            )
            physical_of[mapped.uuid] = mapped.physical_uuid

    advertised = _advertised_replicas(allocatable, devices, resource_names, unmapped_ids)
    held_replicas: Counter[str] = Counter(uuid for uuid, replica in holders if replica is not None)

    allocations: list[DeviceAllocation] = []
    for unit in sorted(holders, key=_sort_key):
        uuid, replica = unit
        unit_share = 1.0
        if replica is not None:
            replicas = advertised.get(uuid) or replicas_per_gpu or held_replicas[uuid]
            unit_share = 1.0 / max(replicas, held_replicas[uuid])
        unit_holders = sorted(holders[unit], key=lambda h: (h.container, h.resource))
        allocations.extend(
            DeviceAllocation(
                uuid=uuid,
                container=holder.container,
                share=unit_share / len(unit_holders),
                pod_uid=holder.pod_uid,
                resource=holder.resource,
            )
            for holder in unit_holders
        )

    return AttributionResult(
        allocations=tuple(_capped_per_device(allocations)),
        sharing_modes=_sharing_modes(unit_modes, physical_of, devices),
        unmapped=dict(Counter(resource for resource, _ in unmapped_ids)),
        unmapped_ids=tuple(sorted(unmapped_ids)),
    )


def _unit(mapped: MappedDevice, device_id: str, resource: str) -> _Unit:
    if mapped.replica is not None:
        return (mapped.uuid, mapped.replica)
    if resource == SHARED_GPU_RESOURCE:
        return (mapped.uuid, device_id)
    return (mapped.uuid, None)


def _sort_key(unit: _Unit) -> tuple[str, str]:
    uuid, replica = unit
    return (uuid, "" if replica is None else f"{replica!s:>12}")


def _advertised_replicas(
    allocatable: Mapping[str, Sequence[str]],
    devices: Sequence[GpuDevice],
    resource_names: Collection[str],
    unmapped_ids: set[tuple[str, str]],
) -> dict[str, int]:
    """Device uuid -> how many replicas of it the kubelet can hand out."""
    replicas: dict[str, set[_Unit]] = defaultdict(set)
    for resource, device_ids in allocatable.items():
        if not is_gpu_resource(resource, resource_names):
            continue
        for device_id in device_ids:
            mapped = map_device_id(device_id, devices)
            if mapped is None:
                unmapped_ids.add((resource, device_id))
                continue
            unit = _unit(mapped, device_id, resource)
            if unit[1] is not None:
                replicas[mapped.uuid].add(unit)
    return {uuid: len(units) for uuid, units in replicas.items()}


def _capped_per_device(allocations: list[DeviceAllocation]) -> list[DeviceAllocation]:
    # A device held both whole and as replicas (a misconfigured plugin) would
    # otherwise be counted more than once; scale its holders down to sum to 1.
    totals: dict[str, float] = defaultdict(float)
    for allocation in allocations:
        totals[allocation.uuid] += allocation.share
    return [
        allocation
        if totals[allocation.uuid] <= 1.0 + 1e-9
        else DeviceAllocation(
            uuid=allocation.uuid,
            container=allocation.container,
            share=allocation.share / totals[allocation.uuid],
            pod_uid=allocation.pod_uid,
            resource=allocation.resource,
        )
        for allocation in allocations
    ]


def _unit_mode(
    unit: _Unit,
    resource: str,
    mig_uuids: Collection[str],
    mps_resources: Collection[str],
    replica_mode: SharingMode,
) -> SharingMode:
    uuid, replica = unit
    if uuid in mig_uuids:
        return "mig"
    if replica is not None:
        return "mps" if resource in mps_resources else replica_mode
    return "exclusive"


def _sharing_modes(
    unit_modes: Mapping[_Unit, SharingMode], physical_of: Mapping[str, str], devices: Sequence[GpuDevice]
) -> dict[str, SharingMode]:
    # A GPU carved into MIG slices is split by its layout whether or not a
    # slice is held, so it and its slices are `mig`; other GPUs report how
    # their holders share them, or `none`.
    mig_parents = {device.parent_uuid for device in devices if device.is_mig}
    seen: dict[str, set[SharingMode]] = {device.uuid: set() for device in devices}
    for (uuid, _), mode in unit_modes.items():
        seen.setdefault(physical_of[uuid], set()).add(mode)
    modes: dict[str, SharingMode] = {}
    for device in devices:
        if device.is_mig or device.uuid in mig_parents:
            modes[device.uuid] = "mig"
    for physical, held_modes in seen.items():
        if physical not in modes:
            modes[physical] = next((mode for mode in _MODE_PRIORITY if mode in held_modes), "none")
    return dict(sorted(modes.items()))
