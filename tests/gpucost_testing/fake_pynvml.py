"""A fake `pynvml` module that behaves like the real one, for the NVML backend's tests.

The fake keeps pynvml's calling conventions: functions take a handle, raise
`NVMLError(code)` with `.value`, return structs with the real field names
(`used`, `total`, `gpu`, `pid`, `smUtil`, `timeStamp`, `sampleValue.uiVal`)
and byte strings where older bindings return them.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

SUCCESS = 0
UNINITIALIZED = 1
INVALID_ARGUMENT = 2
NOT_SUPPORTED = 3
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
GPU_IS_LOST = 15
MIG_ENABLE = 1
UTILIZATION_SAMPLES = 1
UNSIGNED_INT = 1
GIB = 2**30


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {GPU_IS_LOST: "GPU is lost", DRIVER_NOT_LOADED: "Driver Not Loaded"}.get(
            self.value, f"NVML error {self.value}"
        )


@dataclass
class FakeDevice:
    """What one fake GPU or MIG device answers; `failing` maps a function name to an error code."""

    uuid: str
    name: str
    memory_total: int = 80 * GIB
    memory_used: int = 10 * GIB
    minor: int = 0
    power_mw: int = 250_000
    energy_mj: int | None = 1_000_000
    utilization_samples: list[tuple[int, int]] = field(default_factory=list)  # (timestamp µs, percent)
    samples_supported: bool = True
    rates_percent: int | None = 40
    process_samples: list[tuple[int, int, int]] = field(default_factory=list)  # (pid, timestamp, smUtil)
    compute_pids: list[int] = field(default_factory=list)
    graphics_pids: list[int] = field(default_factory=list)
    mig_mode: int | None = None  # None: MIG not supported
    mig_children: list[FakeDevice | None] = field(default_factory=list)
    gpu_instance_id: int = 0
    compute_instance_id: int = 0
    slice_count: int = 0
    failing: dict[str, int] = field(default_factory=dict)


@dataclass
class FakeNvml:
    devices: list[FakeDevice]
    init_error: int | None = None
    calls: list[str] = field(default_factory=list)
    initialized: bool = False

    def module(self) -> types.ModuleType:
        nvml = types.ModuleType("pynvml")
        fake: Any = nvml
        fake.NVMLError = FakeNVMLError
        fake.NVML_SUCCESS = SUCCESS
        fake.NVML_ERROR_UNINITIALIZED = UNINITIALIZED
        fake.NVML_ERROR_INVALID_ARGUMENT = INVALID_ARGUMENT
        fake.NVML_ERROR_NOT_SUPPORTED = NOT_SUPPORTED
        fake.NVML_ERROR_NOT_FOUND = NOT_FOUND
        fake.NVML_ERROR_FUNCTION_NOT_FOUND = 13
        fake.NVML_DEVICE_MIG_ENABLE = MIG_ENABLE
        fake.NVML_GPU_UTILIZATION_SAMPLES = UTILIZATION_SAMPLES
        for name in dir(self):
            if name.startswith("nvml"):
                setattr(nvml, name, getattr(self, name))
        return nvml

    def _device(self, handle: FakeDevice, function: str) -> FakeDevice:
        self.calls.append(function)
        if not self.initialized:
            raise FakeNVMLError(UNINITIALIZED)
        if function in handle.failing:
            raise FakeNVMLError(handle.failing[function])
        return handle

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self.initialized = False

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeDevice:
        return self._device(self.devices[index], "nvmlDeviceGetHandleByIndex")

    def nvmlDeviceGetUUID(self, handle: FakeDevice) -> bytes:
        return self._device(handle, "nvmlDeviceGetUUID").uuid.encode()

    def nvmlDeviceGetName(self, handle: FakeDevice) -> str:
        return self._device(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetMinorNumber(self, handle: FakeDevice) -> int:
        return self._device(handle, "nvmlDeviceGetMinorNumber").minor

    def nvmlDeviceGetMemoryInfo(self, handle: FakeDevice) -> Any:
        device = self._device(handle, "nvmlDeviceGetMemoryInfo")
        return types.SimpleNamespace(total=device.memory_total, used=device.memory_used, free=0)

    def nvmlDeviceGetPowerUsage(self, handle: FakeDevice) -> int:
        return self._device(handle, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeDevice) -> int:
        device = self._device(handle, "nvmlDeviceGetTotalEnergyConsumption")
        if device.energy_mj is None:
            raise FakeNVMLError(NOT_SUPPORTED)
        return device.energy_mj

    def nvmlDeviceGetSamples(self, handle: FakeDevice, sampling_type: int, last_seen: int) -> Any:
        device = self._device(handle, "nvmlDeviceGetSamples")
        assert sampling_type == UTILIZATION_SAMPLES
        if not device.samples_supported:
            raise FakeNVMLError(NOT_SUPPORTED)
        newer = [(ts, value) for ts, value in device.utilization_samples if ts > last_seen]
        if not newer:
            raise FakeNVMLError(NOT_FOUND)
        samples = [
            types.SimpleNamespace(timeStamp=ts, sampleValue=types.SimpleNamespace(uiVal=value))
            for ts, value in newer
        ]
        return UNSIGNED_INT, samples

    def nvmlDeviceGetUtilizationRates(self, handle: FakeDevice) -> Any:
        device = self._device(handle, "nvmlDeviceGetUtilizationRates")
        if device.rates_percent is None:
            raise FakeNVMLError(NOT_SUPPORTED)
        return types.SimpleNamespace(gpu=device.rates_percent, memory=10)

    def nvmlDeviceGetProcessUtilization(self, handle: FakeDevice, last_seen: int) -> Any:
        device = self._device(handle, "nvmlDeviceGetProcessUtilization")
        newer = [sample for sample in device.process_samples if sample[1] > last_seen]
        if not newer:
            raise FakeNVMLError(NOT_FOUND)
        return [
            types.SimpleNamespace(pid=pid, timeStamp=ts, smUtil=sm, memUtil=0, encUtil=0, decUtil=0)
            for pid, ts, sm in newer
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeDevice) -> Any:
        device = self._device(handle, "nvmlDeviceGetComputeRunningProcesses")
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=GIB) for pid in device.compute_pids]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeDevice) -> Any:
        device = self._device(handle, "nvmlDeviceGetGraphicsRunningProcesses")
        return [types.SimpleNamespace(pid=pid, usedGpuMemory=GIB) for pid in device.graphics_pids]

    def nvmlDeviceGetMigMode(self, handle: FakeDevice) -> list[int]:
        device = self._device(handle, "nvmlDeviceGetMigMode")
        if device.mig_mode is None:
            raise FakeNVMLError(NOT_SUPPORTED)
        return [device.mig_mode, device.mig_mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: FakeDevice) -> int:
        self._device(handle, "nvmlDeviceGetMaxMigDeviceCount")
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: FakeDevice, index: int) -> FakeDevice:
        device = self._device(handle, "nvmlDeviceGetMigDeviceHandleByIndex")
        child = device.mig_children[index] if index < len(device.mig_children) else None
        if child is None:
            raise FakeNVMLError(NOT_FOUND)
        return child

    def nvmlDeviceGetGpuInstanceId(self, handle: FakeDevice) -> int:
        return self._device(handle, "nvmlDeviceGetGpuInstanceId").gpu_instance_id

    def nvmlDeviceGetComputeInstanceId(self, handle: FakeDevice) -> int:
        return self._device(handle, "nvmlDeviceGetComputeInstanceId").compute_instance_id

    def nvmlDeviceGetAttributes(self, handle: FakeDevice) -> Any:
        device = self._device(handle, "nvmlDeviceGetAttributes")
        return types.SimpleNamespace(
            gpuInstanceSliceCount=device.slice_count, memorySizeMB=device.memory_total // 2**20
        )


def a100(position: int, **overrides: Any) -> FakeDevice:
    return FakeDevice(uuid=f"GPU-{position:08d}", name="NVIDIA A100-SXM4-80GB", minor=position, **overrides)


def mig_slice(uuid: str, name: str, gpu_instance: int, memory: int, slices: int = 0) -> FakeDevice:
    return FakeDevice(
        uuid=uuid,
        name=name,
        memory_total=memory,
        gpu_instance_id=gpu_instance,
        slice_count=slices,
        power_mw=0,
        energy_mj=None,
        samples_supported=False,
        rates_percent=None,
        compute_pids=[900 + gpu_instance],
    )
