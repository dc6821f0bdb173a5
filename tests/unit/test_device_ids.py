"""Every device-id format a GPU device plugin advertises maps to the right NVML device."""

from __future__ import annotations

import logging

import pytest

from gpucost.model import GpuDevice
from gpucost.sources.podresources.attribution import attribute
from gpucost.sources.podresources.client import ContainerDeviceAssignment
from gpucost.sources.podresources.device_ids import MappedDevice, map_device_id
from gpucost.sources.podresources.unmapped_log import UnmappedDeviceLog

WHOLE_GPU = "GPU-0b5f3c2e-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
MIG_PARENT = "GPU-7e8f9a0b-1c2d-4e3f-9a4b-5c6d7e8f9a0b"
MIG_3G = "MIG-1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d"
MIG_1G = "MIG-9f8e7d6c-5b4a-5392-8170-6f5e4d3c2b1a"

DEVICES = (
    GpuDevice(uuid=WHOLE_GPU, index="0", model="NVIDIA A100-SXM4-80GB", minor_number=0),
    GpuDevice(uuid=MIG_PARENT, index="1", model="NVIDIA A100-SXM4-80GB", minor_number=1),
    GpuDevice(
        uuid=MIG_3G,
        index="1/mig2",
        model="NVIDIA A100-SXM4-80GB",
        parent_uuid=MIG_PARENT,
        mig_profile="3g.40gb",
        gpu_instance_id=2,
        compute_instance_id=0,
        mig_slices=3,
        parent_slices=7,
    ),
    GpuDevice(
        uuid=MIG_1G,
        index="1/mig9",
        model="NVIDIA A100-SXM4-80GB",
        parent_uuid=MIG_PARENT,
        mig_profile="1g.10gb",
        gpu_instance_id=9,
        compute_instance_id=0,
        mig_slices=1,
        parent_slices=7,
    ),
)


def test_full_gpu_uuid_is_an_exclusive_gpu() -> None:
    assert map_device_id(WHOLE_GPU, DEVICES) == MappedDevice(WHOLE_GPU, None, WHOLE_GPU)


def test_gpu_uuid_with_replica_suffix_is_replica_n_of_that_gpu() -> None:
    assert map_device_id(f"{WHOLE_GPU}::3", DEVICES) == MappedDevice(WHOLE_GPU, 3, WHOLE_GPU)


def test_mig_uuid_is_the_slice_on_its_parent_gpu() -> None:
    assert map_device_id(MIG_3G, DEVICES) == MappedDevice(MIG_3G, None, MIG_PARENT)


def test_mig_uuid_with_replica_suffix_is_replica_n_of_that_slice() -> None:
    assert map_device_id(f"{MIG_1G}::0", DEVICES) == MappedDevice(MIG_1G, 0, MIG_PARENT)


def test_legacy_mig_id_resolves_parent_gpu_instance_and_compute_instance() -> None:
    assert map_device_id(f"MIG-{MIG_PARENT}/9/0", DEVICES) == MappedDevice(MIG_1G, None, MIG_PARENT)
    assert map_device_id(f"MIG-{MIG_PARENT}/2/0", DEVICES) == MappedDevice(MIG_3G, None, MIG_PARENT)


def test_legacy_mig_id_matches_a_slice_whose_compute_instance_nvml_did_not_report() -> None:
    devices = (
        DEVICES[1],
        GpuDevice(uuid=MIG_3G, index="1/mig2", model="A100", parent_uuid=MIG_PARENT, gpu_instance_id=2),
    )
    assert map_device_id(f"MIG-{MIG_PARENT}/2/0", devices) == MappedDevice(MIG_3G, None, MIG_PARENT)


def test_gke_minor_number_is_the_whole_gpu_with_that_minor() -> None:
    assert map_device_id("nvidia0", DEVICES) == MappedDevice(WHOLE_GPU, None, WHOLE_GPU)


def test_gke_gpu_instance_is_the_mig_slice_with_that_gpu_instance_id_on_that_minor() -> None:
    assert map_device_id("nvidia1/gi2", DEVICES) == MappedDevice(MIG_3G, None, MIG_PARENT)
    assert map_device_id("nvidia1/gi9", DEVICES) == MappedDevice(MIG_1G, None, MIG_PARENT)


