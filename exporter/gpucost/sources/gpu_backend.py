"""The interface every GPU sampling source implements, and the factory that picks one.

Three implementations exist: `nvml` (the real GPUs through pynvml),
`simulated` (a scenario file, for the demo and the tests) and `none` (a node
without GPUs: whole-node cost only, docs/node-cost.md).  The lead's sampler
calls `sample()` for every device once per interval in a background thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from gpucost.errors import ConfigError
from gpucost.model import GpuDevice, GpuSample

__all__ = ["BACKEND_NAMES", "GpuBackend", "NoGpuBackend", "make_backend"]

BACKEND_NAMES: tuple[str, ...] = ("nvml", "simulated", "none")


class GpuBackend(Protocol):
    """A source of GPU devices and their samples."""

    name: str

    def start(self) -> None:
        """Initialise and enumerate devices; raise SourceUnavailable on failure (the caller retries)."""

    def close(self) -> None:
        """Release the library; a closed backend may be started again."""

    def now(self) -> float:
        """The backend's clock in unix seconds (real: time.time(); simulated: the scenario clock)."""

    def devices(self) -> Sequence[GpuDevice]:
        """Full GPUs, MIG-enabled parents and MIG slices, as enumerated by the last start()."""

    def sample(self, device: GpuDevice) -> GpuSample:
        """Read one device; a device fault gives healthy=False with the error text, never an exception."""


class NoGpuBackend:
    """A node without GPUs: no driver to load, no device to sample, the host's clock.

    The exporter still books and publishes the node's CPU, memory and storage
    cost; with no device, `nvml` reports success on every tick.
    """

    name = "none"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None

    def now(self) -> float:
        return self._clock()

    def devices(self) -> Sequence[GpuDevice]:
        return ()

    def sample(self, device: GpuDevice) -> GpuSample:
        return GpuSample(device.uuid, self._clock(), None, healthy=False, error="no GPU backend on this node")


def make_backend(
    name: str,
    scenario_path: str | Path | None = None,
    speed: float | None = None,
    clock: Callable[[], float] | None = None,
) -> GpuBackend:
    """Build the backend called `name`; the simulated one reads `scenario_path`.

    `speed` overrides the scenario's speed (scenario seconds per wall second).
    Raises ConfigError for an unknown name, a missing scenario path or an
    invalid scenario file.  Nothing is initialised until start().
    """
    if name == "nvml":
        from gpucost.sources.nvml import NvmlGpuBackend

        return NvmlGpuBackend() if clock is None else NvmlGpuBackend(clock=clock)
    if name == "none":
        return NoGpuBackend() if clock is None else NoGpuBackend(clock=clock)
    if name == "simulated":
        from gpucost.sources.scenario import load_scenario
        from gpucost.sources.simulated import SimulatedGpuBackend

        if scenario_path is None or not str(scenario_path):
            raise ConfigError(
                "", "nvml.scenario", scenario_path, "the simulated backend needs a scenario file"
            )
        if speed is not None and speed <= 0:
            raise ConfigError("", "nvml.speed", speed, "must be greater than 0")
        scenario = load_scenario(scenario_path)
        if clock is None:
            return SimulatedGpuBackend(scenario, speed=speed)
        return SimulatedGpuBackend(scenario, speed=speed, clock=clock)
    raise ConfigError("", "nvml.backend", name, f"must be one of {', '.join(BACKEND_NAMES)}")
