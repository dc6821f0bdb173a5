"""Turn one tick's devices, samples, prices and allocations into per-device splits.

Pure: the sampler gathers the inputs from the sources and hands them here.
MIG: each slice is its own priced device (its profile fraction of the parent
GPU's price); the parent keeps only the capacity not carved into slices, which
no one can hold, so the parent and its slices together cost exactly the GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

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
    pid_to_pod_uid: Callable[[int], str | None] | None = None


def _carved_fractions(devices: Sequence[GpuDevice]) -> dict[str, float]:
    carved: dict[str, float] = {}
    for device in devices:
        if device.is_mig:
            carved[device.parent_uuid] = carved.get(device.parent_uuid, 0.0) + device.price_fraction
    return carved


def _measured_busy(
    allocations: Sequence[DeviceAllocation],
    sample: GpuSample | None,
    pid_to_pod_uid: Callable[[int], str | None] | None,
) -> dict[int, float] | None:
    """Busy fraction per allocation index from per-process accounting, or None."""
    if sample is None or pid_to_pod_uid is None or not sample.process_utilization:
        return None
    first_by_pod: dict[str, int] = {}
    for index, allocation in enumerate(allocations):
        if allocation.pod_uid:
            first_by_pod.setdefault(allocation.pod_uid, index)
    if not first_by_pod:
        return None
    busy = dict.fromkeys(range(len(allocations)), 0.0)
    for pid, utilization in sample.process_utilization.items():
        owner = pid_to_pod_uid(pid)
        if owner is not None and owner in first_by_pod:
            busy[first_by_pod[owner]] += utilization
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
        busy = _measured_busy(allocations, sample, inputs.pid_to_pod_uid)
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
