"""The simulated GPU backend replays a scenario on its own clock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gpucost.errors import ConfigError, SourceUnavailable
from gpucost.model import GpuDevice
from gpucost.sources.gpu_backend import GpuBackend, make_backend
from gpucost.sources.nvml import NvmlGpuBackend
from gpucost.sources.scenario import load_scenario, parse_scenario
from gpucost.sources.simulated import SimulatedGpuBackend

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
EIGHT = SCENARIOS / "eight_gpus_static.yaml"
MIG = SCENARIOS / "mig_and_timeslicing.yaml"
CHURN = SCENARIOS / "churn.yaml"
WALL_START = 1_764_000_000.0


class FakeWallClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = WALL_START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def started(path: Path, speed: float | None = None) -> tuple[SimulatedGpuBackend, FakeWallClock]:
    clock = FakeWallClock()
    backend = SimulatedGpuBackend(load_scenario(path), speed=speed, clock=clock)
    backend.start()
    return backend, clock


def device(backend: SimulatedGpuBackend, index: str) -> GpuDevice:
    return next(d for d in backend.devices() if d.index == index)


def test_the_simulated_backend_satisfies_the_gpu_backend_protocol() -> None:
    backend: GpuBackend = make_backend("simulated", EIGHT, clock=FakeWallClock())
    assert backend.name == "simulated"
    backend.start()
    assert len(backend.devices()) == 8
    backend.close()


def test_clock_runs_speed_scenario_seconds_per_wall_second_from_construction() -> None:
    backend, clock = started(EIGHT, speed=60)
    assert backend.now() == WALL_START
    clock.advance(2)
    assert backend.scenario_seconds() == 120
    assert backend.now() == WALL_START + 120


def test_a_scenario_anchored_at_start_time_runs_from_that_wall_time_at_its_speed() -> None:
    scenario = parse_scenario(
        {
            "node": {"name": "n"},
            "speed": 10,
            "start_time": 1_700_000_000,
            "gpus": [{"uuid": "GPU-a", "index": 0, "model": "NVIDIA L4", "memory": "24GiB"}],
        }
    )
    clock = FakeWallClock()
    clock.now = 1_700_000_003.0
    backend = SimulatedGpuBackend(scenario, clock=clock)
    # Scenario second 0 is the anchored wall time, so a restarted exporter continues the timeline.
    assert backend.scenario_seconds() == 30
    assert backend.now() == 1_700_000_030


def test_sample_returns_the_timeline_value_at_the_scenario_clock() -> None:
    backend, clock = started(EIGHT)
    gpu0 = device(backend, "0")
    first = backend.sample(gpu0)
    assert first.healthy
    assert first.utilization == pytest.approx(0.95)
    assert first.memory_used_bytes == 71 * 2**30
    assert first.memory_total_bytes == 81920 * 2**20
    assert first.power_watts == pytest.approx(380)
    clock.advance(37.5)  # halfway down the linear ramp from 0.40 (t=30) to 0.92 (t=45)
    assert backend.sample(gpu0).utilization == pytest.approx(0.66)
    clock.advance(120)  # the timeline repeats every 120 s
    assert backend.sample(gpu0).utilization == pytest.approx(0.66)


def test_process_utilization_lists_only_pids_of_pods_running_now() -> None:
    backend, clock = started(EIGHT)
    job_gpu = device(backend, "5")
    before = backend.sample(job_gpu)
    assert before.process_utilization == {} and before.pids == frozenset()
    assert before.utilization == 0.0
    clock.advance(30)
    during = backend.sample(job_gpu)
    assert during.process_utilization == {63001: pytest.approx(0.75)}
    assert during.pids == frozenset({63001})
    # No timeline on this GPU: utilization is its processes' and power follows it.
    assert during.utilization == pytest.approx(0.75)
    assert during.power_watts == pytest.approx(55 + 0.75 * (400 - 55))
    clock.advance(40)
    assert backend.sample(job_gpu).process_utilization == {}


def test_time_sliced_gpu_reports_each_replica_holders_process_and_their_sum() -> None:
    backend, clock = started(MIG)
    sliced = device(backend, "1")
    clock.advance(15)  # chat-small ramps 0.50 -> 0.30 over 0..30 s
    sample = backend.sample(sliced)
    assert sample.process_utilization == {
        72001: pytest.approx(0.40),
        72002: pytest.approx(0.20),
        72003: pytest.approx(0.10),
    }
    assert sample.utilization == pytest.approx(0.70)


def test_mig_slices_report_memory_and_processes_but_no_power_and_the_parent_no_utilization() -> None:
    backend, _clock = started(MIG)
    parent = device(backend, "0")
    slice_3g = device(backend, "0/mig2")
    assert slice_3g.parent_uuid == parent.uuid and slice_3g.mig_profile == "3g.40gb"
    parent_sample = backend.sample(parent)
    assert parent_sample.utilization is None
    assert parent_sample.power_watts == pytest.approx(180)
    slice_sample = backend.sample(slice_3g)
    assert slice_sample.power_watts is None and slice_sample.energy_joules is None
    assert slice_sample.process_utilization == {71001: pytest.approx(0.9)}
    assert slice_sample.utilization == pytest.approx(0.9)
    assert slice_sample.memory_total_bytes == 40192 * 2**20


def test_energy_is_power_integrated_over_scenario_time_and_never_decreases() -> None:
    backend, clock = started(EIGHT)
    idle_gpu = device(backend, "6")  # a constant 56 W
    assert backend.sample(idle_gpu).energy_joules == 0.0
    clock.advance(10)
    assert backend.sample(idle_gpu).energy_joules == pytest.approx(560)
    clock.advance(90)
    assert backend.sample(idle_gpu).energy_joules == pytest.approx(5600)
    busy_gpu = device(backend, "0")
    readings = []
    for _ in range(20):
        clock.advance(7)
        energy = backend.sample(busy_gpu).energy_joules
        assert energy is not None
        readings.append(energy)
    assert readings == sorted(readings) and readings[-1] > readings[0]


def test_energy_integration_follows_a_linear_power_ramp() -> None:
    scenario = parse_scenario(
        {
            "node": {"name": "n"},
            "gpus": [
                {
                    "uuid": "GPU-a",
                    "index": 0,
                    "model": "NVIDIA L4",
                    "memory": "24GiB",
                    "timeline": [
                        {"at": 0, "power_watts": 0, "ramp": "linear"},
                        {"at": 10, "power_watts": 100},
                    ],
                }
            ],
        }
    )
    clock = FakeWallClock()
    backend = SimulatedGpuBackend(scenario, clock=clock)
    backend.start()
    clock.advance(10)
    assert backend.sample(backend.devices()[0]).energy_joules == pytest.approx(500)


def test_an_injected_nvml_fault_marks_only_that_gpu_unhealthy_while_it_lasts() -> None:
    backend, clock = started(CHURN)
    clock.advance(35)
    samples = {d.index: backend.sample(d) for d in backend.devices()}
    assert not samples["1"].healthy
    assert samples["1"].error == "nvmlDeviceGetMemoryInfo: GPU is lost"
    assert samples["1"].utilization is None
    assert all(samples[index].healthy for index in ("0", "2", "3"))
    clock.advance(10)
    recovered = backend.sample(device(backend, "1"))
    assert recovered.healthy
    assert recovered.energy_joules is not None and recovered.energy_joules > 0


def test_init_fault_makes_start_raise_source_unavailable_until_it_ends() -> None:
    document = {
        "node": {"name": "n"},
        "gpus": [{"uuid": "GPU-a", "index": 0, "model": "NVIDIA L4", "memory": "24GiB"}],
        "faults": [{"kind": "init_error", "from": 0, "to": 5, "message": "driver not loaded"}],
    }
    clock = FakeWallClock()
    backend = SimulatedGpuBackend(parse_scenario(document), clock=clock)
    with pytest.raises(SourceUnavailable, match="driver not loaded"):
        backend.start()
    assert backend.devices() == ()
    clock.advance(5)
    backend.start()
    assert len(backend.devices()) == 1


def test_allocation_source_follows_the_backend_clock() -> None:
    backend, clock = started(EIGHT)
    source = backend.allocation_source()
    assert len(source.allocations()) == 5
    clock.advance(25)
    assert len(source.allocations()) == 6
    assert source.pid_to_pod_uid(63001) == "1f7a9c3e-5b2d-4e81-9c6f-0d4b8e2a7c03"
    assert any(pod.pod == "eval-llama-70b-mmlu-6q2wz" for pod in source.pods())
    assert source.node_info().instance_type == "p4d.24xlarge"
    assert len(source.device_ids()) == 3


def test_sampling_eight_gpus_every_second_costs_well_under_a_millisecond_per_tick() -> None:
    backend, clock = started(EIGHT)
    devices = backend.devices()
    began = time.perf_counter()
    for _ in range(200):
        clock.advance(1)
        for gpu in devices:
            backend.sample(gpu)
    per_tick = (time.perf_counter() - began) / 200
    # Loose on purpose for a loaded 2-core CI machine; a per-call re-parse or
    # scan of the whole scenario would blow through it.
    assert per_tick < 0.005


def test_make_backend_rejects_unknown_names_and_missing_scenarios() -> None:
    with pytest.raises(ConfigError) as unknown:
        make_backend("dcgm")
    assert (unknown.value.key_path, unknown.value.value) == ("nvml.backend", "dcgm")
    with pytest.raises(ConfigError) as missing:
        make_backend("simulated", None)
    assert missing.value.key_path == "nvml.scenario"
    with pytest.raises(ConfigError):
        make_backend("simulated", EIGHT, speed=0)
    assert isinstance(make_backend("nvml"), NvmlGpuBackend)


def test_make_backend_applies_the_speed_override() -> None:
    clock = FakeWallClock()
    backend = make_backend("simulated", EIGHT, speed=1440, clock=clock)
    clock.advance(60)
    assert backend.now() == WALL_START + 86400