def test_gke_gpu_instance_falls_back_to_the_minor_of_the_slice_when_the_parent_is_not_listed() -> None:
    only_slice = (
        GpuDevice(
            uuid=MIG_3G,
            index="1/mig2",
            model="A100",
            minor_number=1,
            parent_uuid=MIG_PARENT,
            gpu_instance_id=2,
        ),
    )
    assert map_device_id("nvidia1/gi2", only_slice) == MappedDevice(MIG_3G, None, MIG_PARENT)


def test_gke_vgpu_is_replica_n_of_the_gpu_with_that_minor() -> None:
    assert map_device_id("nvidia0/vgpu1", DEVICES) == MappedDevice(WHOLE_GPU, 1, WHOLE_GPU)


def test_uuid_case_does_not_matter_and_nvml_spelling_is_returned() -> None:
    assert map_device_id(WHOLE_GPU.upper(), DEVICES) == MappedDevice(WHOLE_GPU, None, WHOLE_GPU)


def test_any_other_id_equal_to_a_listed_device_uuid_maps_to_that_device() -> None:
    other_vendor = GpuDevice(uuid="0000:c1:00.0", index="4", model="AMD Instinct MI300X")
    assert map_device_id("0000:c1:00.0", (*DEVICES, other_vendor)) == MappedDevice(
        "0000:c1:00.0", None, "0000:c1:00.0"
    )


@pytest.mark.parametrize(
    "device_id",
    [
        "",
        "0000:3b:00.0",
        "GPU-00000000-0000-0000-0000-000000000000",
        "MIG-00000000-0000-0000-0000-000000000000::1",
        f"MIG-{MIG_PARENT}/5/0",
        f"MIG-{WHOLE_GPU}/2/0",
        "nvidia7",
        "nvidia1/gi5",
        "nvidia7/vgpu0",
        "nvidia0/gi2",
        f"{WHOLE_GPU}::x",
        "gpu0",
    ],
)
def test_an_id_that_names_no_nvml_device_maps_to_nothing(device_id: str) -> None:
    assert map_device_id(device_id, DEVICES) is None


def test_unmappable_ids_are_counted_once_per_resource_and_not_attributed() -> None:
    assignments = [
        ContainerDeviceAssignment("ml", "train-0", "main", "nvidia.com/gpu", (WHOLE_GPU, "GPU-deadbeef")),
        ContainerDeviceAssignment("ml", "train-1", "main", "nvidia.com/gpu", ("gpu-7",)),
        ContainerDeviceAssignment("ml", "infer-0", "main", "nvidia.com/mig-1g.10gb", ("MIG-unknown",)),
    ]
    allocatable = {"nvidia.com/gpu": (WHOLE_GPU, "GPU-deadbeef", "gpu-7")}

    result = attribute(assignments, allocatable, DEVICES)

    assert result.unmapped == {"nvidia.com/gpu": 2, "nvidia.com/mig-1g.10gb": 1}
    assert result.unmapped_ids == (
        ("nvidia.com/gpu", "GPU-deadbeef"),
        ("nvidia.com/gpu", "gpu-7"),
        ("nvidia.com/mig-1g.10gb", "MIG-unknown"),
    )
    assert [(a.uuid, a.container.pod) for a in result.allocations] == [(WHOLE_GPU, "train-0")]


def test_advertised_but_unmappable_ids_are_counted_too() -> None:
    result = attribute([], {"nvidia.com/gpu": ("GPU-gone",)}, DEVICES)
    assert result.unmapped == {"nvidia.com/gpu": 1}


def test_each_unmapped_id_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    log = UnmappedDeviceLog()
    ids = [("nvidia.com/gpu", "GPU-deadbeef"), ("nvidia.com/gpu", "gpu-7")]

    with caplog.at_level(logging.WARNING, logger="gpucost.sources.podresources.unmapped_log"):
        assert log.report(ids) == ids
        assert log.report(ids) == []
        assert log.report([*ids, ("amd.com/gpu", "0000:3b:00.0")]) == [("amd.com/gpu", "0000:3b:00.0")]

    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 3
    assert "'GPU-deadbeef'" in logged[0]
    assert "nvidia.com/gpu" in logged[0]
