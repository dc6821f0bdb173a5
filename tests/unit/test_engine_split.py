"""The cost engine's split: conservation and the meaning of each part."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.engine.split import DeviceTick, Holder, split_device_cost
from gpucost.model import ContainerRef

A = ContainerRef("ml", "train-0", "main")
B = ContainerRef("ml", "serve-0", "server")
C = ContainerRef("web", "serve-1", "server")


def _total(cost: object) -> float:
    from gpucost.engine.split import DeviceCost

    assert isinstance(cost, DeviceCost)
    return math.fsum([cost.unallocated_usd, *(h.active_usd + h.idle_usd for h in cost.holders)])


def test_idle_gpu_cost_goes_to_unallocated_when_no_pod_holds_it() -> None:
    cost = split_device_cost(DeviceTick("GPU-1", price_per_hour_usd=3.6, seconds=10, utilization=0.0))
    assert cost.cost_usd == pytest.approx(0.01)
    assert cost.unallocated_usd == pytest.approx(0.01)
    assert cost.holders == ()


def test_exclusive_holder_pays_active_for_busy_time_and_idle_for_the_rest() -> None:
    cost = split_device_cost(DeviceTick("GPU-1", 36.0, 100, 0.25, [Holder(A, 1.0)]))
    (holder,) = cost.holders
    assert holder.active_usd == pytest.approx(0.25)
    assert holder.idle_usd == pytest.approx(0.75)
    assert holder.gpu_seconds == pytest.approx(100)
    assert cost.unallocated_usd == 0.0


def test_replicas_not_held_stay_unallocated() -> None:
    holders = [Holder(A, 0.25), Holder(B, 0.25), Holder(C, 0.25)]
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, 0.0, holders))
    assert cost.unallocated_usd == pytest.approx(0.25)
    assert [h.idle_usd for h in cost.holders] == pytest.approx([0.25, 0.25, 0.25])


def test_time_sliced_pod_that_kept_the_gpu_busy_alone_pays_the_active_part() -> None:
    holders = [Holder(A, 0.5, busy=0.9), Holder(B, 0.5, busy=0.0)]
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, 0.9, holders))
    by = {h.container: h for h in cost.holders}
    assert by[A].active_usd == pytest.approx(0.9)
    assert by[B].active_usd == pytest.approx(0.0)
    assert by[A].idle_usd == pytest.approx(0.05)
    assert by[B].idle_usd == pytest.approx(0.05)


def test_without_per_process_data_active_cost_splits_by_share() -> None:
    # Three of four quarters held, 60 % busy.  Before issue #20 active was capped at
    # the held share and idle was what the holders held beyond it (0.15); now idle is
    # the held part of the idle capacity, 0.4 x 0.75, and its unheld part is unallocated.
    holders = [Holder(A, 0.5), Holder(B, 0.25)]
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, 0.6, holders))
    by = {h.container: h for h in cost.holders}
    assert by[A].active_usd == pytest.approx(0.4)
    assert by[B].active_usd == pytest.approx(0.2)
    assert by[A].idle_usd == pytest.approx(0.2)
    assert by[B].idle_usd == pytest.approx(0.1)
    assert cost.unallocated_usd == pytest.approx(0.1)


def test_half_held_gpu_90_percent_busy_charges_all_busy_time_to_the_holders_that_caused_it() -> None:
    """Issue #20: a $4.00/h GPU time-sliced into 4 replicas, 2 held, 90 % busy for an hour.

    The old cap (active <= held share) booked $1.60 of busy time as unallocated.
    """
    holders = [Holder(A, 0.25, busy=0.7), Holder(B, 0.25, busy=0.2)]
    cost = split_device_cost(DeviceTick("GPU-1", 4.0, 3600, 0.9, holders))
    by = {h.container: h for h in cost.holders}
    assert by[A].active_usd == pytest.approx(2.80)
    assert by[B].active_usd == pytest.approx(0.80)
    assert by[A].idle_usd == pytest.approx(0.10)
    assert by[B].idle_usd == pytest.approx(0.10)
    assert cost.unallocated_usd == pytest.approx(0.20)  # the two unheld replicas' 10 % idle


def test_half_held_gpu_without_per_process_data_splits_all_busy_time_by_share() -> None:
    holders = [Holder(A, 0.25), Holder(B, 0.25)]
    cost = split_device_cost(DeviceTick("GPU-1", 4.0, 3600, 0.9, holders))
    assert [h.active_usd for h in cost.holders] == pytest.approx([1.80, 1.80])
    assert [h.idle_usd for h in cost.holders] == pytest.approx([0.10, 0.10])
    assert cost.unallocated_usd == pytest.approx(0.20)


def test_busy_time_measured_only_outside_the_holders_splits_by_share() -> None:
    holders = [Holder(A, 0.5, busy=0.0), Holder(B, 0.25, busy=0.0)]
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, 0.3, holders))
    by = {h.container: h for h in cost.holders}
    assert by[A].active_usd == pytest.approx(0.2)
    assert by[B].active_usd == pytest.approx(0.1)


def test_measured_busy_is_a_weight_not_an_amount() -> None:
    # Per-process counters summing past the device's own (0.6 + 0.6 > 0.8) still
    # split exactly the device's busy time, 0.8, half each.
    holders = [Holder(A, 0.25, busy=0.6), Holder(B, 0.25, busy=0.6)]
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, 0.8, holders))
    assert [h.active_usd for h in cost.holders] == pytest.approx([0.4, 0.4])


def test_unknown_utilization_counts_allocated_time_as_active() -> None:
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, None, [Holder(A, 1.0)]))
    assert cost.holders[0].active_usd == pytest.approx(1.0)
    assert cost.holders[0].idle_usd == 0.0


def test_unknown_utilization_on_a_half_held_gpu_leaves_the_unheld_half_unallocated() -> None:
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, None, [Holder(A, 0.25), Holder(B, 0.25)]))
    assert [h.active_usd for h in cost.holders] == pytest.approx([0.25, 0.25])
    assert [h.idle_usd for h in cost.holders] == [0.0, 0.0]
    assert cost.unallocated_usd == pytest.approx(0.5)


def test_oversubscribed_device_is_fully_held_and_never_more() -> None:
    holders = [Holder(A, 1.0), Holder(B, 1.0)]
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, 1.0, holders))
    assert cost.unallocated_usd == 0.0
    assert sum(h.total_usd for h in cost.holders) == pytest.approx(1.0)
    assert sum(h.gpu_seconds for h in cost.holders) == pytest.approx(1.0)


def test_a_container_holding_two_replicas_is_one_holder_with_double_share() -> None:
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, 0.0, [Holder(A, 0.25), Holder(A, 0.25)]))
    (holder,) = cost.holders
    assert holder.idle_usd == pytest.approx(0.5)


def test_unpriced_device_counts_time_but_no_money() -> None:
    cost = split_device_cost(DeviceTick("GPU-1", 0.0, 10, 0.5, [Holder(A, 1.0)]))
    assert cost.cost_usd == 0.0
    assert cost.holders[0].gpu_seconds == 10
    assert cost.holders[0].total_usd == 0.0


ratios = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
holder_lists = st.lists(
    st.tuples(
        st.sampled_from([A, B, C, ContainerRef("x", "y", "z")]),
        st.floats(min_value=0.0, max_value=1.5, allow_nan=False),
        st.one_of(st.none(), ratios),
    ),
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(
    price=st.floats(min_value=0.0, max_value=500.0, allow_nan=False),
    seconds=st.floats(min_value=0.0, max_value=7200.0, allow_nan=False),
    utilization=st.one_of(st.none(), st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)),
    holders=holder_lists,
)
def test_conservation_active_plus_idle_plus_unallocated_equals_device_cost(
    price: float,
    seconds: float,
    utilization: float | None,
    holders: list[tuple[ContainerRef, float, float | None]],
) -> None:
    tick = DeviceTick("GPU-1", price, seconds, utilization, [Holder(c, s, b) for c, s, b in holders])
    cost = split_device_cost(tick)
    assert cost.cost_usd == pytest.approx(price * seconds / 3600.0, rel=1e-12, abs=0)
    assert _total(cost) == pytest.approx(cost.cost_usd, rel=1e-9, abs=1e-12)
    for holder in cost.holders:
        assert holder.active_usd >= 0.0
        assert holder.idle_usd >= -1e-15
        assert holder.gpu_seconds <= seconds * (1 + 1e-12)
    assert cost.unallocated_usd >= 0.0
    assert sum(h.gpu_seconds for h in cost.holders) <= seconds * (1 + 1e-9)


def _held_share(holders: list[tuple[ContainerRef, float, float | None]]) -> float:
    return min(math.fsum(max(share, 0.0) for _, share, _ in holders), 1.0)


def _holds_any(holders: list[tuple[ContainerRef, float, float | None]]) -> bool:
    return any(share > 0.0 for _, share, _ in holders)


def _tick(
    price: float, utilization: float | None, holders: list[tuple[ContainerRef, float, float | None]]
) -> DeviceTick:
    return DeviceTick("GPU-1", price, 3600.0, utilization, [Holder(c, s, b) for c, s, b in holders])


prices = st.floats(min_value=0.01, max_value=500.0, allow_nan=False)
known_utilizations = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(price=prices, utilization=known_utilizations, holders=holder_lists)
def test_busy_time_is_never_unallocated_while_anyone_holds_the_gpu(
    price: float, utilization: float, holders: list[tuple[ContainerRef, float, float | None]]
) -> None:
    cost = split_device_cost(_tick(price, utilization, holders))
    if not _holds_any(holders):
        assert cost.unallocated_usd == cost.cost_usd  # no one to charge, busy or not
        return
    assert math.fsum(h.active_usd for h in cost.holders) == pytest.approx(price * utilization, rel=1e-9, abs=1e-12)
    assert cost.unallocated_usd <= price * (1.0 - utilization) * (1 + 1e-12)


@settings(max_examples=300, deadline=None)
@given(price=prices, utilization=known_utilizations, holders=holder_lists)
def test_unheld_replicas_idle_capacity_is_always_unallocated(
    price: float, utilization: float, holders: list[tuple[ContainerRef, float, float | None]]
) -> None:
    cost = split_device_cost(_tick(price, utilization, holders))
    held = _held_share(holders)
    expected_unallocated = price * (1.0 - utilization) * (1.0 - held) if _holds_any(holders) else price
    assert cost.unallocated_usd == pytest.approx(expected_unallocated, rel=1e-9, abs=1e-12)
    if _holds_any(holders):
        idle = math.fsum(h.idle_usd for h in cost.holders)
        assert idle == pytest.approx(price * (1.0 - utilization) * held, rel=1e-9, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(price=prices, utilization=known_utilizations, holders=holder_lists)
def test_idle_goes_by_share_and_active_by_measured_busy_else_share(
    price: float, utilization: float, holders: list[tuple[ContainerRef, float, float | None]]
) -> None:
    cost = split_device_cost(_tick(price, utilization, holders))
    share: dict[ContainerRef, float] = {}
    busy: dict[ContainerRef, float] = {}
    for container, held, measured in holders:
        share[container] = share.get(container, 0.0) + max(held, 0.0)
        busy[container] = busy.get(container, 0.0) + max(measured or 0.0, 0.0)
    holding = {c for c, s in share.items() if s > 0.0}
    total_share = math.fsum(share[c] for c in holding)
    total_busy = math.fsum(busy[c] for c in holding)
    idle_total = math.fsum(h.idle_usd for h in cost.holders)
    active_total = math.fsum(h.active_usd for h in cost.holders)
    assert {h.container for h in cost.holders} == holding
    for holder in cost.holders:
        assert holder.idle_usd == pytest.approx(idle_total * (share[holder.container] / total_share), abs=1e-9)
        weights = busy if total_busy > 0.0 else share
        total = total_busy if total_busy > 0.0 else total_share
        assert holder.active_usd == pytest.approx(active_total * (weights[holder.container] / total), abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(
    price=prices,
    utilization=known_utilizations,
    shares=st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=1, max_size=4),
)
def test_a_fully_held_gpu_splits_exactly_as_an_exclusive_one(
    price: float, utilization: float, shares: list[float]
) -> None:
    containers = [A, B, C, ContainerRef("x", "y", "z")]
    scale = 1.0 / math.fsum(shares)  # the holders together hold the whole GPU
    holders = [Holder(c, s * scale) for c, s in zip(containers, shares, strict=False)]
    cost = split_device_cost(DeviceTick("GPU-1", price, 3600.0, utilization, holders))
    assert math.fsum(h.active_usd for h in cost.holders) == pytest.approx(price * utilization, rel=1e-9, abs=1e-12)
    assert math.fsum(h.idle_usd for h in cost.holders) == pytest.approx(
        price * (1.0 - utilization), rel=1e-9, abs=1e-12
    )
    assert cost.unallocated_usd == pytest.approx(0.0, abs=1e-12 * price)
