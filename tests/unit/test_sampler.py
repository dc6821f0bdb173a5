"""The sampling loop degrades one source at a time and never stops counting the rest."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pytest

from gpucost.attribution import AllocationView, MetadataProvider, StaticMetadataProvider
from gpucost.engine.edges import AllocationEpisode
from gpucost.errors import SourceUnavailable
from gpucost.model import ContainerRef, DeviceAllocation, GpuDevice, GpuSample, NodeInfo, PodMeta, PriceQuote
from gpucost.sampler import Sampler, SamplerSettings
from gpucost.sources.podresources.history import ListingHistory
from gpucost.sources.registry import APISERVER, PROCFS, collector_names
from gpucost.state import StateFile

GPUS = [GpuDevice(f"GPU-{i}", str(i), "NVIDIA L4") for i in range(3)]
JOB = ContainerRef("ml", "job", "main")


class FakeGpus:
    name = "fake"

    def __init__(self) -> None:
        self.clock = 1000.0
        self.failing: set[str] = set()
        self.init_failures = 0
        self.present = list(GPUS)

    def start(self) -> None:
        if self.init_failures > 0:
            self.init_failures -= 1
            raise SourceUnavailable("driver not loaded")

    def close(self) -> None:
        return None

    def now(self) -> float:
        return self.clock

    def devices(self) -> Sequence[GpuDevice]:
        return self.present

    def sample(self, device: GpuDevice) -> GpuSample:
        if device.uuid in self.failing:
            return GpuSample(device.uuid, self.clock, None, healthy=False, error="NVML_ERROR_GPU_IS_LOST")
        return GpuSample(device.uuid, self.clock, 0.5, power_watts=100.0)


class FakeAllocations:
    name = "podresources"

    def __init__(self) -> None:
        self.fail = False
        self.view = AllocationView((DeviceAllocation("GPU-0", JOB),))

    def refresh(self, devices: Sequence[GpuDevice], now: float) -> None:
        if self.fail:
            raise SourceUnavailable("kubelet socket missing")

    def current(self) -> AllocationView:
        return self.view


class FlatPrices:
    catalog_as_of = "2025-05-01"
    catalog_source = "test"

    def quote(self, node: NodeInfo, device: GpuDevice, gpus_on_node: int) -> PriceQuote:
        return PriceQuote(3.6, "on_demand")

    def reload_overrides_if_changed(self) -> bool:
        return False


class TeamLabels:
    def values(self, pod: PodMeta | None, namespace_labels: Mapping[str, str]) -> tuple[str, ...]:
        return (pod.labels.get("team", ""),) if pod else ("",)


def _sampler(gpus: FakeGpus, allocations: FakeAllocations, state: StateFile | None = None,
             metadata: MetadataProvider | None = None) -> Sampler:
    metadata = metadata or StaticMetadataProvider([PodMeta("ml", "job", labels={"team": "research"})], NodeInfo())
    return Sampler(SamplerSettings(("team",)), gpus, allocations, metadata, FlatPrices(), TeamLabels(), state,
                   wall_clock=lambda: gpus.clock)


def _health(sampler: Sampler) -> dict[str, bool]:
    return {h.collector: h.success for h in sampler.snapshot().health}


def test_an_nvml_error_on_one_gpu_marks_it_unhealthy_and_the_others_keep_counting() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    sampler = _sampler(gpus, allocations)
    sampler.tick()
    gpus.failing = {"GPU-1"}
    gpus.clock += 10
    sampler.tick()
    snapshot = sampler.snapshot()
    healthy = {v.device.uuid: v.sample.healthy for v in snapshot.devices if v.sample}
    assert healthy == {"GPU-0": True, "GPU-1": False, "GPU-2": True}
    for uuid in ("GPU-0", "GPU-1", "GPU-2"):
        # The GPU still costs money while NVML cannot read it.
        assert snapshot.ledger.gpus[uuid].cost_usd == pytest.approx(0.01)
    assert _health(sampler)["nvml"] is True


def test_kubelet_outage_shows_in_health_and_keeps_the_last_allocation() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    sampler = _sampler(gpus, allocations)
    sampler.tick()
    allocations.fail = True
    gpus.clock += 100
    sampler.tick()
    assert _health(sampler)["podresources"] is False
    containers = sampler.snapshot().ledger.containers
    assert sum(c.active_usd + c.idle_usd for c in containers.values()) == pytest.approx(0.1)
    allocations.fail = False
    gpus.clock += 1
    sampler.tick()
    assert _health(sampler)["podresources"] is True


def test_nvml_init_failure_is_retried_and_readiness_says_why() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    gpus.init_failures = 1
    sampler = _sampler(gpus, allocations)
    sampler.tick()
    assert not sampler.ready
    assert any("driver not loaded" in p for p in sampler.readiness_problems())
    assert _health(sampler)["nvml"] is False
    sampler._next_init = 0.0  # skip the backoff wait in this test
    sampler.tick()
    assert sampler.ready
    assert sampler.readiness_problems() == []


def test_restart_gap_is_charged_from_the_state_file(tmp_path: Path) -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    state = StateFile(tmp_path / "state.json")
    first = _sampler(gpus, allocations, state)
    first.tick()
    gpus.clock += 10
    first.tick()
    first.stop()
    gpus.clock += 5  # the exporter was down for 5 s
    second = _sampler(gpus, allocations, state)
    second.tick()
    assert second.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(3.6 * 15 / 3600)


def test_a_stale_state_file_beyond_max_gap_is_not_charged(tmp_path: Path) -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    state = StateFile(tmp_path / "state.json")
    first = _sampler(gpus, allocations, state)
    first.tick()
    gpus.clock += 10
    first.tick()
    first.stop()
    gpus.clock += 3600
    second = _sampler(gpus, allocations, state)
    second.tick()
    assert second.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(3.6 * 10 / 3600)


def test_workload_labels_come_from_pod_metadata() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    sampler = _sampler(gpus, allocations)
    sampler.tick()
    gpus.clock += 1
    sampler.tick()
    (key,) = sampler.snapshot().ledger.containers
    assert key.workload == ("research",)


def test_retention_counts_wall_time_even_when_the_gpu_clock_runs_faster() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    wall = [5000.0]
    metadata = StaticMetadataProvider([PodMeta("ml", "job", labels={"team": "research"})], NodeInfo())
    sampler = Sampler(SamplerSettings(("team",), retention_seconds=600), gpus, allocations, metadata, FlatPrices(),
                      TeamLabels(), None, wall_clock=lambda: wall[0])
    sampler.tick()
    gpus.clock += 1
    sampler.tick()
    allocations.view = AllocationView()
    gpus.clock += 3600  # an hour of simulated time passes in one wall second
    wall[0] += 1
    sampler.tick()
    assert sampler.snapshot().ledger.containers, "the finished container must stay for 10 wall minutes"
    wall[0] += 601
    gpus.clock += 1
    sampler.tick()
    assert not sampler.snapshot().ledger.containers


def test_a_gpu_removed_from_the_node_stops_being_exported_after_the_retention() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    sampler = _sampler(gpus, allocations)
    sampler.tick()
    gpus.clock += 10
    sampler.tick()
    gpus.present = GPUS[:2]
    gpus.clock += 61  # the device list is refreshed every minute
    sampler.tick()
    assert "GPU-2" in sampler.snapshot().ledger.gpus, "its final values stay for the retention"
    gpus.clock += 600
    sampler.tick()
    assert sorted(sampler.snapshot().ledger.gpus) == ["GPU-0", "GPU-1"]


def test_a_failing_checkpoint_write_warns_once_not_once_per_tick(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    path.mkdir()
    (path / "occupied").write_text("the rename onto a non-empty directory fails every time")
    gpus, allocations = FakeGpus(), FakeAllocations()
    sampler = _sampler(gpus, allocations, StateFile(path))
    with caplog.at_level(logging.WARNING, logger="gpucost.health"):
        for _ in range(3):
            sampler.tick()
            gpus.clock += 31
    warnings = [r.getMessage() for r in caplog.records if r.name == "gpucost.health"]
    assert len(warnings) == 1, warnings
    assert f"cannot write checkpoint {path}" in warnings[0]
    assert _health(sampler)["state"] is False


def test_readiness_reports_a_source_that_never_answered_since_start() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    allocations.fail = True
    sampler = _sampler(gpus, allocations)
    sampler.tick()
    gpus.clock += 1
    sampler.tick()
    assert sampler.readiness_problems() == ["podresources: never answered: SourceUnavailable: kubelet socket missing"]


class UnreachableApiServer(StaticMetadataProvider):
    name = APISERVER.collector

    def refresh(self, now: float) -> None:
        raise SourceUnavailable("connection refused")


def test_readiness_reports_an_api_server_that_never_answered() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    sampler = _sampler(gpus, allocations, metadata=UnreachableApiServer([], NodeInfo()))
    sampler.tick()
    assert sampler.readiness_problems() == ["apiserver: never answered: SourceUnavailable: connection refused"]


def test_once_a_source_answered_a_later_fault_shows_in_health_but_keeps_readiness() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    allocations.fail = True
    sampler = _sampler(gpus, allocations)
    sampler.tick()
    allocations.fail = False
    gpus.clock += 1
    sampler.tick()
    assert sampler.readiness_problems() == []
    allocations.fail = True
    gpus.clock += 1
    sampler.tick()
    assert _health(sampler)["podresources"] is False
    assert sampler.readiness_problems() == [], "one flaky source must not pull the exporter out of the Service"


# --- deferred booking: the journal -------------------------------------------------------


class PolledAllocations:
    """A provider whose view of a moment settles `settle_seconds` later, with a listing history."""

    name = "podresources"
    settle_seconds = 3.0

    def __init__(self, gpus: FakeGpus) -> None:
        self._gpus = gpus
        self.listed: tuple[DeviceAllocation, ...] = (DeviceAllocation("GPU-0", JOB, pod_uid="uid-job"),)
        self._history = ListingHistory()

    def refresh(self, devices: Sequence[GpuDevice], now: float) -> None:
        self._history.observe(self.listed, now)

    def current(self) -> AllocationView:
        return AllocationView(self.listed)

    def episodes(self) -> list[AllocationEpisode]:
        return self._history.episodes()


def _ticks(sampler: Sampler, gpus: FakeGpus, count: int) -> None:
    for _ in range(count):
        gpus.clock += 1
        sampler.tick()


def _conserved(sampler: Sampler) -> None:
    for uuid, gpu in sampler.snapshot().ledger.gpus.items():
        assert gpu.allocated_usd + gpu.unallocated_usd == pytest.approx(gpu.cost_usd, abs=1e-15), uuid


PER_SECOND = 3.6 / 3600


def test_a_polled_providers_ticks_are_booked_once_its_view_has_settled() -> None:
    gpus = FakeGpus()
    allocations = PolledAllocations(gpus)
    sampler = _sampler(gpus, allocations)  # type: ignore[arg-type]
    sampler.tick()
    _ticks(sampler, gpus, 2)
    assert sampler.snapshot().ledger.gpus["GPU-0"].cost_usd == 0.0, "nothing settled yet"
    _ticks(sampler, gpus, 8)
    # Ten 1 s ticks elapsed, the last three wait for the settle time.
    assert sampler.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(7 * PER_SECOND)
    _conserved(sampler)


def test_stop_books_the_journal_before_the_final_checkpoint_and_a_restart_counts_no_tick_twice(
    tmp_path: Path,
) -> None:
    gpus = FakeGpus()
    state = StateFile(tmp_path / "state.json")
    first = _sampler(gpus, PolledAllocations(gpus), state)  # type: ignore[arg-type]
    first.tick()
    _ticks(first, gpus, 10)
    first.stop()
    assert first.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(10 * PER_SECOND)
    gpus.clock += 5  # down for 5 s
    second = _sampler(gpus, PolledAllocations(gpus), state)  # type: ignore[arg-type]
    second.tick()
    second.stop()
    assert second.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(15 * PER_SECOND)
    container = next(iter(second.snapshot().ledger.containers.values()))
    assert container.gpu_seconds == pytest.approx(15.0)


def test_a_crash_with_ticks_still_journaled_loses_none_of_them(tmp_path: Path) -> None:
    gpus = FakeGpus()
    state = StateFile(tmp_path / "state.json")
    first = _sampler(gpus, PolledAllocations(gpus), state)  # type: ignore[arg-type]
    first.tick()
    _ticks(first, gpus, 40)  # a checkpoint at 30 s, with the last 3 s still journaled
    saved_ledger, saved_until = StateFile(tmp_path / "state.json").load(("team",), 600.0) or (None, 0.0)
    assert saved_ledger is not None
    assert saved_ledger.gpus["GPU-0"].cost_usd == pytest.approx((saved_until - 1000.0) * PER_SECOND)
    # Killed without stop(): the restart charges everything after the checkpoint's last booked tick.
    gpus.clock += 2
    second = _sampler(gpus, PolledAllocations(gpus), state)  # type: ignore[arg-type]
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
    sampler = _sampler(gpus, allocations, metadata=metadata)  # type: ignore[arg-type]
    sampler.tick()
    _ticks(sampler, gpus, 6)
    allocations.listed = (DeviceAllocation("GPU-0", JOB, pod_uid="uid-job"),)
    _ticks(sampler, gpus, 3)
    allocations.listed = ()
    _ticks(sampler, gpus, 10)
    (key, counters), = sampler.snapshot().ledger.containers.items()
    assert key.workload == ("research",)
    assert counters.gpu_seconds == pytest.approx(3.0)
    assert sampler.snapshot().allocation_edges == {"apiserver": 2, "kubelet_poll": 0}
    _conserved(sampler)


def test_with_the_api_server_down_the_poll_edges_apply_and_are_counted_as_such() -> None:
    gpus = FakeGpus()
    allocations = PolledAllocations(gpus)
    allocations.listed = ()
    metadata = LifetimeMetadata(started_at=1002.0, finished_at=1006.5)
    metadata.fail = True
    sampler = _sampler(gpus, allocations, metadata=metadata)  # type: ignore[arg-type]
    sampler.tick()
    _ticks(sampler, gpus, 6)
    allocations.listed = (DeviceAllocation("GPU-0", JOB, pod_uid="uid-job"),)
    _ticks(sampler, gpus, 3)
    allocations.listed = ()
    _ticks(sampler, gpus, 10)
    (_key, counters), = sampler.snapshot().ledger.containers.items()
    assert counters.gpu_seconds == pytest.approx(3.0), "the ticks ending at 1007, 1008 and 1009"
    assert sampler.snapshot().allocation_edges == {"apiserver": 0, "kubelet_poll": 2}
    assert _health(sampler)["metadata"] is False


class ProcessGpus(FakeGpus):
    def sample(self, device: GpuDevice) -> GpuSample:
        busy = {4242: 0.5} if device.uuid == "GPU-0" else {}
        return GpuSample(device.uuid, self.clock, 0.5, process_utilization=busy)


PROCESS_PODS = [PodMeta("ml", "job", uid="uid-job", labels={"team": "research"}),
                PodMeta("ml", "other", uid="uid-other", labels={"team": "search"})]


class FakeProcfs:
    name = PROCFS.collector

    def __init__(self) -> None:
        self.owners: dict[int, str] = {4242: "uid-job"}
        self.asked: list[set[int]] = []
        self.fail = False

    def pod_uids(self, pids: Collection[int]) -> Mapping[int, str]:
        self.asked.append(set(pids))
        if self.fail:
            raise OSError("I/O error reading /proc/4242/cgroup")
        return {pid: self.owners[pid] for pid in pids if pid in self.owners}


def _process_sampler(gpus: FakeGpus, allocations: PolledAllocations, procfs: FakeProcfs) -> Sampler:
    metadata = StaticMetadataProvider(PROCESS_PODS, NodeInfo())
    return Sampler(SamplerSettings(("team",)), gpus, allocations, metadata, FlatPrices(),
                   TeamLabels(), None, wall_clock=lambda: gpus.clock, pid_owners=procfs)


def _shared_gpu(gpus: FakeGpus) -> PolledAllocations:
    allocations = PolledAllocations(gpus)
    other = ContainerRef("ml", "other", "main")
    allocations.listed = (DeviceAllocation("GPU-0", JOB, share=0.5, pod_uid="uid-job"),
                          DeviceAllocation("GPU-0", other, share=0.5, pod_uid="uid-other"))
    return allocations


def _active_by_pod(sampler: Sampler) -> dict[str, float]:
    return {key.container.pod: counters.active_usd for key, counters in sampler.snapshot().ledger.containers.items()}


def test_a_process_is_matched_to_its_pod_when_sampled_not_when_the_tick_is_booked() -> None:
    gpus = ProcessGpus()
    procfs = FakeProcfs()
    sampler = _process_sampler(gpus, _shared_gpu(gpus), procfs)
    sampler.tick()
    _ticks(sampler, gpus, 2)
    procfs.owners.clear()  # the process exited before its ticks were booked
    _ticks(sampler, gpus, 5)
    active = _active_by_pod(sampler)
    # Four ticks booked: the two sampled while the process lived are the job's alone, then split by share.
    busy_per_tick = PER_SECOND * 0.5
    assert active["job"] == pytest.approx(2 * busy_per_tick + 2 * busy_per_tick / 2)
    assert active["other"] == pytest.approx(2 * busy_per_tick / 2)
    assert procfs.asked[-1] == {4242}, "only the sampled pids are looked up"
    assert _health(sampler)[PROCFS.collector] is True


def test_a_failing_proc_read_shows_as_procfs_health_and_the_busy_time_is_split_by_share() -> None:
    gpus = ProcessGpus()
    procfs = FakeProcfs()
    procfs.fail = True
    sampler = _process_sampler(gpus, _shared_gpu(gpus), procfs)
    sampler.tick()
    _ticks(sampler, gpus, 6)
    assert _health(sampler)[PROCFS.collector] is False
    active = _active_by_pod(sampler)
    # Three ticks booked, each half busy: without process owners the two holders split it by share.
    assert active["job"] == pytest.approx(3 * PER_SECOND * 0.5 / 2)
    assert active["other"] == pytest.approx(active["job"])
    assert sampler.readiness_problems() == [
        "procfs: never answered: OSError: I/O error reading /proc/4242/cgroup"]


def test_without_a_pid_owner_source_there_is_no_procfs_step() -> None:
    gpus = ProcessGpus()
    sampler = _sampler(gpus, _shared_gpu(gpus))  # type: ignore[arg-type]
    sampler.tick()
    _ticks(sampler, gpus, 6)
    assert PROCFS.collector not in _health(sampler)
    active = _active_by_pod(sampler)
    assert active["job"] == pytest.approx(active["other"])


def test_every_health_name_the_sampler_reports_is_a_registered_source() -> None:
    gpus = FakeGpus()
    sampler = _process_sampler(gpus, PolledAllocations(gpus), FakeProcfs())
    sampler.tick()
    gpus.clock += 31
    sampler.tick()
    assert set(_health(sampler)) <= set(collector_names())
    assert set(_health(sampler)) >= {"nvml", "podresources", "metadata", "procfs", "pricing"}
