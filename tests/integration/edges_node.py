"""A GPU node on a virtual clock for the allocation-edge tests: the real providers, a scripted timeline.

The sampler, `PodResourcesAllocationProvider` (over gRPC to the fake kubelet,
polling on the virtual clock) and `ApiServerMetadataProvider` (watching a
real or fake API server in real time) run in process; each virtual second the
test script changes the kubelet and the API server, waits until the
exporter's watch shows an API change, and ticks the sampler once.  Pod times
are written to the API server on the same virtual clock (unix seconds).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpucost.kube import ApiServerMetadataProvider
from gpucost.model import GpuDevice, GpuSample, NodeInfo, PodMeta, PriceQuote
from gpucost.sampler import Sampler, SamplerSettings
from gpucost.sources.apiserver import ApiServerSource
from gpucost.sources.kept_metadata import KeptKeys
from gpucost.sources.podresources.client import ContainerDeviceAssignment, PodResourcesClient
from gpucost.sources.podresources.provider import PodResourcesAllocationProvider
from gpucost.sources.podresources.source import PodResourcesSource
from gpucost.sources.workload_labels import DEFAULT_WORKLOAD_LABEL_CONFIG, WorkloadLabelMapper
from gpucost_testing.fake_kubelet import FakeKubelet

# 2025-11-28T10:00:00Z: virtual second 0.
EPOCH = datetime(2025, 11, 28, 10, 0, 0, tzinfo=UTC).timestamp()
GPUS = tuple(GpuDevice(f"GPU-9e1d2e3f-000{n}-4f10-8a00-00000000d00{n}", str(n), "NVIDIA H100 80GB HBM3")
             for n in range(4))
PRICE_PER_HOUR = 3.6
LABELS = {"team": "research", "model": "llama", "model-version": "v3", "cost-center": "cc-1",
          "business-unit": "bu-a"}
WORKLOAD = ("research", "llama", "v3", "cc-1", "bu-a")
API_WAIT_SECONDS = 15.0


def kube_time(second: float) -> str:
    """Virtual second `second` as the API server writes a time."""
    return datetime.fromtimestamp(EPOCH + second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def running_status(started: float) -> dict[str, Any]:
    running = {"running": {"startedAt": kube_time(started)}}
    return {"phase": "Running", "containerStatuses": [_container_status(running)]}


def finished_status(started: float, finished: float) -> dict[str, Any]:
    terminated = {"exitCode": 0, "reason": "Completed", "startedAt": kube_time(started),
                  "finishedAt": kube_time(finished)}
    return {"phase": "Succeeded", "containerStatuses": [_container_status({"terminated": terminated})]}


def _container_status(state: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": "main", "ready": False, "restartCount": 0, "image": "registry.invalid/gpucost-test:1",
            "imageID": "", "state": dict(state)}


class VirtualGpus:
    name = "virtual"

    def __init__(self, clock: list[float]) -> None:
        self._clock = clock

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None

    def now(self) -> float:
        return self._clock[0]

    def devices(self) -> Sequence[GpuDevice]:
        return GPUS

    def sample(self, device: GpuDevice) -> GpuSample:
        return GpuSample(device.uuid, self._clock[0], 0.5)


class FlatPrices:
    catalog_as_of = "2025-05-01"
    catalog_source = "test"

    def quote(self, node: NodeInfo, device: GpuDevice, gpus_on_node: int) -> PriceQuote:
        return PriceQuote(PRICE_PER_HOUR, "on_demand")

    def reload_overrides_if_changed(self) -> bool:
        return False


class EdgesNode:
    """Second 0 of the virtual clock is EPOCH; `tick_to(t)` runs the sampler once per second up to t."""

    def __init__(self, kubelet: FakeKubelet, kubeconfig: Path, node_name: str,
                 poll_interval_seconds: float = 10.0, namespace: str = "ml") -> None:
        self.kubelet = kubelet
        self.namespace = namespace
        self._clock = [EPOCH]
        self.listed: dict[str, ContainerDeviceAssignment] = {}
        kubelet.set_allocatable({"nvidia.com/gpu": [gpu.uuid for gpu in GPUS]})
        kubelet.set_pods([])
        self.api = ApiServerSource(node_name, kubeconfig=str(kubeconfig), in_cluster=False,
                                   resync_backoff_max_seconds=0.5,
                                   kept_keys=KeptKeys.for_workload_labels(DEFAULT_WORKLOAD_LABEL_CONFIG))
        self.metadata = ApiServerMetadataProvider(self.api, retention_seconds=600.0)
        self.source = PodResourcesSource(lambda: PodResourcesClient(str(kubelet.socket_path)),
                                         interval_seconds=poll_interval_seconds, clock=self.now)
        self.allocations = PodResourcesAllocationProvider(self.source, pod_uids=self.metadata.pod_uids)
        self.sampler = Sampler(SamplerSettings(DEFAULT_WORKLOAD_LABEL_CONFIG.label_names), VirtualGpus(self._clock),
                               self.allocations, self.metadata, FlatPrices(),
                               WorkloadLabelMapper(DEFAULT_WORKLOAD_LABEL_CONFIG), wall_clock=self.now)

    # --- clock and lifecycle ---------------------------------------------------------------

    def now(self) -> float:
        return self._clock[0]

    @property
    def second(self) -> float:
        return self._clock[0] - EPOCH

    def start(self) -> EdgesNode:
        self.api.start()
        wait_until(lambda: self.api.synced, "the API server's first list")
        self.sampler.tick()
        return self

    def tick_to(self, second: float) -> None:
        while self.second < second:
            self._clock[0] += 1.0
            self.sampler.tick()

    def finish(self, extra_seconds: float = 30.0) -> None:
        """Run past every settle time, then stop (which books what is left)."""
        self.tick_to(self.second + extra_seconds)
        self.sampler.stop()
        self.api.stop()
        self.allocations.close()

    # --- the kubelet ------------------------------------------------------------------------

    def kubelet_lists(self, pod: str, gpu: GpuDevice) -> None:
        self.listed[pod] = ContainerDeviceAssignment(self.namespace, pod, "main", "nvidia.com/gpu", (gpu.uuid,))
        self.kubelet.set_pods(list(self.listed.values()))

    def kubelet_forgets(self, pod: str) -> None:
        del self.listed[pod]
        self.kubelet.set_pods(list(self.listed.values()))

    # --- what the exporter saw and booked ---------------------------------------------------

    def watch_shows(self, pod: str, check: Callable[[PodMeta | None], bool]) -> None:
        wait_until(lambda: check(self.api.pod(self.namespace, pod)), f"the watch to show the change of {pod}")

    def watch_shows_deleted(self, pod: str) -> None:
        """The watch saw the delete: the pod is gone from the live view (its final state stays, marked)."""
        def gone() -> bool:
            return (self.namespace, pod) not in {(p.namespace, p.pod) for p in self.api.pods()}

        wait_until(gone, f"the watch to show the delete of {pod}")

    def gpu_seconds_by_workload(self, pod: str) -> dict[tuple[str, ...], float]:
        totals: dict[tuple[str, ...], float] = defaultdict(float)
        for key, counters in self.sampler.snapshot().ledger.containers.items():
            if key.container.pod == pod:
                totals[key.workload] += counters.gpu_seconds
        return dict(totals)

    def conservation_gaps(self) -> list[float]:
        return [abs(gpu.allocated_usd + gpu.unallocated_usd - gpu.cost_usd)
                for gpu in self.sampler.snapshot().ledger.gpus.values()]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = API_WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
