"""A GPU backend and an allocation source that replay a scenario file.

The demo and the tests use these instead of NVML and the kubelet: the
scenario's clock runs `speed` scenario seconds per wall second from the moment
the backend is built, every sample reads the scenario's timelines at that
clock, and total energy is power integrated over the clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gpucost.errors import SourceUnavailable
from gpucost.model import DeviceAllocation, GpuDevice, GpuSample, NodeInfo, NodeResourceView, PodMeta
from gpucost.sources.scenario import (
    ContainerDeviceIds,
    MigSlice,
    Scenario,
    ScenarioGpu,
    ScenarioPod,
    ScenarioProcess,
    TimelineField,
)

__all__ = ["ScenarioAllocationSource", "SimulatedGpuBackend"]

# Energy is integrated with at most this many trapezoids per sample, each at
# most one scenario second long, so a demo compressing a day stays cheap.
_MAX_ENERGY_STEPS = 64
_ENERGY_STEP_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _SimulatedDevice:
    """One device of the scenario with what is needed to sample it, resolved once."""

    device: GpuDevice
    gpu: ScenarioGpu
    mig: MigSlice | None
    processes: tuple[tuple[ScenarioPod, ScenarioProcess], ...]  # every process that may run on it


@dataclass(slots=True)
class _EnergyCounter:
    scenario_seconds: float
    joules: float


class SimulatedGpuBackend:
    """`GpuBackend` over a parsed `Scenario`.

    `clock` returns wall-clock unix seconds (injectable for tests); `speed`
    overrides the scenario's speed.  `now()` is the scenario's start time (the
    file's `start_time`, else the wall time when the backend was built) plus
    elapsed wall time times speed.
    """

    name = "simulated"

    def __init__(
        self,
        scenario: Scenario,
        speed: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be greater than 0, got {speed!r}")
        self.scenario = scenario
        self.speed = speed if speed is not None else scenario.speed
        self._clock = clock
        # A scenario anchored to a wall time (`start_time`) keeps its timeline across
        # exporter restarts: scenario second 0 is that wall time, not our start.
        self._wall_origin = scenario.start_time if scenario.start_time is not None else clock()
        self._start_time = self._wall_origin
        self._devices = _resolve_devices(scenario)
        self._by_uuid = {simulated.device.uuid: simulated for simulated in self._devices}
        self._energy: dict[str, _EnergyCounter] = {}
        self._started = False

    # -- GpuBackend ------------------------------------------------------------

    def start(self) -> None:
        t = self.scenario_seconds()
        failing = self.scenario.faults_at(t, "init_error")
        if failing:
            raise SourceUnavailable(
                f"simulated NVML init failed at scenario second {t:.1f}: {failing[0].message}"
            )
        self._started = True

    def close(self) -> None:
        self._started = False

    def now(self) -> float:
        return self._start_time + self.scenario_seconds()

    def devices(self) -> Sequence[GpuDevice]:
        if not self._started:
            return ()
        return tuple(simulated.device for simulated in self._devices)

    def sample(self, device: GpuDevice) -> GpuSample:
        t = self.scenario_seconds()
        timestamp = self._start_time + t
        simulated = self._by_uuid.get(device.uuid)
        if simulated is None:
            return GpuSample(
                device.uuid, timestamp, None, healthy=False, error="no such device in the scenario"
            )
        if not self._started:
            return GpuSample(device.uuid, timestamp, None, healthy=False, error="backend not started")
        energy = self._energy_at(simulated, t)
        for fault in self.scenario.faults_at(t, "nvml_error"):
            if fault.gpu_uuid == device.uuid:
                return GpuSample(device.uuid, timestamp, None, healthy=False, error=fault.message)
        process_utilization = _process_utilization(simulated, t)
        return GpuSample(
            uuid=device.uuid,
            timestamp=timestamp,
            utilization=_utilization(simulated, t, process_utilization),
            memory_used_bytes=_memory_used(simulated, t),
            memory_total_bytes=simulated.device.memory_total_bytes,
            power_watts=_power(simulated, t, process_utilization),
            energy_joules=energy,
            process_utilization=process_utilization,
            pids=frozenset(process_utilization),
        )

    # -- scenario clock ----------------------------------------------------------

    def scenario_seconds(self) -> float:
        """Seconds of scenario time since the backend was built."""
        return max(0.0, (self._clock() - self._wall_origin) * self.speed)

    def allocation_source(self) -> ScenarioAllocationSource:
        """The scenario's pods and allocations on this backend's clock."""
        return ScenarioAllocationSource(self.scenario, self.scenario_seconds)

    # -- energy ----------------------------------------------------------------

    def _energy_at(self, simulated: _SimulatedDevice, t: float) -> float | None:
        """The device's total energy counter at `t`, power integrated from scenario second 0.

        MIG slices report no power or energy (as NVML on MIG devices), so they
        have no counter.  The counter keeps integrating through injected
        faults so it never goes backwards once they end.
        """
        if simulated.mig is not None:
            return None
        counter = self._energy.setdefault(simulated.device.uuid, _EnergyCounter(0.0, 0.0))
        if t > counter.scenario_seconds:
            counter.joules += self._integrate_power(simulated, counter.scenario_seconds, t)
            counter.scenario_seconds = t
        return counter.joules

    def _integrate_power(self, simulated: _SimulatedDevice, begin: float, end: float) -> float:
        steps = min(_MAX_ENERGY_STEPS, max(1, math.ceil((end - begin) / _ENERGY_STEP_SECONDS)))
        width = (end - begin) / steps
        total = 0.0
        previous = self._power_at(simulated, begin)
        for step in range(1, steps + 1):
            current = self._power_at(simulated, begin + step * width)
            total += (previous + current) / 2.0 * width
            previous = current
        return total

    def _power_at(self, simulated: _SimulatedDevice, t: float) -> float:
        power = _power(simulated, t, _process_utilization(simulated, t))
        return power or 0.0


class ScenarioAllocationSource:
    """Who holds which device, read from the scenario at the backend's clock.

    The static allocation source the exporter uses before Kubernetes
    attribution (kubelet pod-resources, API server) is wired in, and the data
    a fake kubelet serves in tests.  `scenario_clock` returns scenario seconds.
    """

    def __init__(self, scenario: Scenario, scenario_clock: Callable[[], float]) -> None:
        self.scenario = scenario
        self._scenario_clock = scenario_clock

    def allocations(self) -> list[DeviceAllocation]:
        return self.scenario.allocations_at(self._scenario_clock())

    def pods(self) -> list[PodMeta]:
        return self.scenario.pods_at(self._scenario_clock())

    def device_ids(self) -> list[ContainerDeviceIds]:
        return self.scenario.device_ids_at(self._scenario_clock())

    def node_info(self) -> NodeInfo:
        return self.scenario.node_info()

    def node_resources(self) -> NodeResourceView:
        """The node's allocatable and the running containers' requests and usage (whole-node cost)."""
        return self.scenario.node_resources_at(self._scenario_clock())

    def pid_to_pod_uid(self, pid: int) -> str | None:
        return self.scenario.pid_to_pod_uid(pid, at=self._scenario_clock())


# -- pure helpers over one device --------------------------------------------------


def _resolve_devices(scenario: Scenario) -> tuple[_SimulatedDevice, ...]:
    processes_by_device: dict[str, list[tuple[ScenarioPod, ScenarioProcess]]] = {}
    for pod in scenario.pods:
        for container in pod.containers:
            for process in container.processes:
                processes_by_device.setdefault(process.device_uuid, []).append((pod, process))
    resolved = []
    for gpu in scenario.gpus:
        migs: list[MigSlice | None] = [None, *gpu.mig_slices]
        for device, mig in zip(gpu.devices(), migs, strict=True):
            resolved.append(
                _SimulatedDevice(
                    device=device,
                    gpu=gpu,
                    mig=mig,
                    processes=tuple(processes_by_device.get(device.uuid, ())),
                )
            )
    return tuple(resolved)


def _process_utilization(simulated: _SimulatedDevice, t: float) -> dict[int, float]:
    """Busy fraction per pid of the processes whose pod runs at `t`."""
    busy: dict[int, float] = {}
    for pod, process in simulated.processes:
        if pod.occurrence_at(t) is not None:
            busy[process.pid] = process.utilization.value_at("utilization", t) or 0.0
    return busy


def _own_timeline_value(simulated: _SimulatedDevice, name: TimelineField, t: float) -> float | None:
    timeline = simulated.mig.timeline if simulated.mig is not None else simulated.gpu.timeline
    if timeline is None:
        return None
    return timeline.value_at(name, t)


def _utilization(
    simulated: _SimulatedDevice, t: float, process_utilization: dict[int, float]
) -> float | None:
    """The device's own timeline, else its processes' sum (capped at 1), else unknown for a MIG parent."""
    own = _own_timeline_value(simulated, "utilization", t)
    if own is not None:
        return own
    if simulated.gpu.mig_enabled and simulated.mig is None:
        return None  # NVML reports no utilization for a MIG-enabled parent
    return min(1.0, sum(process_utilization.values()))


def _memory_used(simulated: _SimulatedDevice, t: float) -> int:
    own = _own_timeline_value(simulated, "memory_used_bytes", t)
    return round(own) if own is not None else 0


def _power(simulated: _SimulatedDevice, t: float, process_utilization: dict[int, float]) -> float | None:
    """The timeline's power, else idle power plus the busy fraction of the dynamic range."""
    if simulated.mig is not None:
        return None  # NVML reports power for the parent GPU only
    own = _own_timeline_value(simulated, "power_watts", t)
    if own is not None:
        return own
    busy = _utilization(simulated, t, process_utilization) or 0.0
    gpu = simulated.gpu
    return gpu.idle_power_watts + busy * (gpu.max_power_watts - gpu.idle_power_watts)
