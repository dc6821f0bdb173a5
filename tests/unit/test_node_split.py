"""CPU and memory cost per container: the greater of request and usage, conserved against the node's part."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.engine.node_split import ContainerClaim, ResourceCost, ResourceTick, split_resource_cost
from gpucost.model import ContainerRef

TRAIN = ContainerRef("research", "train-0", "trainer")
SERVE = ContainerRef("search", "ranker-0", "server")
SIDECAR = ContainerRef("search", "ranker-0", "istio-proxy")
GIB = 2.0**30


def total(cost: ResourceCost) -> float:
    return math.fsum([cost.unallocated_usd, *(item.cost_usd for item in cost.containers)])


def by_container(cost: ResourceCost) -> dict[ContainerRef, float]:
    return {item.container: item.cost_usd for item in cost.containers}


def test_a_container_pays_its_request_share_of_allocatable_when_it_uses_less() -> None:
    # 3.6 USD/h of CPU over 96 allocatable cores for an hour; 24 cores requested, 2 used.
    cost = split_resource_cost(ResourceTick("cpu", 3.6, 3600, 96.0, [ContainerClaim(TRAIN, 24.0, 2.0)]))
    assert by_container(cost)[TRAIN] == pytest.approx(3.6 * 24 / 96)
    assert cost.unallocated_usd == pytest.approx(3.6 * 72 / 96)


def test_usage_above_the_request_is_paid_for() -> None:
    cost = split_resource_cost(ResourceTick("cpu", 3.6, 3600, 96.0, [ContainerClaim(SERVE, 1.0, 12.0)]))
    assert by_container(cost)[SERVE] == pytest.approx(3.6 * 12 / 96)


def test_a_container_without_requests_pays_for_its_measured_usage() -> None:
    cost = split_resource_cost(ResourceTick("memory", 1.0, 3600, 64 * GIB, [ContainerClaim(SIDECAR, 0.0, 8 * GIB)]))
    assert by_container(cost)[SIDECAR] == pytest.approx(1.0 / 8)


def test_unknown_usage_counts_as_the_request() -> None:
    cost = split_resource_cost(ResourceTick("cpu", 3.6, 3600, 96.0, [ContainerClaim(TRAIN, 48.0, None)]))
    assert by_container(cost)[TRAIN] == pytest.approx(1.8)


def test_over_committed_node_is_shared_in_proportion_and_nothing_is_unallocated() -> None:
    claims = [ContainerClaim(TRAIN, 60.0, 80.0), ContainerClaim(SERVE, 40.0, 10.0)]
    cost = split_resource_cost(ResourceTick("cpu", 3.6, 3600, 96.0, claims))
    assert by_container(cost) == pytest.approx({TRAIN: 3.6 * 80 / 120, SERVE: 3.6 * 40 / 120})
    assert cost.unallocated_usd == pytest.approx(0.0, abs=1e-12)
    assert cost.allocated_usd == pytest.approx(3.6)


def test_a_node_no_container_claims_is_all_unallocated() -> None:
    cost = split_resource_cost(ResourceTick("memory", 2.0, 1800, 64 * GIB, []))
    assert cost.cost_usd == pytest.approx(1.0)
    assert cost.unallocated_usd == cost.cost_usd
    assert cost.containers == ()


def test_unknown_allocatable_leaves_the_cost_unallocated_instead_of_guessing_shares() -> None:
    cost = split_resource_cost(ResourceTick("cpu", 3.6, 3600, 0.0, [ContainerClaim(TRAIN, 4.0, 4.0)]))
    assert cost.unallocated_usd == pytest.approx(3.6)
    assert by_container(cost) == {TRAIN: 0.0}


def test_a_container_listed_twice_claims_both_amounts() -> None:
    claims = [ContainerClaim(TRAIN, 8.0, None), ContainerClaim(TRAIN, 8.0, None)]
    cost = split_resource_cost(ResourceTick("cpu", 3.2, 3600, 32.0, claims))
    assert by_container(cost) == pytest.approx({TRAIN: 1.6})


def test_nan_and_negative_readings_claim_nothing() -> None:
    claims = [ContainerClaim(TRAIN, float("nan"), -3.0), ContainerClaim(SERVE, 8.0, float("inf"))]
    cost = split_resource_cost(ResourceTick("cpu", 3.2, 3600, 32.0, claims))
    assert by_container(cost) == pytest.approx({SERVE: 0.8})
    assert cost.unallocated_usd == pytest.approx(2.4)


def test_unpriced_resource_still_reports_claims_at_no_cost() -> None:
    cost = split_resource_cost(ResourceTick("cpu", 0.0, 3600, 32.0, [ContainerClaim(TRAIN, 8.0, 1.0)]))
    assert cost.cost_usd == 0.0
    assert [(item.container, item.cost_usd, item.claimed) for item in cost.containers] == [(TRAIN, 0.0, 8.0)]


readings = st.one_of(st.floats(min_value=-1.0, max_value=1e12, allow_nan=False), st.just(math.nan))
amounts = st.one_of(st.none(), readings)
claim_lists = st.lists(
    st.builds(
        ContainerClaim,
        container=st.sampled_from([TRAIN, SERVE, SIDECAR, ContainerRef("x", "y", "z")]),
        request=readings,
        usage=amounts,
    ),
    max_size=10,
)


@settings(max_examples=1000, deadline=None)
@given(
    price=st.floats(min_value=0.0, max_value=500.0, allow_nan=False),
    seconds=st.floats(min_value=0.0, max_value=7200.0, allow_nan=False),
    allocatable=st.floats(min_value=0.0, max_value=1e12, allow_nan=False),
    claims=claim_lists,
)
def test_conservation_containers_plus_unallocated_equals_the_part_price_times_time(
    price: float, seconds: float, allocatable: float, claims: list[ContainerClaim]
) -> None:
    cost = split_resource_cost(ResourceTick("cpu", price, seconds, allocatable, claims))
    assert cost.cost_usd == pytest.approx(price * seconds / 3600.0, rel=1e-12, abs=0)
    assert total(cost) == pytest.approx(cost.cost_usd, rel=1e-9, abs=1e-12)
    assert cost.unallocated_usd >= 0.0
    assert all(item.cost_usd >= 0.0 for item in cost.containers)
    assert cost.allocated_usd <= cost.cost_usd * (1 + 1e-9) + 1e-15


@settings(max_examples=500, deadline=None)
@given(
    allocatable=st.floats(min_value=1.0, max_value=256.0, allow_nan=False),
    requests=st.lists(st.floats(min_value=0.0, max_value=64.0, allow_nan=False), min_size=1, max_size=6),
)
def test_within_allocatable_each_container_pays_exactly_its_claim_share(
    allocatable: float, requests: list[float]
) -> None:
    containers = [ContainerRef("ns", f"pod-{index}", "main") for index in range(len(requests))]
    claims = [ContainerClaim(container, request, None) for container, request in zip(containers, requests, strict=True)]
    claimed = math.fsum(requests)
    cost = split_resource_cost(ResourceTick("cpu", 3.6, 3600, allocatable, claims))
    charged = by_container(cost)
    for container, request in zip(containers, requests, strict=True):
        expected = 3.6 * request / max(claimed, allocatable)
        assert charged.get(container, 0.0) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    unclaimed = max(allocatable - claimed, 0.0) / allocatable
    assert cost.unallocated_usd == pytest.approx(3.6 * unclaimed, rel=1e-9, abs=1e-9)
