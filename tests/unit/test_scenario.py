"""Scenario files: parsing, validation errors with file/key/value, and the pure time queries."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.errors import ConfigError
from gpucost.model import ContainerRef
from gpucost.sources.scenario import Scenario, load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
EIGHT = SCENARIOS / "eight_gpus_static.yaml"
MIG = SCENARIOS / "mig_and_timeslicing.yaml"
CHURN = SCENARIOS / "churn.yaml"

GPU0 = "GPU-0a6b3c1e-8d2f-4e57-9a10-3b7c5d9e0f10"
JOB_GPU = "GPU-5fb08163-d274-43ac-8f65-80c1a2435e65"
SLICED_GPU = "GPU-ab2c3d4e-5f60-4b7c-9d8e-0f1a2b3c4d51"
MIG_PARENT = "GPU-9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c40"
MIG_3G = "MIG-3a4b5c6d-7e8f-5091-a2b3-c4d5e6f70801"
MIG_LAST_1G = "MIG-6d7e8f90-a1b2-53c4-d5e6-f708192a3b04"


def raw(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def minimal() -> dict[str, Any]:
    return {
        "node": {"name": "n1", "labels": {"node.kubernetes.io/instance-type": "p4d.24xlarge"}},
        "gpus": [
            {"uuid": "GPU-a", "index": 0, "model": "NVIDIA A100-SXM4-80GB", "memory": "80GiB"},
            {"uuid": "GPU-b", "index": 1, "model": "NVIDIA A100-SXM4-80GB", "memory": 85899345920},
        ],
        "pods": [
            {
                "namespace": "ns",
                "name": "p",
                "uid": "u1",
                "containers": [{"name": "c", "devices": ["GPU-a"]}],
            }
        ],
    }


def error_for(document: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_scenario(document, "bad.yaml")
    return caught.value


# -- the fixtures ------------------------------------------------------------------


def test_eight_gpu_fixture_describes_a_p4d_node_with_eight_a100s() -> None:
    scenario = load_scenario(EIGHT)
    node = scenario.node_info()
    assert node.instance_type == "p4d.24xlarge"
    assert node.region == "us-east-1"
    assert node.labels["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
    devices = scenario.devices()
    assert [device.index for device in devices] == [str(index) for index in range(8)]
    assert {device.model for device in devices} == {"NVIDIA A100-SXM4-80GB"}
    assert all(device.memory_total_bytes == 81920 * 2**20 for device in devices)


def test_eight_gpu_fixture_allocates_six_gpus_while_the_job_runs_and_five_otherwise() -> None:
    scenario = load_scenario(EIGHT)
    held_at = {t: {a.uuid for a in scenario.allocations_at(t)} for t in (0, 19.9, 20, 59.9, 60)}
    assert len(held_at[0]) == 5
    assert JOB_GPU not in held_at[19.9]
    assert JOB_GPU in held_at[20] and JOB_GPU in held_at[59.9]
    assert JOB_GPU not in held_at[60]
    trainer = [a for a in scenario.allocations_at(30) if a.container.pod == "llama-70b-pretrain-worker-0"]
    assert len(trainer) == 4 and all(a.share == 1.0 for a in trainer)
    assert {a.pod_uid for a in trainer} == {"5b0f6a53-1c8e-4d47-a1f3-2f5e8c7d9a01"}


def test_pods_at_carries_labels_annotations_and_owner() -> None:
    scenario = load_scenario(EIGHT)
    ranker = next(pod for pod in scenario.pods_at(0) if pod.pod.startswith("ranker"))
    assert ranker.namespace == "search"
    assert ranker.labels["team"] == "search" and ranker.labels["model"] == "ranker"
    assert ranker.annotations == {"gpucost.io/note": "latency-critical"}
    assert (ranker.owner_kind, ranker.owner_name) == ("ReplicaSet", "ranker-7d9f8c6b5")
    assert [pod.pod for pod in scenario.pods_at(70)].count("eval-llama-70b-mmlu-6q2wz") == 0


def test_mig_fixture_lists_parent_then_slices_with_profiles_and_fractions() -> None:
    scenario = load_scenario(MIG)
    by_uuid = {device.uuid: device for device in scenario.devices()}
    parent = by_uuid[MIG_PARENT]
    assert not parent.is_mig
    slice_3g = by_uuid[MIG_3G]
    assert slice_3g.parent_uuid == MIG_PARENT
    assert slice_3g.mig_profile == "3g.40gb"
    assert slice_3g.index == "0/mig2"
    assert slice_3g.gpu_instance_id == 2
    assert slice_3g.price_fraction == pytest.approx(3 / 7)
    assert slice_3g.minor_number == parent.minor_number == 0
    profiles = [d.mig_profile for d in scenario.devices() if d.parent_uuid == MIG_PARENT]
    assert profiles == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]


def test_mig_slices_are_held_whole_and_the_last_slice_is_unallocated() -> None:
    scenario = load_scenario(MIG)
    allocations = scenario.allocations_at(10)
    mig_held = {a.uuid: a for a in allocations if a.uuid.startswith("MIG-")}
    assert len(mig_held) == 3 and MIG_LAST_1G not in mig_held
    assert mig_held[MIG_3G].share == 1.0
    assert mig_held[MIG_3G].resource == "nvidia.com/mig-3g.40gb"


def test_time_sliced_replicas_each_hold_one_over_replicas_of_the_gpu() -> None:
    scenario = load_scenario(MIG)
    sliced = [a for a in scenario.allocations_at(10) if a.uuid == SLICED_GPU]
    assert len(sliced) == 3
    assert all(a.share == pytest.approx(0.25) for a in sliced)
    assert sum(a.share for a in sliced) == pytest.approx(0.75)  # one replica stays unallocated


def test_device_ids_at_gives_kubelet_style_ids_and_resource_names() -> None:
    scenario = load_scenario(MIG)
    listed = {held.container: held for held in scenario.device_ids_at(10)}
    chat = listed[ContainerRef("inference", "chat-small-6b8d-aaaaa", "server")]
    assert chat.device_ids == (f"{SLICED_GPU}::0",)
    assert chat.resource == "nvidia.com/gpu"
    trainer = listed[ContainerRef("research", "finetune-mistral-7b-0", "trainer")]
    assert trainer.device_ids == (MIG_3G,)
    assert trainer.resource == "nvidia.com/mig-3g.40gb"
    assert trainer.pod_uid == "0a1b2c3d-1111-4aaa-8bbb-000000000001"


def test_containers_without_devices_hold_nothing() -> None:
    scenario = load_scenario(EIGHT)
    containers = {held.container.container for held in scenario.device_ids_at(0)}
    assert "metrics-sidecar" not in containers


def test_pid_to_pod_uid_finds_the_declaring_pod() -> None:
    scenario = load_scenario(EIGHT)
    assert scenario.pid_to_pod_uid(41003) == "5b0f6a53-1c8e-4d47-a1f3-2f5e8c7d9a01"
    assert scenario.pid_to_pod_uid(63001, at=30) == "1f7a9c3e-5b2d-4e81-9c6f-0d4b8e2a7c03"
    assert scenario.pid_to_pod_uid(63001, at=61) is None
    assert scenario.pid_to_pod_uid(999999) is None


def test_recurring_pods_get_a_new_name_and_uid_per_occurrence() -> None:
    scenario = load_scenario(CHURN)
    smoke = [pod for pod in scenario.pods_at(26) if pod.namespace == "ci"]
    assert [(pod.pod, pod.uid) for pod in smoke] == [
        ("gpu-smoke-1", "9e000000-0000-4000-8000-000000000003-1")
    ]
    assert not [pod for pod in scenario.pods_at(16) if pod.namespace == "ci"]
    assert scenario.pid_to_pod_uid(81003, at=47) == "9e000000-0000-4000-8000-000000000003-2"


def test_churn_pods_last_between_10_and_90_seconds_and_gpus_go_unallocated_between_them() -> None:
    scenario = load_scenario(CHURN)
    for pod in scenario.pods:
        assert pod.end is not None and 10 <= pod.end - pod.start <= 90
    gpu0 = "GPU-d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e501"
    held = [t for t in range(0, 200) if any(a.uuid == gpu0 for a in scenario.allocations_at(t))]
    assert 0 < len(held) < 200
    assert 35 not in held and 135 not in held


def test_duration_defaults_to_the_latest_moment_the_file_mentions() -> None:
    document = minimal()
    document["pods"][0]["end"] = 42
    document["faults"] = [{"gpu": "GPU-b", "from": 10, "to": 50}]
    assert parse_scenario(document).duration == 50
    assert load_scenario(EIGHT).duration == 120


def test_memory_sizes_accept_binary_and_decimal_units() -> None:
    document = minimal()
    document["gpus"][0]["memory"] = "40GB"
    scenario = parse_scenario(document)
    assert scenario.gpus[0].memory_total_bytes == 40 * 10**9
    assert scenario.gpus[1].memory_total_bytes == 80 * 2**30


def test_timeline_steps_by_default_and_ramps_linearly_when_asked() -> None:
    document = minimal()
    document["gpus"][0]["timeline"] = [
        {"at": 0, "utilization": 0.2, "ramp": "linear"},
        {"at": 10, "utilization": 0.6},
        {"at": 20, "utilization": 0.1},
    ]
    timeline = parse_scenario(document).gpus[0].timeline
    assert timeline is not None
    assert timeline.value_at("utilization", 5) == pytest.approx(0.4)
    assert timeline.value_at("utilization", 15) == pytest.approx(0.6)
    assert timeline.value_at("utilization", 1000) == pytest.approx(0.1)
    assert timeline.value_at("power_watts", 5) is None


def test_repeat_every_loops_the_timeline_and_ramps_back_to_the_first_point() -> None:
    document = minimal()
    document["gpus"][0]["repeat_every"] = 40
    document["gpus"][0]["timeline"] = [
        {"at": 0, "utilization": 0.0},
        {"at": 20, "utilization": 1.0, "ramp": "linear"},
    ]
    timeline = parse_scenario(document).gpus[0].timeline
    assert timeline is not None
    assert timeline.value_at("utilization", 10) == 0.0
    assert timeline.value_at("utilization", 30) == pytest.approx(0.5)
    assert timeline.value_at("utilization", 110) == pytest.approx(0.5)
    assert timeline.value_at("utilization", 85) == 0.0


# -- validation: every error names file, key path and value --------------------------


def test_utilization_out_of_range_names_the_key_path_and_value() -> None:
    document = copy.deepcopy(raw(EIGHT))
    document["gpus"][2]["timeline"][0]["utilization"] = 1.5
    error = error_for(document)
    assert error.file == "bad.yaml"
    assert error.key_path == "gpus[2].timeline[0].utilization"
    assert error.value == 1.5
    assert "gpus[2].timeline[0].utilization" in str(error) and "1.5" in str(error)


@pytest.mark.parametrize(
    ("mutate", "key_path", "value"),
    [
        (lambda d: d["gpus"][0].update(uuid="0a6b"), "gpus[0].uuid", "0a6b"),
        (lambda d: d["gpus"][1].update(index=0), "gpus[1].index", 0),
        (lambda d: d["gpus"][0].update(memory="lots"), "gpus[0].memory", "lots"),
        (lambda d: d["gpus"][0].update(colour="green"), "gpus[0].colour", "colour"),
        (lambda d: d.update(speed=0), "speed", 0),
        (lambda d: d["node"].pop("name"), "node.name", None),
        (
            lambda d: d["pods"][0]["containers"][0].update(devices=["GPU-zzz"]),
            "pods[0].containers[0].devices[0]",
            "GPU-zzz",
        ),
        (
            lambda d: d["pods"][0]["containers"][0].update(devices=["GPU-a::1"]),
            "pods[0].containers[0].devices[0]",
            "GPU-a::1",
        ),
        (lambda d: d["pods"][0].update(start=10, end=5), "pods[0].end", 5),
        (lambda d: d.update(faults=[{"gpu": "GPU-zzz", "from": 1, "to": 2}]), "faults[0].gpu", "GPU-zzz"),
        (
            lambda d: d.update(faults=[{"gpu": "GPU-a", "from": 1, "to": 2, "kind": "melt"}]),
            "faults[0].kind",
            "melt",
        ),
    ],
)
def test_invalid_values_raise_config_error_with_key_path_and_value(
    mutate: Any, key_path: str, value: object
) -> None:
    document = minimal()
    mutate(document)
    error = error_for(document)
    assert (error.key_path, error.value) == (key_path, value)


def test_a_gpu_held_by_two_pods_at_once_is_rejected() -> None:
    document = minimal()
    second = copy.deepcopy(document["pods"][0])
    second.update(name="q", uid="u2", start=5)
    document["pods"].append(second)
    error = error_for(document)
    assert error.key_path == "pods[1].start"
    assert "GPU-a" in error.problem


def test_a_shared_gpu_must_be_requested_by_replica_id() -> None:
    document = minimal()
    document["gpus"][0].update(sharing="time_slicing", replicas=4)
    error = error_for(document)
    assert error.key_path == "pods[0].containers[0].devices[0]"
    assert "replica" in error.problem


def test_mig_slices_may_not_exceed_the_parent_and_the_parent_cannot_be_requested() -> None:
    document = minimal()
    document["gpus"][1]["mig"] = {
        "slices": [
            {"uuid": "MIG-1", "profile": "4g.40gb", "gpu_instance_id": 1},
            {"uuid": "MIG-2", "profile": "4g.40gb", "gpu_instance_id": 2},
        ]
    }
    assert error_for(document).key_path == "gpus[1].mig.slices"
    document["gpus"][1]["mig"]["slices"].pop()
    document["pods"][0]["containers"][0]["devices"] = ["GPU-b"]
    assert "MIG is enabled" in error_for(document).problem


def test_a_process_must_run_on_a_device_its_container_holds() -> None:
    document = minimal()
    document["pods"][0]["containers"][0]["processes"] = [{"pid": 7, "device": "GPU-b", "utilization": 0.5}]
    error = error_for(document)
    assert (error.key_path, error.value) == ("pods[0].containers[0].processes[0].device", "GPU-b")


def test_a_field_given_in_some_timeline_points_only_is_rejected() -> None:
    document = minimal()
    document["gpus"][0]["timeline"] = [
        {"at": 0, "utilization": 0.1, "power_watts": 90},
        {"at": 5, "utilization": 0.2},
    ]
    assert error_for(document).key_path == "gpus[0].timeline[1].power_watts"


def test_timeline_points_must_be_in_time_order() -> None:
    document = minimal()
    document["gpus"][0]["timeline"] = [{"at": 5, "utilization": 0.1}, {"at": 5, "utilization": 0.2}]
    assert error_for(document).key_path == "gpus[0].timeline[1].at"


def test_unreadable_and_malformed_files_raise_config_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_scenario(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(missing.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("gpus: [unclosed\n")
    with pytest.raises(ConfigError) as malformed:
        load_scenario(broken)
    assert malformed.value.file == str(broken)


def test_scenario_is_frozen() -> None:
    scenario = load_scenario(EIGHT)
    assert isinstance(scenario, Scenario)
    with pytest.raises(AttributeError):
        scenario.speed = 2.0  # type: ignore[misc]
