"""Deferred booking: a settling provider's ticks wait in the journal until its view of them is final,
and a pod's own start and finish from the API server beat the poll's edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucost.attribution import StaticMetadataProvider
from gpucost.errors import SourceUnavailable
from gpucost.model import DeviceAllocation, NodeInfo, PodMeta
from gpucost.state import StateFile
from gpucost_testing.sampler_fakes import (
    JOB,
    PER_SECOND,
    FakeGpus,
    PolledAllocations,
    assert_conserved,
    health_by_collector,
    make_sampler,
    run_ticks,
)


def test_a_polled_providers_ticks_are_booked_once_its_view_has_settled() -> None:
    gpus = FakeGpus()
    allocations = PolledAllocations(gpus)
    sampler = make_sampler(gpus, allocations)  # type: ignore[arg-type]
    sampler.tick()
    run_ticks(sampler, gpus, 2)
    assert sampler.snapshot().ledger.gpus["GPU-0"].cost_usd == 0.0, "nothing settled yet"
    run_ticks(sampler, gpus, 8)
    # Ten 1 s ticks elapsed, the last three wait for the settle time.
    assert sampler.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(7 * PER_SECOND)
    assert_conserved(sampler)


def test_stop_books_the_journal_before_the_final_checkpoint_and_a_restart_counts_no_tick_twice(
    tmp_path: Path,
) -> None:
    gpus = FakeGpus()
    state = StateFile(tmp_path / "state.json")
    first = make_sampler(gpus, PolledAllocations(gpus), state)  # type: ignore[arg-type]
    first.tick()
    run_ticks(first, gpus, 10)
    first.stop()
    assert first.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(10 * PER_SECOND)
    gpus.clock += 5  # down for 5 s
    second = make_sampler(gpus, PolledAllocations(gpus), state)  # type: ignore[arg-type]
    second.tick()
    second.stop()
    assert second.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(15 * PER_SECOND)
    container = next(iter(second.snapshot().ledger.containers.values()))
    assert container.gpu_seconds == pytest.approx(15.0)


def test_a_crash_with_ticks_still_journaled_loses_none_of_them(tmp_path: Path) -> None:
    gpus = FakeGpus()
    state = StateFile(tmp_path / "state.json")
    first = make_sampler(gpus, PolledAllocations(gpus), state)  # type: ignore[arg-type]
    first.tick()
    run_ticks(first, gpus, 40)  # a checkpoint at 30 s, with the last 3 s still journaled
    saved_ledger, saved_until = StateFile(tmp_path / "state.json").load(("team",), 600.0) or (None, 0.0)
    assert saved_ledger is not None
    assert saved_ledger.gpus["GPU-0"].cost_usd == pytest.approx((saved_until - 1000.0) * PER_SECOND)
    # Killed without stop(): the restart charges everything after the checkpoint's last booked tick.
    gpus.clock += 2
    second = make_sampler(gpus, PolledAllocations(gpus), state)  # type: ignore[arg-type]
    second.tick()
    second.stop()
    assert second.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(42 * PER_SECOND)


class LifetimeMetadata(StaticMetadataProvider):
    def __init__(self, started_at: float | None, finished_at: float | None = None) -> None:
        pod = PodMeta("ml", "job", uid="uid-job", labels={"team": "research"},
                      started_at=started_at, finished_at=finished_at)
        super().__init__([pod], NodeInfo())
        self.fail = False

    def refresh(self, now: float) -> None:
        if self.fail:
            raise SourceUnavailable("API server unreachable")


def test_a_pod_listed_late_is_charged_from_its_start_with_its_labels() -> None:
    gpus = FakeGpus()
    allocations = PolledAllocations(gpus)
    allocations.listed = ()
    # Ran [1003.5, 1006.5), first listed at 1007: within the settle time of its start.
    metadata = LifetimeMetadata(started_at=1003.5, finished_at=1006.5)
    sampler = make_sampler(gpus, allocations, metadata=metadata)  # type: ignore[arg-type]
    sampler.tick()
    run_ticks(sampler, gpus, 6)
    allocations.listed = (DeviceAllocation("GPU-0", JOB, pod_uid="uid-job"),)
    run_ticks(sampler, gpus, 3)
    allocations.listed = ()
    run_ticks(sampler, gpus, 10)
    (key, counters), = sampler.snapshot().ledger.containers.items()
    assert key.workload == ("research",)
    assert counters.gpu_seconds == pytest.approx(3.0)
    assert sampler.snapshot().allocation_edges == {"apiserver": 2, "kubelet_poll": 0}
    assert_conserved(sampler)


def test_with_the_api_server_down_the_poll_edges_apply_and_are_counted_as_such() -> None:
    gpus = FakeGpus()
    allocations = PolledAllocations(gpus)
    allocations.listed = ()
    metadata = LifetimeMetadata(started_at=1002.0, finished_at=1006.5)
    metadata.fail = True
    sampler = make_sampler(gpus, allocations, metadata=metadata)  # type: ignore[arg-type]
    sampler.tick()
    run_ticks(sampler, gpus, 6)
    allocations.listed = (DeviceAllocation("GPU-0", JOB, pod_uid="uid-job"),)
    run_ticks(sampler, gpus, 3)
    allocations.listed = ()
    run_ticks(sampler, gpus, 10)
    (_key, counters), = sampler.snapshot().ledger.containers.items()
    assert counters.gpu_seconds == pytest.approx(3.0), "the ticks ending at 1007, 1008 and 1009"
    assert sampler.snapshot().allocation_edges == {"apiserver": 0, "kubelet_poll": 2}
    assert health_by_collector(sampler)["metadata"] is False
