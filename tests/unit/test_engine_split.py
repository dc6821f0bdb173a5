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
    holders = [Holder(A, 0.5), Holder(B, 0.25)]
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, 0.6, holders))
    by = {h.container: h for h in cost.holders}
    assert by[A].active_usd == pytest.approx(0.4)
    assert by[B].active_usd == pytest.approx(0.2)
    assert by[A].idle_usd == pytest.approx(0.1)
    assert by[B].idle_usd == pytest.approx(0.05)
    assert cost.unallocated_usd == pytest.approx(0.25)


def test_unknown_utilization_counts_allocated_time_as_active() -> None:
    cost = split_device_cost(DeviceTick("GPU-1", 3600.0, 1, None, [Holder(A, 1.0)]))
    assert cost.holders[0].active_usd == pytest.approx(1.0)
    assert cost.holders[0].idle_usd == 0.0


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
