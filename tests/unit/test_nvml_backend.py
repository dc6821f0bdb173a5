"""The NVML backend against a fake `pynvml` module that behaves like the real one
(gpucost_testing/fake_pynvml.py: pynvml's calling conventions, error codes and struct fields).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from gpucost.errors import SourceUnavailable
from gpucost.model import GpuDevice
from gpucost.sources.gpu_backend import GpuBackend, make_backend
from gpucost.sources.nvml import NvmlGpuBackend, mig_profile_from_name, parent_slice_count
from gpucost_testing.fake_pynvml import (
    DRIVER_NOT_LOADED,
    GIB,
    GPU_IS_LOST,
    MIG_ENABLE,
    FakeDevice,
    FakeNvml,
    a100,
    mig_slice,
)


@pytest.fixture
def clock() -> Any:
    return lambda: 1_764_000_000.0


def backend_over(fake: FakeNvml, clock: Any) -> NvmlGpuBackend:
    backend = NvmlGpuBackend(nvml=fake.module(), clock=clock)
    backend.start()
    return backend


def by_index(backend: NvmlGpuBackend, index: str) -> GpuDevice:
    return next(device for device in backend.devices() if device.index == index)


# -- start, enumeration ---------------------------------------------------------------


def test_start_enumerates_gpus_with_uuid_model_memory_and_minor_number(clock: Any) -> None:
    backend = backend_over(FakeNvml([a100(0), a100(1)]), clock)
    devices = list(backend.devices())
    assert [(d.uuid, d.index, d.model, d.minor_number) for d in devices] == [
        ("GPU-00000000", "0", "NVIDIA A100-SXM4-80GB", 0),
        ("GPU-00000001", "1", "NVIDIA A100-SXM4-80GB", 1),
    ]
    assert devices[0].memory_total_bytes == 80 * GIB
    assert backend.now() == 1_764_000_000.0


def test_nvml_init_failure_raises_source_unavailable(clock: Any) -> None:
    backend = NvmlGpuBackend(nvml=FakeNvml([a100(0)], init_error=DRIVER_NOT_LOADED).module(), clock=clock)
    with pytest.raises(SourceUnavailable, match="Driver Not Loaded"):
        backend.start()
    assert list(backend.devices()) == []


def test_missing_pynvml_module_raises_source_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    with pytest.raises(SourceUnavailable, match="pynvml"):
        NvmlGpuBackend().start()


def test_the_factory_backend_imports_pynvml_lazily_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([a100(0)])
    monkeypatch.setitem(sys.modules, "pynvml", fake.module())
    backend: GpuBackend = make_backend("nvml")
    assert backend.name == "nvml"
    assert fake.calls == []
    backend.start()
    assert [device.uuid for device in backend.devices()] == ["GPU-00000000"]
    backend.close()
    assert not fake.initialized


def test_mig_devices_are_listed_after_their_parent_with_profile_gi_id_and_fraction(clock: Any) -> None:
    parent = a100(
        0,
        mig_mode=MIG_ENABLE,
        mig_children=[
            mig_slice("MIG-3g", "NVIDIA A100-SXM4-80GB MIG 3g.40gb", 2, 40192 * 2**20),
            None,  # an empty slot between instances
            mig_slice("MIG-1g", "NVIDIA A100-SXM4-80GB MIG 1g.10gb", 9, 9728 * 2**20),
        ],
    )
    backend = backend_over(FakeNvml([parent, a100(1, mig_mode=0)]), clock)
    devices = list(backend.devices())
    assert [d.index for d in devices] == ["0", "0/mig2", "0/mig9", "1"]
    slice_3g = devices[1]
    assert slice_3g.uuid == "MIG-3g"
    assert slice_3g.parent_uuid == "GPU-00000000"
    assert slice_3g.mig_profile == "3g.40gb"
    assert (slice_3g.gpu_instance_id, slice_3g.compute_instance_id) == (2, 0)
    assert (slice_3g.mig_slices, slice_3g.parent_slices) == (3, 7)
    assert slice_3g.price_fraction == pytest.approx(3 / 7)
    assert slice_3g.model == "NVIDIA A100-SXM4-80GB"
    assert slice_3g.minor_number == 0
    assert devices[2].mig_profile == "1g.10gb"


def test_mig_profile_comes_from_attributes_when_the_name_does_not_carry_it(clock: Any) -> None:
    child = mig_slice("MIG-x", "NVIDIA H100 80GB HBM3", 3, 20096 * 2**20, slices=2)
    parent = FakeDevice(uuid="GPU-h", name="NVIDIA H100 80GB HBM3", mig_mode=MIG_ENABLE, mig_children=[child])
    backend = backend_over(FakeNvml([parent]), clock)
    assert by_index(backend, "0/mig3").mig_profile == "2g.20gb"
    assert by_index(backend, "0/mig3").mig_slices == 2


def test_a_gpu_nvml_cannot_open_is_left_out_and_the_others_are_listed(clock: Any) -> None:
    lost = a100(0, failing={"nvmlDeviceGetUUID": GPU_IS_LOST})
    backend = backend_over(FakeNvml([lost, a100(1)]), clock)
    assert [d.uuid for d in backend.devices()] == ["GPU-00000001"]


# -- sampling ---------------------------------------------------------------------------


def test_sample_averages_utilization_samples_since_the_last_read(clock: Any) -> None:
    gpu = a100(0, utilization_samples=[(1_000_000, 10), (2_000_000, 60), (2_500_000, 80)])
    fake = FakeNvml([gpu])
    backend = backend_over(fake, clock)
    device = by_index(backend, "0")
    # First read: only the newest second of NVML's buffer counts (60 % and 80 %).
    assert backend.sample(device).utilization == pytest.approx(0.70)
    gpu.utilization_samples += [(3_000_000, 20), (3_500_000, 40)]
    assert backend.sample(device).utilization == pytest.approx(0.30)
    assert "nvmlDeviceGetUtilizationRates" not in fake.calls


def test_no_new_utilization_samples_falls_back_to_utilization_rates(clock: Any) -> None:
    gpu = a100(0, utilization_samples=[(1_000_000, 90)], rates_percent=35)
    backend = backend_over(FakeNvml([gpu]), clock)
    device = by_index(backend, "0")
    assert backend.sample(device).utilization == pytest.approx(0.90)
    second = backend.sample(device)  # NVML answers NOT_FOUND: no sample since the last read
    assert second.healthy
    assert second.utilization == pytest.approx(0.35)


def test_no_new_samples_and_no_rates_keeps_the_last_utilization(clock: Any) -> None:
    gpu = a100(0, utilization_samples=[(1_000_000, 90)], rates_percent=None)
    backend = backend_over(FakeNvml([gpu]), clock)
    device = by_index(backend, "0")
    assert backend.sample(device).utilization == pytest.approx(0.90)
    assert backend.sample(device).utilization == pytest.approx(0.90)


def test_unsupported_samples_use_utilization_rates_and_stop_asking_for_samples(clock: Any) -> None:
    fake = FakeNvml([a100(0, samples_supported=False, rates_percent=55)])
    backend = backend_over(fake, clock)
    device = by_index(backend, "0")
    assert backend.sample(device).utilization == pytest.approx(0.55)
    backend.sample(device)
    assert fake.calls.count("nvmlDeviceGetSamples") == 1


def test_sample_converts_memory_power_and_energy_units(clock: Any) -> None:
    gpu = a100(0, memory_used=12 * GIB, power_mw=312_500, energy_mj=7_200_000_000)
    backend = backend_over(FakeNvml([gpu]), clock)
    sample = backend.sample(by_index(backend, "0"))
    assert sample.memory_used_bytes == 12 * GIB
    assert sample.memory_total_bytes == 80 * GIB
    assert sample.power_watts == pytest.approx(312.5)
    assert sample.energy_joules == pytest.approx(7_200_000.0)
    assert sample.timestamp == 1_764_000_000.0


def test_energy_unsupported_gives_none_and_the_gpu_stays_healthy(clock: Any) -> None:
    backend = backend_over(FakeNvml([a100(0, energy_mj=None)]), clock)
    sample = backend.sample(by_index(backend, "0"))
    assert sample.healthy
    assert sample.energy_joules is None
    assert sample.power_watts == pytest.approx(250.0)


def test_per_process_utilization_and_running_pids(clock: Any) -> None:
    gpu = a100(
        0,
        process_samples=[(4242, 1_000_000, 30), (4242, 1_500_000, 50), (5151, 1_500_000, 20)],
        compute_pids=[4242, 5151, 6001],
        graphics_pids=[7001],
    )
    backend = backend_over(FakeNvml([gpu]), clock)
    device = by_index(backend, "0")
    sample = backend.sample(device)
    assert sample.process_utilization == {4242: pytest.approx(0.40), 5151: pytest.approx(0.20)}
    assert sample.pids == frozenset({4242, 5151, 6001, 7001})
    # No process sample since the last read: nothing busy, not a fault.
    again = backend.sample(device)
    assert again.healthy and again.process_utilization == {}


def test_an_nvml_error_on_one_gpu_marks_only_that_gpu_unhealthy(clock: Any) -> None:
    broken = a100(1, utilization_samples=[(1_000_000, 50)])
    fake = FakeNvml([a100(0, utilization_samples=[(1_000_000, 50)]), broken, a100(2)])
    backend = backend_over(fake, clock)
    broken.failing["nvmlDeviceGetPowerUsage"] = GPU_IS_LOST
    samples = [backend.sample(device) for device in backend.devices()]
    assert [sample.healthy for sample in samples] == [True, False, True]
    assert samples[1].error == "nvmlDeviceGetPowerUsage: GPU is lost"
    assert samples[1].utilization is None
    assert samples[0].utilization == pytest.approx(0.5)
    broken.failing.clear()
    assert backend.sample(by_index(backend, "1")).healthy


def test_a_failing_utilization_read_marks_the_gpu_unhealthy(clock: Any) -> None:
    gpu = a100(0, failing={"nvmlDeviceGetSamples": GPU_IS_LOST})
    backend = backend_over(FakeNvml([gpu]), clock)
    sample = backend.sample(by_index(backend, "0"))
    assert not sample.healthy
    assert "nvmlDeviceGetSamples" in sample.error


def test_mig_slices_sample_memory_and_pids_without_asking_for_power_or_utilization(clock: Any) -> None:
    child = mig_slice("MIG-3g", "NVIDIA A100-SXM4-80GB MIG 3g.40gb", 2, 40192 * 2**20)
    child.memory_used = 5 * GIB
    fake = FakeNvml([a100(0, mig_mode=MIG_ENABLE, mig_children=[child])])
    backend = backend_over(fake, clock)
    fake.calls.clear()
    sample = backend.sample(by_index(backend, "0/mig2"))
    assert sample.healthy
    assert sample.memory_used_bytes == 5 * GIB
    assert sample.utilization is None and sample.power_watts is None and sample.energy_joules is None
    assert sample.pids == frozenset({902})
    assert "nvmlDeviceGetPowerUsage" not in fake.calls and "nvmlDeviceGetSamples" not in fake.calls


def test_sampling_does_not_enumerate_devices_again(clock: Any) -> None:
    fake = FakeNvml([a100(index) for index in range(8)])
    backend = backend_over(fake, clock)
    fake.calls.clear()
    for device in backend.devices():
        backend.sample(device)
    assert "nvmlDeviceGetHandleByIndex" not in fake.calls
    assert "nvmlDeviceGetUUID" not in fake.calls


def test_a_device_not_enumerated_gives_an_unhealthy_sample(clock: Any) -> None:
    backend = backend_over(FakeNvml([a100(0)]), clock)
    sample = backend.sample(GpuDevice(uuid="GPU-gone", index="9", model="x"))
    assert not sample.healthy and sample.error


def test_close_shuts_nvml_down_and_start_works_again(clock: Any) -> None:
    fake = FakeNvml([a100(0)])
    backend = backend_over(fake, clock)
    backend.close()
    assert not fake.initialized and list(backend.devices()) == []
    backend.start()
    assert len(backend.devices()) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA A100-SXM4-80GB MIG 3g.40gb", ("3g.40gb", 3)),
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb+me", ("1g.10gb+me", 1)),
        ("NVIDIA A100-SXM4-40GB", None),
    ],
)
def test_mig_profile_is_read_from_the_mig_device_name(name: str, expected: tuple[str, int] | None) -> None:
    assert mig_profile_from_name(name) == expected


def test_a30_has_four_slices_and_a100_h100_seven() -> None:
    assert parent_slice_count("NVIDIA A30") == 4
    assert parent_slice_count("NVIDIA A100-SXM4-80GB") == 7
    assert parent_slice_count("NVIDIA H100 80GB HBM3") == 7
