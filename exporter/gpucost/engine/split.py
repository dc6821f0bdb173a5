"""Split one device's cost for one tick into active, idle and unallocated parts.

This is the heart of gpucost and it is pure: plain values in, plain values out.

For a device with price P $/h over a tick of T seconds the cost is C = P*T/3600.
Containers hold shares s_i of the device (1.0 exclusive, 1/R for one of R
replicas); S = sum(s_i), capped at 1 (an over-subscribed device is treated as
fully held, shares scaled down proportionally).  u is the device's busy
fraction over the tick.

- No holder: all of C is unallocated, busy or not; there is no one to charge.
- active total = C * u: every measured busy second goes to the holders, who are
  the only ones who can run on the device.  It is split by their measured
  per-process busy time when NVML reports it (normalised to weights, because
  per-process and device counters are sampled apart and rarely agree to the
  last percent), else by share.  A time-sliced pod that kept the GPU busy alone
  pays for all of it, even beyond its share.
- idle total = C * (1 - u) * S, split by share: holding a GPU you do not use is
  a cost of holding it.
- unallocated = C * (1 - u) * (1 - S): the idle capacity of replicas no one
  holds, as for a GPU no one holds.  Busy time is never unallocated.

When utilization is unknown nothing can prove the device idle, so the whole
allocated cost C * S counts as active and C * (1 - S) is unallocated.  On an
exclusive GPU (S = 1) all three readings agree: active C * u, idle C * (1 - u).
The parts always add up to C (conservation); `tests/unit/test_engine_split.py`
proves it and the rules above with hypothesis.
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


@dataclass(frozen=True, slots=True)
class _Parts:
    """The device's cost in three totals, before the holders' parts are split out."""

    active_usd: float
    idle_usd: float
    unallocated_usd: float


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


def _device_parts(cost: float, utilization: float | None, allocated: float) -> _Parts:
    """Active, idle and unallocated totals of a device held `allocated` of the way."""
    if utilization is None:
        # Nothing proves the device idle: what is held counts as in use.
        return _Parts(cost * allocated, 0.0, cost * (1.0 - allocated))
    busy = _clamp_ratio(utilization)
    idle_capacity = cost * (1.0 - busy)
    return _Parts(cost * busy, idle_capacity * allocated, idle_capacity * (1.0 - allocated))


def _active_weights(holders: Sequence[Holder], shares: Sequence[float], allocated: float) -> list[float]:
    """Each holder's part of the active cost: by measured busy time when any was measured, else by share.

    Measured busy is normalised rather than capped at u: it only says who caused
    the device's busy time, and u says how much of it there was.
    """
    measured = [max(h.busy, 0.0) if h.busy is not None else None for h in holders]
    measured_sum = sum(b for b in measured if b is not None)
    if measured_sum > 0.0:
        return [(b or 0.0) / measured_sum for b in measured]
    # Not measured, or busy time from processes outside every holder: share is all we know.
    return [share / allocated for share in shares]


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
    parts = _device_parts(cost, tick.utilization, allocated)
    weights = _active_weights(holders, shares, allocated)
    results = tuple(
        HolderCost(
            container=holder.container,
            active_usd=parts.active_usd * weight,
            idle_usd=parts.idle_usd * (share / allocated),
            gpu_seconds=seconds * share,
        )
        for holder, share, weight in zip(holders, shares, weights, strict=True)
    )
    return DeviceCost(tick.uuid, cost, parts.unallocated_usd, results)
