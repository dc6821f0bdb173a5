"""Shares of each device: exclusive, replicas (time-slicing, MPS), MIG, and their mixes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.attribution import pod_busy_by_device
from gpucost.model import ContainerRef, DeviceAllocation, GpuDevice, GpuSample
from gpucost.sources.podresources.attribution import DEFAULT_RESOURCE_NAMES, attribute, is_gpu_resource
from gpucost.sources.podresources.client import ContainerDeviceAssignment

GPU_A = "GPU-0b5f3c2e-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
GPU_B = "GPU-2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"
MIG_PARENT = "GPU-7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
MIG_3G = "MIG-1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d"
MIG_1G = "MIG-9f8e7d6c-5b4a-5392-8170-6f5e4d3c2b1a"

DEVICES = (
    GpuDevice(uuid=GPU_A, index="0", model="NVIDIA H100 80GB HBM3", minor_number=0),
    GpuDevice(uuid=GPU_B, index="1", model="NVIDIA H100 80GB HBM3", minor_number=1),
    GpuDevice(uuid=MIG_PARENT, index="2", model="NVIDIA H100 80GB HBM3", minor_number=2),
    GpuDevice(
        uuid=MIG_3G,
        index="2/mig2",
        model="NVIDIA H100 80GB HBM3",
        parent_uuid=MIG_PARENT,
        mig_profile="3g.40gb",
        gpu_instance_id=2,
        compute_instance_id=0,
    ),
    GpuDevice(
        uuid=MIG_1G,
        index="2/mig9",
        model="NVIDIA H100 80GB HBM3",
        parent_uuid=MIG_PARENT,
        mig_profile="1g.10gb",
        gpu_instance_id=9,
        compute_instance_id=0,
    ),
)


def held(pod: str, resource: str, *device_ids: str, container: str = "main") -> ContainerDeviceAssignment:
    return ContainerDeviceAssignment("ml", pod, container, resource, device_ids)


def replicas(uuid: str, count: int) -> tuple[str, ...]:
    return tuple(f"{uuid}::{n}" for n in range(count))


def shares_by_pod(allocations: Sequence[DeviceAllocation]) -> dict[tuple[str, str], float]:
    return {(a.container.pod, a.uuid): a.share for a in allocations}


def test_exclusive_gpu_is_held_whole_with_pod_uid_and_resource() -> None:
    result = attribute(
        [held("train-0", "nvidia.com/gpu", GPU_A)],
        {"nvidia.com/gpu": (GPU_A, GPU_B)},
        DEVICES,
        pod_uids={("ml", "train-0"): "uid-train-0"},
    )

    assert result.allocations == (
        DeviceAllocation(GPU_A, ContainerRef("ml", "train-0", "main"), 1.0, "uid-train-0", "nvidia.com/gpu"),
    )
    assert result.sharing_modes[GPU_A] == "exclusive"
    assert result.unmapped == {}


def test_gpu_nobody_holds_has_sharing_mode_none_but_a_mig_carved_gpu_stays_mig() -> None:
    result = attribute([held("train-0", "nvidia.com/gpu", GPU_A)], {}, DEVICES)
    assert result.sharing_modes == {
        GPU_A: "exclusive",
        GPU_B: "none",
        MIG_PARENT: "mig",
        MIG_3G: "mig",
        MIG_1G: "mig",
    }


def test_pod_without_a_known_uid_gets_an_empty_uid() -> None:
    result = attribute([held("train-0", "nvidia.com/gpu", GPU_A)], {}, DEVICES, pod_uids={})
    assert result.allocations[0].pod_uid == ""


def test_three_pods_on_three_of_four_replicas_get_a_quarter_each_and_a_quarter_stays_unallocated() -> None:
    assignments = [held(f"infer-{n}", "nvidia.com/gpu", f"{GPU_A}::{n}") for n in range(3)]

    result = attribute(assignments, {"nvidia.com/gpu": replicas(GPU_A, 4)}, DEVICES)

    assert shares_by_pod(result.allocations) == {(f"infer-{n}", GPU_A): 0.25 for n in range(3)}
    assert sum(a.share for a in result.allocations) == 0.75
    assert result.sharing_modes[GPU_A] == "time_slicing"


def test_replica_count_falls_back_to_configured_replicas_per_gpu_without_allocatable() -> None:
    assignments = [held(f"infer-{n}", "nvidia.com/gpu", f"{GPU_A}::{n}") for n in range(2)]
    result = attribute(assignments, {}, DEVICES, replicas_per_gpu=8)
    assert {a.share for a in result.allocations} == {1 / 8}


def test_replica_count_falls_back_to_replicas_seen_held_without_allocatable_or_config() -> None:
    assignments = [held(f"infer-{n}", "nvidia.com/gpu", f"{GPU_A}::{n}") for n in range(2)]
    result = attribute(assignments, {}, DEVICES)
    assert {a.share for a in result.allocations} == {0.5}


def test_replica_count_is_never_below_the_replicas_held() -> None:
    assignments = [held(f"infer-{n}", "nvidia.com/gpu", f"{GPU_A}::{n}") for n in range(3)]
    result = attribute(assignments, {"nvidia.com/gpu": replicas(GPU_A, 2)}, DEVICES, replicas_per_gpu=2)
    assert {a.share for a in result.allocations} == {1 / 3}


def test_replicas_of_different_gpus_are_counted_per_gpu() -> None:
    assignments = [held("a", "nvidia.com/gpu", f"{GPU_A}::0"), held("b", "nvidia.com/gpu", f"{GPU_B}::0")]
    allocatable = {"nvidia.com/gpu": replicas(GPU_A, 4) + replicas(GPU_B, 2)}
    result = attribute(assignments, allocatable, DEVICES)
    assert shares_by_pod(result.allocations) == {("a", GPU_A): 0.25, ("b", GPU_B): 0.5}


def test_shared_resource_ids_are_replicas_even_without_a_replica_suffix() -> None:
    # A plugin that renames shared GPUs to nvidia.com/gpu.shared but keeps plain uuids per replica.
    assignments = [held("a", "nvidia.com/gpu.shared", GPU_A)]
    result = attribute(assignments, {}, DEVICES, replicas_per_gpu=4)
    assert shares_by_pod(result.allocations) == {("a", GPU_A): 0.25}
    assert result.sharing_modes[GPU_A] == "time_slicing"


def test_shared_resource_with_replica_suffix_uses_advertised_replicas() -> None:
    assignments = [held("a", "nvidia.com/gpu.shared", f"{GPU_A}::1")]
    result = attribute(assignments, {"nvidia.com/gpu.shared": replicas(GPU_A, 2)}, DEVICES)
    assert shares_by_pod(result.allocations) == {("a", GPU_A): 0.5}


def test_gke_time_shared_vgpus_split_the_gpu_by_advertised_replicas() -> None:
    assignments = [held("a", "nvidia.com/gpu", "nvidia1/vgpu0"), held("b", "nvidia.com/gpu", "nvidia1/vgpu2")]
    allocatable = {"nvidia.com/gpu": tuple(f"nvidia1/vgpu{n}" for n in range(4))}
    result = attribute(assignments, allocatable, DEVICES)
    assert shares_by_pod(result.allocations) == {("a", GPU_B): 0.25, ("b", GPU_B): 0.25}
    assert result.sharing_modes[GPU_B] == "time_slicing"


def test_replicas_of_an_mps_resource_are_reported_as_mps() -> None:
    assignments = [
        held("a", "nvidia.com/gpu.shared", f"{GPU_A}::0"),
        held("b", "nvidia.com/gpu", f"{GPU_B}::0"),
    ]
    result = attribute(assignments, {}, DEVICES, mps_resources=["nvidia.com/gpu.shared"])
    assert result.sharing_modes[GPU_A] == "mps"
    assert result.sharing_modes[GPU_B] == "time_slicing"


def test_a_node_configured_for_mps_reports_every_replica_as_mps() -> None:
    result = attribute([held("a", "nvidia.com/gpu", f"{GPU_A}::0")], {}, DEVICES, replica_mode="mps")
    assert result.sharing_modes[GPU_A] == "mps"


def test_mig_slices_are_held_whole_and_their_parent_reports_mig() -> None:
    assignments = [
        held("big", "nvidia.com/mig-3g.40gb", MIG_3G),
        held("small", "nvidia.com/mig-1g.10gb", MIG_1G),
    ]
    result = attribute(assignments, {}, DEVICES)
    assert shares_by_pod(result.allocations) == {("big", MIG_3G): 1.0, ("small", MIG_1G): 1.0}
    assert [a.resource for a in result.allocations] == ["nvidia.com/mig-3g.40gb", "nvidia.com/mig-1g.10gb"]
    assert result.sharing_modes[MIG_PARENT] == "mig"
    assert result.sharing_modes[MIG_3G] == "mig"


def test_replicas_of_a_mig_slice_split_that_slice() -> None:
    assignments = [held("a", "nvidia.com/mig-1g.10gb", f"{MIG_1G}::0")]
    result = attribute(assignments, {"nvidia.com/mig-1g.10gb": replicas(MIG_1G, 2)}, DEVICES)
    assert shares_by_pod(result.allocations) == {("a", MIG_1G): 0.5}
    assert result.sharing_modes[MIG_PARENT] == "mig"


def test_mixed_node_attributes_each_gpu_by_its_own_mode() -> None:
    assignments = [
        held("train", "nvidia.com/gpu", GPU_A),
        held("infer-0", "nvidia.com/gpu.shared", f"{GPU_B}::0"),
        held("infer-1", "nvidia.com/gpu.shared", f"{GPU_B}::1"),
        held("nb", "nvidia.com/mig-1g.10gb", f"MIG-{MIG_PARENT}/9/0"),
        held("train", "example.com/nic", "eth1"),
    ]
    allocatable = {
        "nvidia.com/gpu": (GPU_A,),
        "nvidia.com/gpu.shared": replicas(GPU_B, 4),
        "nvidia.com/mig-1g.10gb": (MIG_1G,),
        "example.com/nic": ("eth1", "eth2"),
    }

    result = attribute(assignments, allocatable, DEVICES)

    assert shares_by_pod(result.allocations) == {
        ("train", GPU_A): 1.0,
        ("infer-0", GPU_B): 0.25,
        ("infer-1", GPU_B): 0.25,
        ("nb", MIG_1G): 1.0,
    }
    assert result.sharing_modes == {
        GPU_A: "exclusive",
        GPU_B: "time_slicing",
        MIG_PARENT: "mig",
        MIG_3G: "mig",
        MIG_1G: "mig",
    }
    assert result.unmapped == {}


def test_resources_that_are_not_gpus_are_ignored_and_extra_names_are_attributed() -> None:
    amd_style = GpuDevice(uuid="0000:c1:00.0", index="3", model="AMD Instinct MI300X")
    assignments = [held("a", "amd.com/gpu", "0000:c1:00.0"), held("b", "example.com/fpga", "0000:c1:00.0")]

    result = attribute(
        assignments, {}, (*DEVICES, amd_style), resource_names=[*DEFAULT_RESOURCE_NAMES, "amd.com/gpu"]
    )

    assert shares_by_pod(result.allocations) == {("a", "0000:c1:00.0"): 1.0}


def test_resource_name_patterns_match_exact_names_and_mig_profiles() -> None:
    assert is_gpu_resource("nvidia.com/gpu", DEFAULT_RESOURCE_NAMES)
    assert is_gpu_resource("nvidia.com/mig-3g.40gb", DEFAULT_RESOURCE_NAMES)
    assert not is_gpu_resource("nvidia.com/gpu-other", DEFAULT_RESOURCE_NAMES)
    assert not is_gpu_resource("amd.com/gpu", DEFAULT_RESOURCE_NAMES)


def test_an_exclusive_device_reported_for_two_containers_is_split_between_them() -> None:
    # Device reuse: the kubelet may report an init container's GPU on the app container too.
    assignments = [
        held("train", "nvidia.com/gpu", GPU_A, container="init"),
        held("train", "nvidia.com/gpu", GPU_A, container="main"),
    ]
    result = attribute(assignments, {}, DEVICES)
    assert [(a.container.container, a.share) for a in result.allocations] == [("init", 0.5), ("main", 0.5)]


def test_a_device_held_whole_and_as_replicas_is_scaled_to_one() -> None:
    assignments = [held("a", "nvidia.com/gpu", GPU_A), held("b", "nvidia.com/gpu.shared", f"{GPU_A}::0")]
    result = attribute(assignments, {"nvidia.com/gpu.shared": replicas(GPU_A, 2)}, DEVICES)
    assert sum(a.share for a in result.allocations) == 1.0
    assert shares_by_pod(result.allocations) == {("a", GPU_A): 2 / 3, ("b", GPU_A): 1 / 3}


_ID_FORMATS = st.sampled_from(
    [
        GPU_A,
        GPU_B,
        MIG_3G,
        MIG_1G,
        *replicas(GPU_A, 6),
        *replicas(MIG_1G, 3),
        "nvidia1/vgpu0",
        "nvidia1/vgpu1",
        "nvidia2/gi2",
        "GPU-unknown",
    ]
)
_RESOURCES = st.sampled_from(["nvidia.com/gpu", "nvidia.com/gpu.shared", "nvidia.com/mig-1g.10gb"])


@settings(max_examples=60, deadline=None)
@given(
    held_ids=st.lists(st.tuples(_RESOURCES, st.lists(_ID_FORMATS, min_size=1, max_size=3)), max_size=8),
    advertised=st.lists(_ID_FORMATS, max_size=10),
    replicas_per_gpu=st.one_of(st.none(), st.integers(min_value=1, max_value=8)),
)
def test_shares_on_any_device_never_add_up_to_more_than_one(
    held_ids: list[tuple[str, list[str]]], advertised: list[str], replicas_per_gpu: int | None
) -> None:
    assignments = [held(f"pod-{n}", resource, *ids) for n, (resource, ids) in enumerate(held_ids)]

    result = attribute(
        assignments, {"nvidia.com/gpu": tuple(advertised)}, DEVICES, replicas_per_gpu=replicas_per_gpu
    )

    per_device: dict[str, float] = defaultdict(float)
    for allocation in result.allocations:
        assert 0.0 < allocation.share <= 1.0
        per_device[allocation.uuid] += allocation.share
    assert all(total <= 1.0 + 1e-9 for total in per_device.values())


def test_per_process_utilization_becomes_busy_time_per_pod_and_only_where_it_was_measured() -> None:
    samples = {
        GPU_A: GpuSample(GPU_A, 1.0, 0.9, process_utilization={10: 0.5, 11: 0.25, 20: 0.1, 99: 0.05}),
        GPU_B: GpuSample(GPU_B, 1.0, 0.4),
        MIG_3G: GpuSample(MIG_3G, 1.0, 0.3, process_utilization={99: 0.3}),
    }
    owners = {10: "uid-a", 11: "uid-a", 20: "uid-b"}
    assert pod_busy_by_device(samples, owners) == {
        GPU_A: {"uid-a": 0.75, "uid-b": 0.1},
        # Measured, but no process in a known pod: nobody's busy time, not a share split.
        MIG_3G: {},
    }
