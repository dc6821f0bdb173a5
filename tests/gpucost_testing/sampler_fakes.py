"""Scriptable sources and prices for driving a `Sampler` in unit tests, and the helpers to tick and check it.

FakeGpus is three L4s on a clock the test moves; FakeAllocations holds one container on GPU-0 and
can fail like a missing kubelet socket; PolledAllocations settles like the kubelet poll (its view
of a moment is final `settle_seconds` later) and keeps a listing history; FlatPrices charges
3.6 USD/h per GPU on demand, so one GPU-second costs PER_SECOND.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from gpucost.attribution import AllocationView, MetadataProvider, StaticMetadataProvider
from gpucost.engine.edges import AllocationEpisode
from gpucost.errors import SourceUnavailable
from gpucost.model import ContainerRef, DeviceAllocation, GpuDevice, GpuSample, NodeInfo, PodMeta, PriceQuote
from gpucost.sampler import Sampler, SamplerSettings
from gpucost.sources.podresources.history import ListingHistory
from gpucost.state import StateFile

__all__ = [
    "GPUS",
    "JOB",
    "PER_SECOND",
    "FakeAllocations",
    "FakeGpus",
    "FlatPrices",
    "PolledAllocations",
    "TeamLabels",
    "assert_conserved",
    "health_by_collector",
    "make_sampler",
    "run_ticks",
]

GPUS = [GpuDevice(f"GPU-{i}", str(i), "NVIDIA L4") for i in range(3)]
JOB = ContainerRef("ml", "job", "main")
PER_SECOND = 3.6 / 3600


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


def make_sampler(gpus: FakeGpus, allocations: FakeAllocations, state: StateFile | None = None,
                 metadata: MetadataProvider | None = None) -> Sampler:
    """A sampler of team labels over `gpus` and `allocations`, its wall clock the GPUs' clock."""
    metadata = metadata or StaticMetadataProvider([PodMeta("ml", "job", labels={"team": "research"})], NodeInfo())
    return Sampler(SamplerSettings(("team",)), gpus, allocations, metadata, FlatPrices(), TeamLabels(), state,
                   wall_clock=lambda: gpus.clock)


def health_by_collector(sampler: Sampler) -> dict[str, bool]:
    return {h.collector: h.success for h in sampler.snapshot().health}


def run_ticks(sampler: Sampler, gpus: FakeGpus, count: int) -> None:
    """`count` ticks, one second of the GPUs' clock apart."""
    for _ in range(count):
        gpus.clock += 1
        sampler.tick()


def assert_conserved(sampler: Sampler) -> None:
    """Every GPU's allocated and unallocated money make its cost."""
    for uuid, gpu in sampler.snapshot().ledger.gpus.items():
        assert gpu.allocated_usd + gpu.unallocated_usd == pytest.approx(gpu.cost_usd, abs=1e-15), uuid
