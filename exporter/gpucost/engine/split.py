"""Split one device's cost for one tick into active, idle and unallocated parts.

This is the heart of gpucost and it is pure: plain values in, plain values out.

For a device with price P $/h over a tick of T seconds the cost is C = P*T/3600.
Containers hold shares s_i of the device (1.0 exclusive, 1/R for one of R
replicas); S = sum(s_i), capped at 1 (an over-subscribed device is treated as
fully held, shares scaled down proportionally).

- unallocated = C * (1 - S): time no container held.
- active total = C * min(u, S), u the device's busy fraction.  It goes to the
  holders by their measured per-process busy time when NVML reports it, else by
  share.  A time-sliced pod that kept the GPU busy alone pays for that.
- idle total = C * S - active total, split by share: holding a GPU you do not
  use is a cost of holding it.

When utilization is unknown nothing can prove the device idle, so the whole
allocated cost counts as active.  The parts always add up to C (conservation);
`tests/unit/test_engine_split.py` proves it with hypothesis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gpucost.model import ContainerRef

__all__ = ["DeviceCost", "DeviceTick", "Holder", "HolderCost", "split_device_cost"]

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Holder:
    """A container holding `share` of the device; `busy` is its measured busy fraction of
    the device (per-process accounting), or None when not measured."""

    container: ContainerRef
    share: float
    busy: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceTick:
    uuid: str
    price_per_hour_usd: float
    seconds: float
    utilization: float | None
    holders: Sequence[Holder] = ()


@dataclass(frozen=True, slots=True)
class HolderCost:
    container: ContainerRef
    active_usd: float
    idle_usd: float
    gpu_seconds: float

    @property
    def total_usd(self) -> float:
        return self.active_usd + self.idle_usd


@dataclass(frozen=True, slots=True)
class DeviceCost:
    uuid: str
    cost_usd: float
    unallocated_usd: float
    holders: tuple[HolderCost, ...]

    @property
    def allocated_usd(self) -> float:
        return sum(h.total_usd for h in self.holders)


def _clamp_ratio(value: float) -> float:
    if math.isnan(value):  # NaN from a misbehaving driver counts as unknown-but-busy upstream; here: 0
        return 0.0
    return min(max(value, 0.0), 1.0)


def _merge_holders(holders: Sequence[Holder]) -> list[Holder]:
    """One entry per container: a container holding two replicas holds twice the share."""
    merged: dict[ContainerRef, Holder] = {}
    for holder in holders:
        share = max(holder.share, 0.0)
        previous = merged.get(holder.container)
        if previous is None:
            merged[holder.container] = Holder(holder.container, share, holder.busy)
            continue
        unmeasured = previous.busy is None and holder.busy is None
        busy = None if unmeasured else (previous.busy or 0.0) + (holder.busy or 0.0)
        merged[holder.container] = Holder(holder.container, previous.share + share, busy)
    return sorted(merged.values(), key=lambda h: h.container)


def split_device_cost(tick: DeviceTick) -> DeviceCost:
    """Split the tick's cost of one device; the parts add up to the device's cost."""
    seconds = max(tick.seconds, 0.0)
    cost = max(tick.price_per_hour_usd, 0.0) * seconds / SECONDS_PER_HOUR
    holders = [h for h in _merge_holders(tick.holders) if h.share > 0.0]
    if not holders:
        return DeviceCost(tick.uuid, cost, cost, ())

    total_share = sum(h.share for h in holders)
    # Over-subscription (e.g. more replicas held than the plugin advertised) is
    # scaled so that the holders together hold the whole device, never more.
    scale = 1.0 / total_share if total_share > 1.0 else 1.0
    shares = [h.share * scale for h in holders]
    allocated = min(total_share, 1.0)

    utilization = tick.utilization
    busy_fraction = allocated if utilization is None else min(_clamp_ratio(utilization), allocated)
    active_total = cost * busy_fraction
    idle_total = cost * allocated - active_total

    measured = [max(h.busy, 0.0) if h.busy is not None else None for h in holders]
    measured_sum = sum(b for b in measured if b is not None)
    use_measured = any(b is not None for b in measured) and measured_sum > 0.0
    active_weights = (
        [(b or 0.0) / measured_sum for b in measured] if use_measured else [s / allocated for s in shares]
    )

    results = tuple(
        HolderCost(
            container=holder.container,
            active_usd=active_total * weight,
            idle_usd=idle_total * (share / allocated),
            gpu_seconds=seconds * share,
        )
        for holder, share, weight in zip(holders, shares, active_weights, strict=True)
    )
    # The unallocated part takes what the holders did not, so the parts sum to
    # the device's cost to the last bit of floating point we can control.
    unallocated = cost * (1.0 - allocated)
    return DeviceCost(tick.uuid, cost, unallocated, results)
