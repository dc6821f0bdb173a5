"""Allocation edges: a pod holds its device from its first container start to its last container end."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.engine.edges import AllocationEpisode, PodTimes, allocation_key, hold_for_tick
from gpucost.model import ContainerRef, DeviceAllocation

POD = ContainerRef("ml", "short-job", "main")
HELD = DeviceAllocation("GPU-0", POD, pod_uid="uid-1")


def _held_seconds(episodes: list[tuple[AllocationEpisode, PodTimes | None]], begin: int, end: int,
                  view_at: dict[int, tuple[DeviceAllocation, ...]] | None = None) -> float:
    """Device-seconds charged over 1 s ticks [t, t+1) for t in [begin, end)."""
    total = 0.0
    for t in range(begin, end):
        listed = (view_at or {}).get(t + 1, tuple(e.allocation for e, _ in episodes if e.listed_at(t + 1)))
        total += sum(a.share for a in hold_for_tick(t, t + 1, listed, episodes).allocations)
    return total


def test_a_54_second_pod_seen_late_by_a_10_second_poll_is_charged_54_seconds_from_its_times() -> None:
    # Ran [2025, 2079); the kubelet polls at 2035, 2045, ... and lists it from 2035 to 2075, gone at 2085.
    episode = AllocationEpisode(HELD, first_listed=2035.0, first_unlisted=2085.0)
    times = PodTimes(started_at=2025.0, finished_at=2079.0)
    assert _held_seconds([(episode, times)], 2000, 2100) == pytest.approx(54.0)


def test_without_the_pods_times_the_poll_edges_apply_exactly_as_before() -> None:
    episode = AllocationEpisode(HELD, first_listed=2035.0, first_unlisted=2085.0)
    # Ticks ending at 2035 .. 2084 are held whole: 50 s, not the 54 s the pod ran.
    assert _held_seconds([(episode, None)], 2000, 2100) == pytest.approx(50.0)


def test_a_pod_that_started_and_ended_between_two_polls_is_charged_its_whole_life() -> None:
    # Listed only by the poll at 2040, after it had finished at 2037.
    episode = AllocationEpisode(HELD, first_listed=2040.0, first_unlisted=2050.0)
    times = PodTimes(started_at=2031.0, finished_at=2037.0)
    assert _held_seconds([(episode, times)], 2000, 2100) == pytest.approx(6.0)


def test_a_fraction_of_a_tick_is_charged_as_a_fraction_of_the_share() -> None:
    replica = DeviceAllocation("GPU-0", POD, share=0.5, pod_uid="uid-1")
    episode = AllocationEpisode(replica, first_listed=10.0)
    holding = hold_for_tick(9.0, 10.0, (replica,), [(episode, PodTimes(started_at=9.25))])
    assert [a.share for a in holding.allocations] == [pytest.approx(0.375)]
    assert holding.edges == {"apiserver": 1}


def test_the_deletion_deadline_ends_a_pod_whose_containers_never_reported_an_end() -> None:
    episode = AllocationEpisode(HELD, first_listed=100.0, first_unlisted=130.0)
    times = PodTimes(started_at=100.0, deleted_at=110.0)
    assert _held_seconds([(episode, times)], 90, 140) == pytest.approx(10.0)


def test_the_kubelet_releasing_the_device_ends_it_even_if_the_api_server_says_it_still_runs() -> None:
    episode = AllocationEpisode(HELD, first_listed=100.0, first_unlisted=110.0)
    times = PodTimes(started_at=100.0)
    # Ticks ending before 110 are held; the tick ending at 110 saw it gone.
    assert _held_seconds([(episode, times)], 90, 140) == pytest.approx(9.0)


def test_a_relisted_holding_does_not_reach_back_into_its_previous_episode() -> None:
    first = AllocationEpisode(HELD, first_listed=100.0, first_unlisted=120.0)
    second = AllocationEpisode(HELD, first_listed=125.0)
    times = PodTimes(started_at=100.0)
    # One pod, listed again after a gap: never more than the device once per second.
    for t in range(95, 140):
        holding = hold_for_tick(t, t + 1, (), [(first, times), (second, times)])
        assert sum(a.share for a in holding.allocations) <= 1.0 + 1e-12, t


def test_an_allocation_no_episode_explains_is_kept_whole() -> None:
    holding = hold_for_tick(0.0, 1.0, (HELD,), [])
    assert holding.allocations == (HELD,)
    assert holding.edges == {}


def test_edges_are_counted_once_each_in_the_tick_they_fall_in() -> None:
    episode = AllocationEpisode(HELD, first_listed=2035.0, first_unlisted=2085.0)
    with_times: dict[str, int] = {}
    poll_only: dict[str, int] = {}
    for t in range(2000, 2100):
        for counts, times in ((with_times, PodTimes(2025.0, 2079.0)), (poll_only, None)):
            for source, count in hold_for_tick(t, t + 1, (), [(episode, times)]).edges.items():
                counts[source] = counts.get(source, 0) + count
    assert with_times == {"apiserver": 2}
    assert poll_only == {"kubelet_poll": 2}


moments = st.integers(min_value=0, max_value=60).map(float)


@given(
    first_listed=moments,
    listed_for=st.integers(min_value=1, max_value=30),
    started=st.none() | moments,
    finished=st.none() | moments,
    share=st.sampled_from([1.0, 0.5, 0.25]),
)
def test_a_holding_never_exceeds_its_share_and_never_outlives_its_pod_or_listing(
    first_listed: float, listed_for: int, started: float | None, finished: float | None, share: float
) -> None:
    allocation = DeviceAllocation("GPU-0", POD, share=share)
    episode = AllocationEpisode(allocation, first_listed, first_listed + listed_for)
    times = PodTimes(started, finished)
    for t in range(0, 100):
        holding = hold_for_tick(t, t + 1, (), [(episode, times)])
        held = sum(a.share for a in holding.allocations)
        assert 0.0 <= held <= share + 1e-12
        if finished is not None and t >= finished:
            assert held == 0.0
        if t + 1 >= first_listed + listed_for:
            assert held == 0.0
        if started is not None and t + 1 <= started:
            assert held == 0.0
        assert all(allocation_key(a) == allocation_key(allocation) for a in holding.allocations)


def test_a_container_holding_two_replicas_of_a_gpu_keeps_both_shares() -> None:
    replicas = (DeviceAllocation("GPU-0", POD, share=0.25), DeviceAllocation("GPU-0", POD, share=0.25))
    episode = AllocationEpisode(DeviceAllocation("GPU-0", POD, share=0.5), first_listed=0.0)
    for episodes in ([], [(episode, None)]):
        holding = hold_for_tick(0.0, 1.0, replicas, episodes)
        assert sum(a.share for a in holding.allocations) == pytest.approx(0.5)
