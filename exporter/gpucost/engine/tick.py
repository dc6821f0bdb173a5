"""Turn one tick's devices, samples, prices and allocations into per-device splits.

Pure: the sampler gathers the inputs from the sources (process owners included:
it resolves pids to pods at sample time) and hands plain values here.
MIG: each slice is its own priced device (its profile fraction of the parent
GPU's price); the parent keeps only the capacity not carved into slices, which
no one can hold, so the parent and its slices together cost exactly the GPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gpucost.engine.split import DeviceCost, DeviceTick, Holder, split_device_cost
from gpucost.model import DeviceAllocation, GpuDevice, GpuSample, PriceQuote, SharingMode

__all__ = ["TickInputs", "device_ticks", "run_tick", "sharing_mode"]


@dataclass(frozen=True, slots=True)
class TickInputs:
    seconds: float
    devices: Sequence[GpuDevice]
    samples: Mapping[str, GpuSample]
    prices: Mapping[str, PriceQuote]
    allocations: Sequence[DeviceAllocation]
    # Per device uuid: its busy fraction per pod UID from per-process accounting.  A device absent
    # here has no per-process measurement and its busy time is split by share.
    busy_by_pod_uid: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def _carved_fractions(devices: Sequence[GpuDevice]) -> dict[str, float]:
    carved: dict[str, float] = {}
    for device in devices:
        if device.is_mig:
            carved[device.parent_uuid] = carved.get(device.parent_uuid, 0.0) + device.price_fraction
    return carved


def _measured_busy(
    allocations: Sequence[DeviceAllocation], busy_by_pod_uid: Mapping[str, float] | None
) -> dict[int, float] | None:
    """Busy fraction per allocation index from per-process accounting, or None.

    A pod holding the device twice (two containers) is measured once, on its first allocation.
    """
    if busy_by_pod_uid is None:
        return None
    first_by_pod: dict[str, int] = {}
    for index, allocation in enumerate(allocations):
        if allocation.pod_uid:
            first_by_pod.setdefault(allocation.pod_uid, index)
    if not first_by_pod:
        return None
    busy = dict.fromkeys(range(len(allocations)), 0.0)
    for pod_uid, fraction in busy_by_pod_uid.items():
        if pod_uid in first_by_pod:
            busy[first_by_pod[pod_uid]] += fraction
    return busy


def device_ticks(inputs: TickInputs) -> list[DeviceTick]:
    by_device: dict[str, list[DeviceAllocation]] = {}
    for allocation in inputs.allocations:
        by_device.setdefault(allocation.uuid, []).append(allocation)
    carved = _carved_fractions(inputs.devices)
    parent_price = {d.uuid: inputs.prices[d.uuid].price_per_hour_usd for d in inputs.devices
                    if d.uuid in inputs.prices and not d.is_mig}
    ticks: list[DeviceTick] = []
    for device in inputs.devices:
        sample = inputs.samples.get(device.uuid)
        quote = inputs.prices.get(device.uuid)
        price = quote.price_per_hour_usd if quote is not None else 0.0
        utilization = sample.utilization if sample is not None else None
        if device.uuid in carved:
            # A MIG parent: its slices carry their own cost; what remains is uncarved capacity.
            uncarved = max(0.0, 1.0 - carved[device.uuid])
            ticks.append(DeviceTick(device.uuid, price * uncarved, inputs.seconds, utilization, ()))
            continue
        if device.is_mig and device.parent_uuid in parent_price and quote is None:
            price = parent_price[device.parent_uuid] * device.price_fraction
        allocations = by_device.get(device.uuid, [])
        busy = _measured_busy(allocations, inputs.busy_by_pod_uid.get(device.uuid))
        holders = [
            Holder(a.container, a.share, None if busy is None else busy[i]) for i, a in enumerate(allocations)
        ]
        ticks.append(DeviceTick(device.uuid, price, inputs.seconds, utilization, holders))
    return ticks


def run_tick(inputs: TickInputs) -> list[DeviceCost]:
    return [split_device_cost(tick) for tick in device_ticks(inputs)]


def sharing_mode(device: GpuDevice, allocations: Sequence[DeviceAllocation], is_mig_parent: bool) -> SharingMode:
    """How a device's cost is split, when the allocation source did not say."""
    if is_mig_parent or device.is_mig:
        return "mig"
    if not allocations:
        return "none"
    if any(a.share < 1.0 for a in allocations) or len(allocations) > 1:
        return "time_slicing"
    return "exclusive"
