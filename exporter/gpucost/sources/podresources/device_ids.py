"""Map the device ids a device plugin advertises to the NVML devices they name.

Pure: takes an id string and the NVML device list, returns a `MappedDevice`
or None.  The formats seen in the wild:

- NVIDIA device plugin: `GPU-<uuid>`, `MIG-<uuid>`, and with time-slicing or
  MPS replicas `GPU-<uuid>::N` / `MIG-<uuid>::N`;
- MIG ids of drivers before R470: `MIG-GPU-<uuid>/<gi>/<ci>` (parent UUID,
  GPU-instance id, compute-instance id);
- GKE's device plugin: `nvidia<minor>` for a whole GPU, `nvidia<minor>/gi<id>`
  for a MIG slice and `nvidia<minor>/vgpu<n>` for a time-shared replica; the
  minor number and GPU-instance id are resolved through NVML;
- anything else that equals a listed device's uuid (other vendors' plugins,
  e.g. `amd.com/gpu` with PCI addresses, when the device adapter uses those).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gpucost.model import GpuDevice

__all__ = ["MappedDevice", "map_device_id"]

_UUID_ID = re.compile(r"^(?P<uuid>(?:GPU|MIG)-[0-9A-Fa-f-]+)(?:::(?P<replica>\d+))?$")
_LEGACY_MIG_ID = re.compile(r"^MIG-(?P<parent>GPU-[0-9A-Fa-f-]+)/(?P<gi>\d+)/(?P<ci>\d+)$")
_GKE_ID = re.compile(r"^nvidia(?P<minor>\d+)(?:/(?P<kind>gi|vgpu)(?P<number>\d+))?$")


@dataclass(frozen=True, slots=True)
class MappedDevice:
    """What a device id names.

    `uuid` is the NVML device the container uses (a GPU or a MIG slice),
    `replica` the replica index when the id is one of several shares of that
    device (None for exclusive use) and `physical_uuid` the physical GPU the
    device lives on (the MIG parent, or `uuid` itself).
    """

    uuid: str
    replica: int | None
    physical_uuid: str


def map_device_id(device_id: str, devices: Sequence[GpuDevice]) -> MappedDevice | None:
    """The NVML device `device_id` names, or None when no listed device matches."""
    text = device_id.strip()
    if match := _LEGACY_MIG_ID.match(text):
        return _legacy_mig(match, devices)
    if match := _UUID_ID.match(text):
        device = _by_uuid(match["uuid"], devices)
        replica = match["replica"]
        return _mapped(device, int(replica) if replica is not None else None)
    if match := _GKE_ID.match(text):
        return _gke(match, devices)
    return _mapped(_by_uuid(text, devices), None) if text else None


def _mapped(device: GpuDevice | None, replica: int | None) -> MappedDevice | None:
    if device is None:
        return None
    return MappedDevice(uuid=device.uuid, replica=replica, physical_uuid=device.parent_uuid or device.uuid)


def _by_uuid(uuid: str, devices: Sequence[GpuDevice]) -> GpuDevice | None:
    # NVML prints lower-case hex, but nothing promises a device plugin keeps the case.
    wanted = uuid.lower()
    return next((device for device in devices if device.uuid.lower() == wanted), None)


def _legacy_mig(match: re.Match[str], devices: Sequence[GpuDevice]) -> MappedDevice | None:
    parent = match["parent"].lower()
    gpu_instance, compute_instance = int(match["gi"]), int(match["ci"])
    slices = [
        device
        for device in devices
        if device.parent_uuid.lower() == parent and device.gpu_instance_id == gpu_instance
    ]
    exact = [device for device in slices if device.compute_instance_id == compute_instance]
    # NVML adapters that don't report compute-instance ids leave it None; one
    # slice per GPU instance (the usual layout) is still unambiguous.
    unknown_ci = [device for device in slices if device.compute_instance_id is None]
    chosen = exact or (unknown_ci if len(unknown_ci) == 1 else [])
    return _mapped(chosen[0] if chosen else None, None)


def _gke(match: re.Match[str], devices: Sequence[GpuDevice]) -> MappedDevice | None:
    minor = int(match["minor"])
    kind, number = match["kind"], match["number"]
    parent = next((d for d in devices if not d.is_mig and d.minor_number == minor), None)
    if kind is None:
        return _mapped(parent, None)
    if kind == "vgpu":
        return _mapped(parent, int(number))
    gpu_instance = int(number)
    slice_ = next(
        (
            device
            for device in devices
            if device.is_mig
            and device.gpu_instance_id == gpu_instance
            and (
                (parent is not None and device.parent_uuid == parent.uuid)
                # Some adapters only know the slice's own minor (the parent's).
                or (parent is None and device.minor_number == minor)
            )
        ),
        None,
    )
    return _mapped(slice_, None)
