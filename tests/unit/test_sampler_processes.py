"""GPU processes matched to their pods through /proc: busy time goes to the pod whose process used the GPU."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pytest

from gpucost.attribution import StaticMetadataProvider
from gpucost.model import ContainerRef, DeviceAllocation, GpuDevice, GpuSample, NodeInfo, PodMeta
from gpucost.sampler import Sampler, SamplerSettings
from gpucost.sources.registry import PROCFS, collector_names
from gpucost_testing.sampler_fakes import (
    JOB,
    PER_SECOND,
    FakeGpus,
    FlatPrices,
    PolledAllocations,
    TeamLabels,
    health_by_collector,
    make_sampler,
    run_ticks,
)


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
    run_ticks(sampler, gpus, 2)
    procfs.owners.clear()  # the process exited before its ticks were booked
    run_ticks(sampler, gpus, 5)
    active = _active_by_pod(sampler)
    # Four ticks booked: the two sampled while the process lived are the job's alone, then split by share.
    busy_per_tick = PER_SECOND * 0.5
    assert active["job"] == pytest.approx(2 * busy_per_tick + 2 * busy_per_tick / 2)
    assert active["other"] == pytest.approx(2 * busy_per_tick / 2)
    assert procfs.asked[-1] == {4242}, "only the sampled pids are looked up"
    assert health_by_collector(sampler)[PROCFS.collector] is True


def test_a_failing_proc_read_shows_as_procfs_health_and_the_busy_time_is_split_by_share() -> None:
    gpus = ProcessGpus()
    procfs = FakeProcfs()
    procfs.fail = True
    sampler = _process_sampler(gpus, _shared_gpu(gpus), procfs)
    sampler.tick()
    run_ticks(sampler, gpus, 6)
    assert health_by_collector(sampler)[PROCFS.collector] is False
    active = _active_by_pod(sampler)
    # Three ticks booked, each half busy: without process owners the two holders split it by share.
    assert active["job"] == pytest.approx(3 * PER_SECOND * 0.5 / 2)
    assert active["other"] == pytest.approx(active["job"])
    assert sampler.readiness_problems() == [
        "procfs: never answered: OSError: I/O error reading /proc/4242/cgroup"]


def test_without_a_pid_owner_source_there_is_no_procfs_step() -> None:
    gpus = ProcessGpus()
    sampler = make_sampler(gpus, _shared_gpu(gpus))  # type: ignore[arg-type]
    sampler.tick()
    run_ticks(sampler, gpus, 6)
    assert PROCFS.collector not in health_by_collector(sampler)
    active = _active_by_pod(sampler)
    assert active["job"] == pytest.approx(active["other"])


def test_every_health_name_the_sampler_reports_is_a_registered_source() -> None:
    gpus = FakeGpus()
    sampler = _process_sampler(gpus, PolledAllocations(gpus), FakeProcfs())
    sampler.tick()
    gpus.clock += 31
    sampler.tick()
    assert set(health_by_collector(sampler)) <= set(collector_names())
    assert set(health_by_collector(sampler)) >= {"nvml", "podresources", "metadata", "procfs", "pricing"}
