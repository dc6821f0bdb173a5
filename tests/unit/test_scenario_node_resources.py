"""The simulated node drives whole-node cost: allocatable, requests and usage timelines, and a node with no GPU."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gpucost.attribution import ScenarioMetadataProvider, ScenarioNodeResourceProvider
from gpucost.errors import ConfigError
from gpucost.model import ContainerRef
from gpucost.sources.gpu_backend import NoGpuBackend, make_backend
from gpucost.sources.scenario import load_scenario, parse_scenario
from gpucost.sources.simulated import SimulatedGpuBackend

REPO = Path(__file__).resolve().parents[2]
CPU_NODE = REPO / "tests" / "fixtures" / "scenarios" / "cpu_node.yaml"
DEMO = REPO / "examples" / "gpucost_demo" / "scenario.yaml"
GIB = 2.0**30
MIB = 2.0**20
WEB = ContainerRef("shop", "frontend-5c7f9d8b4-abcde", "web")

DOCUMENT: dict[str, Any] = {
    "node": {"name": "n1", "allocatable": {"cpu": "15890m", "memory": "57Gi", "storage": 1e11}},
    "gpus": [],
    "pods": [{
        "namespace": "shop", "name": "api", "uid": "u1",
        "containers": [{
            "name": "main",
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "usage": [{"at": 0, "cpu": 0.2, "memory": "512Mi"}, {"at": 100, "cpu": 1, "memory": "1Gi"}],
        }],
    }],
}


def _document(**container: object) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["pods"][0]["containers"][0].update(container)
    return document


def test_the_no_gpu_fixture_is_a_node_with_cpu_memory_and_storage_and_no_device() -> None:
    scenario = load_scenario(CPU_NODE)
    assert scenario.gpus == () and scenario.devices() == ()
    assert scenario.node_info().instance_type == "m5.4xlarge"
    assert scenario.node_info().allocatable == {"cpu": 15.89, "memory": 57 * GIB, "storage": 76224326324.0}


def test_the_running_containers_requests_and_usage_follow_the_scenario_clock() -> None:
    scenario = load_scenario(CPU_NODE)
    at_start = {c.container: c for c in scenario.node_resources_at(0.0).containers}
    assert set(at_start) == {WEB, ContainerRef("shop", "frontend-5c7f9d8b4-abcde", "log-shipper"),
                             ContainerRef("shop", "queue-worker-0", "worker")}, "the report Job starts at 600"
    assert at_start[WEB].requests == {"cpu": 0.5, "memory": 512 * MIB, "storage": GIB}
    assert at_start[WEB].usage == {"cpu": pytest.approx(0.2), "memory": pytest.approx(400 * MIB)}
    assert at_start[WEB].pod_uid == "7a0c9e51-0001-4c2d-9e8f-0a1b2c3d4e01"
    halfway = {c.container: c for c in scenario.node_resources_at(900.0).containers}
    assert halfway[WEB].usage["cpu"] == pytest.approx(0.2 + 0.7 * 900 / 1800), "a linear ramp"
    report = halfway[ContainerRef("analytics", "nightly-report", "report")]
    assert report.requests == {"cpu": 4.0, "memory": 16 * GIB} and report.usage == {}, "no usage: unknown"
    assert {c.container for c in scenario.node_resources_at(7200.0 + 900.0).containers} == set(at_start)


def test_the_metadata_lists_the_pods_with_their_requests() -> None:
    clock = [0.0]
    backend = SimulatedGpuBackend(load_scenario(CPU_NODE), clock=lambda: clock[0])
    metadata = ScenarioMetadataProvider(backend.allocation_source())
    metadata.refresh(0.0)
    pods = {pod.pod: pod for pod in metadata.pods()}
    assert pods["queue-worker-0"].container_requests == {"worker": {"cpu": 1.0, "memory": 2 * GIB}}
    clock[0] = 900.0
    metadata.refresh(900.0)
    assert "nightly-report" in {pod.pod for pod in metadata.pods()}


def test_the_scenario_provider_reports_as_the_kubelet_and_answers_with_its_last_refresh() -> None:
    clock = [0.0]
    backend = SimulatedGpuBackend(load_scenario(CPU_NODE), clock=lambda: clock[0])
    provider = ScenarioNodeResourceProvider(backend.allocation_source())
    assert provider.name == "kubelet_resource"
    assert provider.current().containers == (), "nothing before the first refresh"
    provider.refresh(0.0)
    assert len(provider.current().containers) == 3
    assert provider.current().allocatable["cpu"] == 15.89
    clock[0] = 900.0
    assert len(provider.current().containers) == 3, "the view moves on refresh only"
    provider.refresh(900.0)
    assert len(provider.current().containers) == 4


def test_the_simulated_backend_on_a_no_gpu_node_starts_and_lists_no_device() -> None:
    backend = make_backend("simulated", CPU_NODE, speed=1.0)
    backend.start()
    assert backend.devices() == ()


def test_the_none_backend_is_a_node_without_gpus_on_the_hosts_clock() -> None:
    backend = make_backend("none", clock=lambda: 1234.5)
    assert isinstance(backend, NoGpuBackend) and backend.name == "none"
    backend.start()
    assert backend.devices() == ()
    assert backend.now() == 1234.5


def test_the_demo_scenario_gives_its_containers_requests_and_usage() -> None:
    scenario = load_scenario(DEMO)
    assert scenario.node_allocatable["cpu"] == pytest.approx(95.69)
    view = {c.container: c for c in scenario.node_resources_at(3400.0).containers}
    trainer = view[ContainerRef("research", "llama-70b-pretrain-worker-0", "trainer")]
    assert trainer.requests["cpu"] == 40.0
    assert trainer.usage["cpu"] == 46.0, "above its request while a checkpoint is written"
    assert sum(c.requests.get("cpu", 0.0) for c in view.values()) < scenario.node_allocatable["cpu"]


def test_a_constant_usage_is_one_mapping() -> None:
    scenario = parse_scenario(_document(usage={"cpu": "250m"}))
    (container,) = scenario.node_resources_at(50.0).containers
    assert container.usage == {"cpu": 0.25}


@pytest.mark.parametrize(("document", "key", "value"), [
    (_document(requests={"cpu": "lots"}), "pods[0].containers[0].requests.cpu", "lots"),
    (_document(requests={"cpu": "-1"}), "pods[0].containers[0].requests.cpu", "-1"),
    (_document(requests={"gpu": 1}), "pods[0].containers[0].requests.gpu", "gpu"),
    (_document(usage=[{"at": 0, "cpu": 1}, {"at": 0, "cpu": 2}]), "pods[0].containers[0].usage[1].at", "0"),
    (_document(usage=[{"at": 0, "cpu": 1}, {"at": 5, "memory": "1Gi"}]),
     "pods[0].containers[0].usage[1].cpu", "None"),
    (_document(usage=[{"at": 0}]), "pods[0].containers[0].usage[0]", "at"),
    (_document(usage=[{"at": 0, "cpu": 1, "ramp": "cubic"}]), "pods[0].containers[0].usage[0].ramp", "cubic"),
    (_document(usage_repeat_every=60), "pods[0].containers[0].usage_repeat_every", "60"),
    (_document(usage_repeat_every=50), "pods[0].containers[0].usage_repeat_every", "50"),
    ({**DOCUMENT, "node": {"name": "n1", "allocatable": {"cpu": "x"}}}, "node.allocatable.cpu", "x"),
    ({**DOCUMENT, "node": {"name": "n1", "allocatable": {"pods": 110}}}, "node.allocatable.pods", "pods"),
])
def test_a_bad_resource_field_names_the_file_the_key_path_and_the_value(
    document: dict[str, Any], key: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_scenario(document, "node.yaml")
    line = caught.value.one_line()
    assert line.startswith(f"node.yaml: {key}"), line
    assert value in line
