"""The pod-resources client and cached source against a real gRPC server on a unix socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import grpc
import pytest

from gpucost.errors import SourceUnavailable
from gpucost.model import GpuDevice
from gpucost.sources.podresources.attribution import attribute
from gpucost.sources.podresources.client import ContainerDeviceAssignment, PodResourcesClient
from gpucost.sources.podresources.provider import PodResourcesAllocationProvider
from gpucost.sources.podresources.source import PodResourcesSource
from gpucost_testing.fake_kubelet import FakeKubelet, GetMode

pytestmark = pytest.mark.integration

GPU_A = "GPU-0b5f3c2e-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
GPU_B = "GPU-2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"
MIG_PARENT = "GPU-7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
MIG_1G = "MIG-9f8e7d6c-5b4a-5392-8170-6f5e4d3c2b1a"

PODS = [
    ContainerDeviceAssignment("ml", "train-0", "main", "nvidia.com/gpu", (GPU_A,)),
    ContainerDeviceAssignment("ml", "infer-0", "server", "nvidia.com/gpu.shared", (f"{GPU_B}::0",)),
    ContainerDeviceAssignment("ml", "infer-1", "server", "nvidia.com/gpu.shared", (f"{GPU_B}::1",)),
    ContainerDeviceAssignment("ml", "infer-1", "sidecar", "example.com/nic", ("eth1",)),
    ContainerDeviceAssignment("nb", "notebook", "jupyter", "nvidia.com/mig-1g.10gb", ("nvidia2/gi9",)),
]
ALLOCATABLE = {
    "nvidia.com/gpu": (GPU_A,),
    "nvidia.com/gpu.shared": tuple(f"{GPU_B}::{n}" for n in range(4)),
    "nvidia.com/mig-1g.10gb": ("nvidia2/gi9",),
}
DEVICES = (
    GpuDevice(uuid=GPU_A, index="0", model="NVIDIA H100 80GB HBM3", minor_number=0),
    GpuDevice(uuid=GPU_B, index="1", model="NVIDIA H100 80GB HBM3", minor_number=1),
    GpuDevice(uuid=MIG_PARENT, index="2", model="NVIDIA H100 80GB HBM3", minor_number=2),
    GpuDevice(
        uuid=MIG_1G, index="2/mig9", model="NVIDIA H100 80GB HBM3", parent_uuid=MIG_PARENT, gpu_instance_id=9
    ),
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def kubelet() -> Iterator[FakeKubelet]:
    with FakeKubelet() as server:
        server.set_pods(PODS)
        server.set_allocatable(ALLOCATABLE)
        yield server


@pytest.fixture
def client(kubelet: FakeKubelet) -> Iterator[PodResourcesClient]:
    with PodResourcesClient(str(kubelet.socket_path), timeout_seconds=2.0) as pod_resources:
        yield pod_resources


def make_source(kubelet: FakeKubelet, clock: ManualClock, **options: float) -> PodResourcesSource:
    return PodResourcesSource(
        lambda: PodResourcesClient(str(kubelet.socket_path), timeout_seconds=0.3), clock=clock, **options
    )


# --- client ------------------------------------------------------------------------------


def test_list_returns_every_containers_devices_as_the_kubelet_sent_them(client: PodResourcesClient) -> None:
    assert sorted(client.list(), key=repr) == sorted(PODS, key=repr)


def test_allocatable_merges_the_kubelets_per_device_entries_by_resource(client: PodResourcesClient) -> None:
    assert client.allocatable() == ALLOCATABLE


def test_get_returns_the_devices_of_one_pod(client: PodResourcesClient, kubelet: FakeKubelet) -> None:
    assert sorted(client.get("ml", "infer-1"), key=repr) == sorted(PODS[2:4], key=repr)
    assert kubelet.calls == {"Get": 1}


def test_get_of_a_pod_the_kubelet_does_not_know_is_empty(client: PodResourcesClient) -> None:
    assert client.get("ml", "gone-0") == []


@pytest.mark.parametrize("get_mode", ["disabled", "unimplemented"])
def test_get_falls_back_to_filtering_list_when_the_kubelet_does_not_serve_it(
    client: PodResourcesClient, kubelet: FakeKubelet, get_mode: GetMode
) -> None:
    kubelet.get_mode = get_mode

    assert client.get("ml", "train-0") == [PODS[0]]
    assert client.get("nb", "notebook") == [PODS[4]]
    # Get is tried once; afterwards the client goes straight to List.
    assert kubelet.calls == {"Get": 1, "List": 2}


def test_a_hanging_kubelet_gives_deadline_exceeded_within_the_timeout(kubelet: FakeKubelet) -> None:
    kubelet.hang("List")
    with PodResourcesClient(str(kubelet.socket_path), timeout_seconds=0.2) as client:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="DEADLINE_EXCEEDED"):
            client.list()
        assert time.monotonic() - started < 2.0


def test_a_failing_call_raises_source_unavailable_with_the_status(
    client: PodResourcesClient, kubelet: FakeKubelet
) -> None:
    kubelet.fail(grpc.StatusCode.PERMISSION_DENIED, "no access", method="GetAllocatableResources")
    with pytest.raises(SourceUnavailable, match="PERMISSION_DENIED: no access"):
        client.allocatable()
    assert client.list()  # other methods unaffected


def test_a_missing_socket_raises_source_unavailable(client: PodResourcesClient, kubelet: FakeKubelet) -> None:
    kubelet.stop()
    with pytest.raises(SourceUnavailable, match="missing"):
        client.list()


def test_a_socket_file_nobody_listens_on_raises_source_unavailable(kubelet: FakeKubelet) -> None:
    kubelet.stop()
    # A kubelet that died leaves its socket file behind; connecting is refused.
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(kubelet.socket_path))
    leftover.close()
    with (
        PodResourcesClient(str(kubelet.socket_path), timeout_seconds=1.0) as client,
        pytest.raises(SourceUnavailable, match="UNAVAILABLE"),
    ):
        client.list()
    kubelet.socket_path.unlink()


def test_the_client_reaches_a_restarted_kubelet_on_its_first_call(
    client: PodResourcesClient, kubelet: FakeKubelet
) -> None:
    assert client.list()
    kubelet.stop()
    kubelet.set_pods(PODS[:1])
    kubelet.start()
    assert client.list() == PODS[:1]


# --- cached source -------------------------------------------------------------------------


def test_poll_in_a_tight_loop_lists_at_most_once_per_interval(kubelet: FakeKubelet) -> None:
    clock = ManualClock()
    source = make_source(kubelet, clock, interval_seconds=10.0)
    for _ in range(500):  # 50 s of a loop spinning every 100 ms
        source.poll_if_due()
        clock.advance(0.1)
    source.close()
    assert kubelet.calls["List"] == 5
    assert kubelet.calls["GetAllocatableResources"] == 5


def test_poll_on_the_real_clock_lists_once_however_often_it_is_called(kubelet: FakeKubelet) -> None:
    source = PodResourcesSource(lambda: PodResourcesClient(str(kubelet.socket_path)), interval_seconds=10.0)
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        source.poll_if_due()
    source.close()
    assert kubelet.calls["List"] == 1


def test_source_is_unhealthy_before_the_first_poll_and_healthy_after(kubelet: FakeKubelet) -> None:
    source = make_source(kubelet, ManualClock())
    assert not source.healthy
    assert source.assignments() is None
    source.poll_if_due()
    assert source.healthy
    assert source.last_error == ""
    assert sorted(source.assignments() or [], key=repr) == sorted(PODS, key=repr)
    assert source.allocatable() == ALLOCATABLE
    source.close()


def test_socket_gone_for_a_while_keeps_the_last_allocation_and_recovers_by_itself(
    kubelet: FakeKubelet,
) -> None:
    clock = ManualClock()
    source = make_source(kubelet, clock, interval_seconds=10.0, max_staleness_seconds=300.0)
    source.poll_if_due()
    good = source.assignments()

    kubelet.stop()
    for _ in range(6):  # a minute without the kubelet
        clock.advance(10.0)
        source.poll_if_due()
        assert not source.healthy
        assert "missing" in source.last_error
        assert source.assignments() == good

    kubelet.set_pods(PODS[:2])
    kubelet.start()
    clock.advance(10.0)
    source.poll_if_due()
    assert source.healthy
    assert source.last_error == ""
    assert source.assignments() == PODS[:2]
    source.close()


def test_the_last_allocation_is_dropped_once_older_than_max_staleness(kubelet: FakeKubelet) -> None:
    clock = ManualClock()
    source = make_source(kubelet, clock, interval_seconds=10.0, max_staleness_seconds=30.0)
    source.poll_if_due()
    kubelet.stop()
    clock.advance(30.0)
    source.poll_if_due()
    assert source.assignments() is not None
    clock.advance(0.5)
    assert source.assignments() is None
    assert source.allocatable() is None
    assert source.age_seconds() == 30.5
    source.close()


def test_a_deadline_exceeded_poll_marks_the_source_unhealthy_until_the_kubelet_answers(
    kubelet: FakeKubelet,
) -> None:
    clock = ManualClock()
    source = make_source(kubelet, clock)
    kubelet.hang("List")
    source.poll_if_due()
    assert not source.healthy
    assert "DEADLINE_EXCEEDED" in source.last_error
    kubelet.recover()
    clock.advance(10.0)
    source.poll_if_due()
    assert source.healthy
    source.close()


def test_a_kubelet_without_get_allocatable_resources_still_serves_assignments(kubelet: FakeKubelet) -> None:
    kubelet.fail(grpc.StatusCode.UNIMPLEMENTED, "unknown method", method="GetAllocatableResources")
    source = make_source(kubelet, ManualClock())
    source.poll_if_due()
    assert source.healthy
    assert source.allocatable() == {}
    assert len(source.assignments() or []) == len(PODS)
    source.close()


def test_kubelet_answers_flow_through_attribution_to_shares(kubelet: FakeKubelet) -> None:
    source = make_source(kubelet, ManualClock())
    source.poll_if_due()

    result = attribute(
        source.assignments() or [],
        source.allocatable() or {},
        DEVICES,
        pod_uids={("ml", "train-0"): "0f2b6c3a-7d41-4a4e-9a51-3c2d1e0b9f88"},
    )
    source.close()

    shares = {(a.container.pod, a.uuid): (a.share, a.pod_uid) for a in result.allocations}
    assert shares == {
        ("train-0", GPU_A): (1.0, "0f2b6c3a-7d41-4a4e-9a51-3c2d1e0b9f88"),
        ("infer-0", GPU_B): (0.25, ""),
        ("infer-1", GPU_B): (0.25, ""),
        ("notebook", MIG_1G): (1.0, ""),
    }
    assert result.sharing_modes == {
        GPU_A: "exclusive",
        GPU_B: "time_slicing",
        MIG_PARENT: "mig",
        MIG_1G: "mig",
    }


# --- as the sampler's allocation provider ----------------------------------------------------


def test_provider_serves_the_last_view_while_the_kubelet_is_away_and_reports_the_failure(
    kubelet: FakeKubelet,
) -> None:
    clock = ManualClock()
    provider = PodResourcesAllocationProvider(
        make_source(kubelet, clock, max_staleness_seconds=60.0),
        pod_uids=lambda: {("ml", "train-0"): "uid-train-0"},
    )
    provider.refresh(DEVICES, now=0.0)
    view = provider.current()
    assert {(a.container.pod, a.pod_uid) for a in view.allocations} >= {("train-0", "uid-train-0")}
    assert view.sharing_modes[GPU_B] == "time_slicing"

    kubelet.stop()
    clock.advance(10.0)
    with pytest.raises(SourceUnavailable, match="missing"):
        provider.refresh(DEVICES, now=10.0)
    assert provider.current() == view

    clock.advance(60.0)
    with pytest.raises(SourceUnavailable):
        provider.refresh(DEVICES, now=70.0)
    assert provider.current().allocations == ()
    provider.close()


def test_provider_counts_unmapped_ids_and_attributes_extra_resource_names(kubelet: FakeKubelet) -> None:
    kubelet.set_pods(
        [
            ContainerDeviceAssignment("ml", "a", "main", "nvidia.com/gpu", (GPU_A, "GPU-not-on-this-node")),
            ContainerDeviceAssignment("ml", "b", "main", "example.com/accel", ("accel-0",)),
        ]
    )
    accel = GpuDevice(uuid="accel-0", index="3", model="Example Accelerator")
    provider = PodResourcesAllocationProvider(
        make_source(kubelet, ManualClock()), extra_resource_names=["example.com/accel"]
    )
    provider.refresh((*DEVICES, accel), now=0.0)
    view = provider.current()
    assert {(a.container.pod, a.uuid) for a in view.allocations} == {("a", GPU_A), ("b", "accel-0")}
    assert view.unmapped == {"nvidia.com/gpu": 1}
    provider.close()
