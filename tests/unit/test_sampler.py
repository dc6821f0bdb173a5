"""The sampling loop degrades one source at a time and never stops counting the rest.

The deferred booking of a settling provider is in test_sampler_journal.py, the matching of GPU
processes to pods in test_sampler_processes.py; the fakes all three drive are in
gpucost_testing/sampler_fakes.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gpucost.attribution import AllocationView, StaticMetadataProvider
from gpucost.errors import SourceUnavailable
from gpucost.model import NodeInfo, PodMeta
from gpucost.sampler import Sampler, SamplerSettings
from gpucost.sources.registry import APISERVER
from gpucost.state import StateFile
from gpucost_testing.sampler_fakes import (
    GPUS,
    FakeAllocations,
    FakeGpus,
    FlatPrices,
    TeamLabels,
    health_by_collector,
    make_sampler,
)


def test_an_nvml_error_on_one_gpu_marks_it_unhealthy_and_the_others_keep_counting() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    sampler = make_sampler(gpus, allocations)
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
    assert health_by_collector(sampler)["nvml"] is True


def test_kubelet_outage_shows_in_health_and_keeps_the_last_allocation() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    sampler = make_sampler(gpus, allocations)
    sampler.tick()
    allocations.fail = True
    gpus.clock += 100
    sampler.tick()
    assert health_by_collector(sampler)["podresources"] is False
    containers = sampler.snapshot().ledger.containers
    assert sum(c.active_usd + c.idle_usd for c in containers.values()) == pytest.approx(0.1)
    allocations.fail = False
    gpus.clock += 1
    sampler.tick()
    assert health_by_collector(sampler)["podresources"] is True


def test_nvml_init_failure_is_retried_and_readiness_says_why() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    gpus.init_failures = 1
    sampler = make_sampler(gpus, allocations)
    sampler.tick()
    assert not sampler.ready
    assert any("driver not loaded" in p for p in sampler.readiness_problems())
    assert health_by_collector(sampler)["nvml"] is False
    sampler._next_init = 0.0  # skip the backoff wait in this test
    sampler.tick()
    assert sampler.readiness_problems() == []
    # Last: mypy keeps `ready` narrowed to False from above, so any statement after this would read as unreachable.
    assert sampler.ready


def test_restart_gap_is_charged_from_the_state_file(tmp_path: Path) -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    state = StateFile(tmp_path / "state.json")
    first = make_sampler(gpus, allocations, state)
    first.tick()
    gpus.clock += 10
    first.tick()
    first.stop()
    gpus.clock += 5  # the exporter was down for 5 s
    second = make_sampler(gpus, allocations, state)
    second.tick()
    assert second.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(3.6 * 15 / 3600)


def test_a_stale_state_file_beyond_max_gap_is_not_charged(tmp_path: Path) -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    state = StateFile(tmp_path / "state.json")
    first = make_sampler(gpus, allocations, state)
    first.tick()
    gpus.clock += 10
    first.tick()
    first.stop()
    gpus.clock += 3600
    second = make_sampler(gpus, allocations, state)
    second.tick()
    assert second.snapshot().ledger.gpus["GPU-0"].cost_usd == pytest.approx(3.6 * 10 / 3600)


def test_workload_labels_come_from_pod_metadata() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    sampler = make_sampler(gpus, allocations)
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
    sampler = make_sampler(gpus, allocations)
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
    sampler = make_sampler(gpus, allocations, StateFile(path))
    with caplog.at_level(logging.WARNING, logger="gpucost.health"):
        for _ in range(3):
            sampler.tick()
            gpus.clock += 31
    warnings = [r.getMessage() for r in caplog.records if r.name == "gpucost.health"]
    assert len(warnings) == 1, warnings
    assert f"cannot write checkpoint {path}" in warnings[0]
    assert health_by_collector(sampler)["state"] is False


def test_readiness_reports_a_source_that_never_answered_since_start() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    allocations.fail = True
    sampler = make_sampler(gpus, allocations)
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
    sampler = make_sampler(gpus, allocations, metadata=UnreachableApiServer([], NodeInfo()))
    sampler.tick()
    assert sampler.readiness_problems() == ["apiserver: never answered: SourceUnavailable: connection refused"]


def test_once_a_source_answered_a_later_fault_shows_in_health_but_keeps_readiness() -> None:
    gpus, allocations = FakeGpus(), FakeAllocations()
    allocations.fail = True
    sampler = make_sampler(gpus, allocations)
    sampler.tick()
    allocations.fail = False
    gpus.clock += 1
    sampler.tick()
    assert sampler.readiness_problems() == []
    allocations.fail = True
    gpus.clock += 1
    sampler.tick()
    assert health_by_collector(sampler)["podresources"] is False
    assert sampler.readiness_problems() == [], "one flaky source must not pull the exporter out of the Service"
