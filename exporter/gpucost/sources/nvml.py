"""The GPU backend over NVML (the `pynvml` module of the `nvidia-ml-py` package).

Devices (full GPUs, MIG-enabled parents and their MIG slices) are enumerated
once in `start()` and their handles cached, because the sampler calls
`sample()` for every device every second.  An NVML error on one device makes
only that device's sample unhealthy; a failed `nvmlInit` raises
`SourceUnavailable` so the caller can retry with backoff.

`pynvml` is imported in `start()` so importing gpucost never needs
libnvidia-ml (and tests can put a fake module in `sys.modules`).
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from gpucost.errors import SourceUnavailable
from gpucost.model import GpuDevice, GpuSample

__all__ = ["NvmlGpuBackend", "mig_profile_from_name", "parent_slice_count"]

log = logging.getLogger(__name__)

_MIG_PROFILE_IN_NAME = re.compile(r"(\d+)g\.(\d+)gb(\+me)?", re.IGNORECASE)
# On the first read NVML returns its whole sample buffer (many seconds); keep
# only what falls inside one sampling interval so the first value is current.
_FIRST_READ_WINDOW_MICROSECONDS = 1_000_000
# NVML answers these for the parent GPU only; asking a MIG slice every second is wasted work.
_UNSUPPORTED_ON_MIG_SLICES = frozenset(
    {
        "nvmlDeviceGetSamples",
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetPowerUsage",
        "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetProcessUtilization",
    }
)
# NVML sample values are a C union; the value type says which member is set.
_VALUE_MEMBERS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")


def mig_profile_from_name(name: str) -> tuple[str, int] | None:
    """('3g.40gb', 3) from a MIG device name like `NVIDIA A100-SXM4-80GB MIG 3g.40gb`."""
    match = _MIG_PROFILE_IN_NAME.search(name)
    if match is None:
        return None
    return match.group(0).lower(), int(match.group(1))


def parent_slice_count(model: str) -> int:
    """Compute slices a MIG-capable GPU is carved from: 4 on A30, 7 on A100/H100/H200/B200."""
    return 4 if "A30" in model.upper() else 7


@dataclass(slots=True)
class _DeviceState:
    """A cached handle and what later samples need from earlier ones."""

    device: GpuDevice
    handle: object
    last_utilization_timestamp: int = 0
    last_process_timestamp: int = 0
    last_utilization: float | None = None
    unsupported: set[str] = field(default_factory=set)


class _DeviceFaultError(Exception):
    """An NVML call failed for one device in a way that makes its sample unhealthy."""


class NvmlGpuBackend:
    """`GpuBackend` over NVML.  `nvml` may be given (tests); otherwise `pynvml` is imported in start()."""

    name = "nvml"

    def __init__(self, nvml: ModuleType | None = None, clock: Callable[[], float] = time.time) -> None:
        self._nvml: Any = nvml
        self._clock = clock
        self._states: dict[str, _DeviceState] = {}
        self._devices: tuple[GpuDevice, ...] = ()
        self._initialized = False

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        if self._nvml is None:
            try:
                self._nvml = importlib.import_module("pynvml")
            except ImportError as error:
                raise SourceUnavailable(f"pynvml is not installed: {error}") from error
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            raise SourceUnavailable(f"NVML init failed: {error}") from error
        self._initialized = True
        try:
            self._enumerate()
        except nvml.NVMLError as error:
            self.close()
            raise SourceUnavailable(f"NVML device enumeration failed: {error}") from error

    def close(self) -> None:
        if not self._initialized:
            return
        self._initialized = False
        self._states.clear()
        self._devices = ()
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as error:
            log.warning("NVML shutdown failed: %s", error)

    def now(self) -> float:
        return self._clock()

    def devices(self) -> Sequence[GpuDevice]:
        return self._devices

    # -- enumeration (once per start) ----------------------------------------------

    def _enumerate(self) -> None:
        nvml = self._nvml
        devices: list[GpuDevice] = []
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                parent = self._describe_gpu(handle, index)
            except nvml.NVMLError as error:
                # Without a handle there is no uuid to report it under; the
                # other GPUs must still count, so this one is left out.
                log.error("NVML cannot read GPU %d, leaving it out: %s", index, error)
                continue
            self._remember(parent, handle, devices)
            for mig_handle, mig in self._mig_slices(handle, parent):
                self._remember(mig, mig_handle, devices)
        self._devices = tuple(devices)

    def _remember(self, device: GpuDevice, handle: object, devices: list[GpuDevice]) -> None:
        devices.append(device)
        state = _DeviceState(device=device, handle=handle)
        if device.is_mig:
            state.unsupported.update(_UNSUPPORTED_ON_MIG_SLICES)
        self._states[device.uuid] = state

    def _describe_gpu(self, handle: object, index: int) -> GpuDevice:
        nvml = self._nvml
        return GpuDevice(
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            index=str(index),
            model=_text(nvml.nvmlDeviceGetName(handle)),
            memory_total_bytes=int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
            minor_number=self._optional(nvml.nvmlDeviceGetMinorNumber, handle),
        )

    def _mig_slices(self, handle: object, parent: GpuDevice) -> list[tuple[object, GpuDevice]]:
        nvml = self._nvml
        try:
            current_mode, _pending_mode = nvml.nvmlDeviceGetMigMode(handle)
        except nvml.NVMLError as error:
            if _is_unsupported(nvml, error):
                return []  # not a MIG-capable GPU
            raise
        if current_mode != nvml.NVML_DEVICE_MIG_ENABLE:
            return []
        slices = []
        for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                mig_handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except nvml.NVMLError as error:
                if error.value in (nvml.NVML_ERROR_NOT_FOUND, nvml.NVML_ERROR_INVALID_ARGUMENT):
                    continue  # an empty slot: fewer instances exist than the maximum
                raise
            slices.append((mig_handle, self._describe_mig(mig_handle, parent)))
        return slices

    def _describe_mig(self, handle: object, parent: GpuDevice) -> GpuDevice:
        nvml = self._nvml
        gpu_instance_id = int(nvml.nvmlDeviceGetGpuInstanceId(handle))
        profile_and_slices = mig_profile_from_name(_text(nvml.nvmlDeviceGetName(handle)))
        if profile_and_slices is None:
            profile_and_slices = self._mig_profile_from_attributes(handle)
        profile, slices = profile_and_slices
        return GpuDevice(
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            index=f"{parent.index}/mig{gpu_instance_id}",
            # The parent's product name: the price book prices the parent, the slice carries a fraction.
            model=parent.model,
            memory_total_bytes=int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
            # GKE and the device plugin name a slice by its parent's minor number and GI id (nvidia0/gi3).
            minor_number=parent.minor_number,
            parent_uuid=parent.uuid,
            mig_profile=profile,
            gpu_instance_id=gpu_instance_id,
            compute_instance_id=self._optional(nvml.nvmlDeviceGetComputeInstanceId, handle),
            mig_slices=slices,
            parent_slices=parent_slice_count(parent.model),
        )

    def _mig_profile_from_attributes(self, handle: object) -> tuple[str, int]:
        attributes = self._nvml.nvmlDeviceGetAttributes(handle)
        slices = int(attributes.gpuInstanceSliceCount)
        # Profile names round the slice's memory up to whole GB (9.5 GiB -> 10gb).
        memory_gb = math.ceil(int(attributes.memorySizeMB) / 1024)
        return f"{slices}g.{memory_gb}gb", slices

    def _optional(self, call: Callable[[object], int], handle: object) -> int | None:
        try:
            return int(call(handle))
        except self._nvml.NVMLError as error:
            if _is_unsupported(self._nvml, error):
                return None
            raise

    # -- sampling (every second, per device) -----------------------------------------

    def sample(self, device: GpuDevice) -> GpuSample:
        timestamp = self._clock()
        state = self._states.get(device.uuid)
        if state is None:
            return GpuSample(
                device.uuid, timestamp, None, healthy=False, error="device not enumerated by NVML"
            )
        try:
            return self._read(state, timestamp)
        except _DeviceFaultError as fault:
            return GpuSample(device.uuid, timestamp, None, healthy=False, error=str(fault))

    def _read(self, state: _DeviceState, timestamp: float) -> GpuSample:
        memory = self._call(state, "nvmlDeviceGetMemoryInfo")
        power_milliwatts = self._call(state, "nvmlDeviceGetPowerUsage")
        energy_millijoules = self._call(state, "nvmlDeviceGetTotalEnergyConsumption")
        process_utilization = self._process_utilization(state)
        pids = {
            int(process.pid)
            for call in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses")
            for process in self._call(state, call) or ()
        }
        pids.update(process_utilization)
        return GpuSample(
            uuid=state.device.uuid,
            timestamp=timestamp,
            utilization=self._utilization(state),
            memory_used_bytes=int(memory.used) if memory is not None else 0,
            memory_total_bytes=int(memory.total) if memory is not None else state.device.memory_total_bytes,
            power_watts=power_milliwatts / 1000.0 if power_milliwatts is not None else None,
            energy_joules=energy_millijoules / 1000.0 if energy_millijoules is not None else None,
            process_utilization=process_utilization,
            pids=frozenset(pids),
        )

    def _call(self, state: _DeviceState, function: str, *arguments: object) -> Any:
        """Call an NVML device function; None when the device does not support it.

        A function found unsupported once is not called again for the device.
        Any other NVML error is a device fault.
        """
        if function in state.unsupported:
            return None
        nvml = self._nvml
        try:
            return getattr(nvml, function)(state.handle, *arguments)
        except nvml.NVMLError as error:
            if _is_unsupported(nvml, error):
                state.unsupported.add(function)
                return None
            raise _DeviceFaultError(f"{function}: {error}") from error

    def _utilization(self, state: _DeviceState) -> float | None:
        """Mean GPU utilization over the samples NVML took since the last read.

        NOT_FOUND means NVML took no new sample since then; the utilization
        rates (NVML's own last window) stand in, and where even those are
        unsupported the last known value is kept.
        """
        nvml = self._nvml
        samples = None
        if "nvmlDeviceGetSamples" not in state.unsupported:
            try:
                samples = self._call(
                    state,
                    "nvmlDeviceGetSamples",
                    nvml.NVML_GPU_UTILIZATION_SAMPLES,
                    state.last_utilization_timestamp,
                )
            except _DeviceFaultError as fault:
                if not _caused_by(nvml, fault, nvml.NVML_ERROR_NOT_FOUND):
                    raise
        if samples is not None:
            value_type, values = samples
            fresh = _fresh(values, state.last_utilization_timestamp)
            if fresh:
                state.last_utilization_timestamp = max(int(sample.timeStamp) for sample in fresh)
                mean_percent = sum(_sample_value(sample, value_type) for sample in fresh) / len(fresh)
                state.last_utilization = _ratio(mean_percent)
                return state.last_utilization
        rates = self._call(state, "nvmlDeviceGetUtilizationRates")
        if rates is not None:
            state.last_utilization = _ratio(float(rates.gpu))
        return state.last_utilization

    def _process_utilization(self, state: _DeviceState) -> dict[int, float]:
        """SM busy fraction per pid over the samples since the last read (empty when none ran)."""
        nvml = self._nvml
        try:
            samples = self._call(state, "nvmlDeviceGetProcessUtilization", state.last_process_timestamp)
        except _DeviceFaultError as fault:
            # NOT_FOUND: no process ran since the last read.  pynvml raises
            # NVMLError(SUCCESS) when the size probe finds nothing to size.
            if _caused_by(nvml, fault, nvml.NVML_ERROR_NOT_FOUND) or _caused_by(
                nvml, fault, nvml.NVML_SUCCESS
            ):
                return {}
            raise
        fresh = _fresh(samples or (), state.last_process_timestamp)
        if not fresh:
            return {}
        state.last_process_timestamp = max(int(sample.timeStamp) for sample in fresh)
        per_pid: dict[int, list[float]] = {}
        for sample in fresh:
            per_pid.setdefault(int(sample.pid), []).append(float(sample.smUtil))
        return {pid: _ratio(sum(values) / len(values)) for pid, values in per_pid.items()}


# -- helpers ----------------------------------------------------------------------


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ratio(percent: float) -> float:
    return min(1.0, max(0.0, percent / 100.0))


def _is_unsupported(nvml: Any, error: Any) -> bool:
    unsupported = {nvml.NVML_ERROR_NOT_SUPPORTED, getattr(nvml, "NVML_ERROR_FUNCTION_NOT_FOUND", None)}
    return getattr(error, "value", None) in unsupported


def _caused_by(nvml: Any, fault: _DeviceFaultError, code: int) -> bool:
    cause = fault.__cause__
    return isinstance(cause, nvml.NVMLError) and getattr(cause, "value", None) == code


def _fresh(samples: Sequence[Any], last_timestamp: int) -> list[Any]:
    """Samples newer than the last read; on the first read, only the newest interval's."""
    newer = [sample for sample in samples if int(sample.timeStamp) > last_timestamp]
    if last_timestamp == 0 and newer:
        newest = max(int(sample.timeStamp) for sample in newer)
        newer = [
            sample for sample in newer if int(sample.timeStamp) >= newest - _FIRST_READ_WINDOW_MICROSECONDS
        ]
    return newer


def _sample_value(sample: Any, value_type: int) -> float:
    member = _VALUE_MEMBERS[value_type] if 0 <= value_type < len(_VALUE_MEMBERS) else "uiVal"
    return float(getattr(sample.sampleValue, member))
