"""Whole-node cost's Kubernetes provider against a local HTTPS kubelet, its config, and the exporter's wiring.

The kubelet stand-in serves tests/fixtures/kubelet/cpu_node_t*.prom over TLS
with a throw-away CA; the pods and the node are the API server objects of
tests/fixtures/kubernetes, decoded as the watch decodes them.  The wiring
tests run the whole exporter (no GPU: the simulated no-GPU scenario and the
`none` backend) and read its /metrics and /readyz.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpucost.app import Exporter, build_exporter
from gpucost.attribution import truncation_counts
from gpucost.config import ExporterConfig, KubeletResourceConfig, KubernetesConfig, load_config_file, parse_config
from gpucost.errors import ConfigError, SourceUnavailable
from gpucost.kube import kubelet_node_resources
from gpucost.model import ContainerRef, NodeInfo, PodMeta
from gpucost.sources.apiserver_cache import MetadataCache, node_info_from_object
from gpucost.sources.kept_metadata import NODE_KEYS, KeptKeys, decode_objects
from gpucost.sources.kubelet_resource import RESOURCE_METRICS_PATH, KubeletResourceReader
from gpucost.sources.node_resources import KubeletNodeResources
from gpucost.truncation import OVERSIZED_BODY, SOURCE_APISERVER, SOURCE_KUBELET_RESOURCE, TruncationCounter
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply
from gpucost_testing.real_apiserver_pki import Pki, make_pki

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCENARIOS = FIXTURES / "scenarios"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.gpucost-exporter-sa"
WEB = ContainerRef("shop", "frontend-5c7f9d8b4-abcde", "web")
SIDECAR = ContainerRef("shop", "frontend-5c7f9d8b4-abcde", "log-shipper")
WORKER = ContainerRef("shop", "queue-worker-0", "worker")
GIB = 2.0**30
MIB = 2.0**20


class Kubelet:
    """Serves the two readings in turn (then the last again), or 503 while `down`."""

    def __init__(self, pki: Pki, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.down = False
        self.reads = 0
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.serving_cert, pki.serving_key)
        self.server = HttpFixture({("GET", "*"): self._answer}, name="node-kubelet", tls=context).start()

    def _answer(self, request: RecordedRequest) -> Reply:
        if self.down or request.path != RESOURCE_METRICS_PATH:
            return Reply.text(503, "unavailable\n")
        if request.header("Authorization") != f"Bearer {TOKEN}":
            return Reply.text(401, "Unauthorized\n")
        body = self.bodies[min(self.reads, len(self.bodies) - 1)]
        self.reads += 1
        return Reply(200, body, "text/plain; version=0.0.4")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("node-kubelet-pki"))


@pytest.fixture
def kubelet(pki: Pki) -> Iterator[Kubelet]:
    bodies = [(FIXTURES / "kubelet" / name).read_bytes() for name in ("cpu_node_t0.prom", "cpu_node_t1.prom")]
    served = Kubelet(pki, bodies)
    yield served
    served.server.stop()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN, encoding="utf-8")
    return path


def _pods() -> list[PodMeta]:
    cache = MetadataCache()
    body = (FIXTURES / "kubernetes" / "cpu_node_pods.json").read_bytes()
    cache.replace_pods(decode_objects([body], KeptKeys().pods, TruncationCounter(), SOURCE_APISERVER)["items"])
    return cache.pods()


def _node() -> NodeInfo:
    body = (FIXTURES / "kubernetes" / "cpu_node.json").read_bytes()
    return node_info_from_object(decode_objects([body], NODE_KEYS, TruncationCounter(), SOURCE_APISERVER))


def _provider(kubelet: Kubelet, pki: Pki, token_file: Path, pods: list[PodMeta] | None = None,
              max_body_bytes: int = 4 * 2**20) -> KubeletNodeResources:
    truncation = TruncationCounter()
    reader = KubeletResourceReader(kubelet.server.url, token_file=str(token_file), ca_file=str(pki.ca_cert),
                                   truncation=truncation, max_body_bytes=max_body_bytes)
    listed = _pods() if pods is None else pods
    return KubeletNodeResources(reader, lambda: listed, _node, max_staleness_seconds=60.0,
                                read_interval_seconds=10.0, truncation=truncation)


def test_requests_allocatable_and_usage_combine_into_the_nodes_view(
    kubelet: Kubelet, pki: Pki, token_file: Path
) -> None:
    provider = _provider(kubelet, pki, token_file)
    provider.refresh(0.0)
    first = {c.container: c for c in provider.current().containers}
    assert first[WEB].usage == {"memory": 512 * MIB}, "one reading: memory is known, CPU not yet"
    provider.refresh(10.0)
    view = provider.current()
    assert view.allocatable == {"cpu": 7.91, "memory": 31458964 * 1024.0, "storage": 76224326324.0}
    containers = {c.container: c for c in view.containers}
    assert set(containers) == {WEB, SIDECAR, WORKER, ContainerRef("lab", "odd-0", "main"),
                               ContainerRef("lab", "odd-0", "helper")}, "the finished Job pod holds nothing"
    assert containers[WEB].pod_uid == "uid-frontend"
    assert containers[WEB].requests == {"cpu": 0.5, "memory": 512 * MIB, "storage": GIB}
    assert containers[WEB].usage == {"cpu": pytest.approx(0.5), "memory": 640 * MIB}
    assert containers[WORKER].usage == {"memory": 100 * MIB}, "a restarted container's CPU starts over"
    assert containers[SIDECAR].usage == {}, "not measured: unknown, charged by request"


def test_the_kubelet_is_read_at_most_once_per_interval(kubelet: Kubelet, pki: Pki, token_file: Path) -> None:
    provider = _provider(kubelet, pki, token_file)
    for now in (0.0, 1.0, 5.0, 9.9):
        provider.refresh(now)
    assert kubelet.reads == 1
    provider.refresh(10.0)
    assert kubelet.reads == 2


def test_a_container_the_api_server_does_not_list_yet_is_charged_for_its_usage(
    kubelet: Kubelet, pki: Pki, token_file: Path
) -> None:
    provider = _provider(kubelet, pki, token_file, pods=[p for p in _pods() if p.pod != "queue-worker-0"])
    provider.refresh(0.0)
    worker = {c.container: c for c in provider.current().containers}[WORKER]
    assert (worker.requests, worker.usage, worker.pod_uid) == ({}, {"memory": 2 * GIB}, "")


def test_an_unreachable_kubelet_keeps_the_last_usage_for_the_staleness_bound_then_requests_alone(
    kubelet: Kubelet, pki: Pki, token_file: Path
) -> None:
    provider = _provider(kubelet, pki, token_file)
    provider.refresh(0.0)
    kubelet.down = True
    with pytest.raises(SourceUnavailable, match="503"):
        provider.refresh(30.0)
    with pytest.raises(SourceUnavailable, match="503"):
        provider.refresh(31.0)  # between tries it stays failed, it does not flap back to healthy
    assert {c.container: c for c in provider.current().containers}[WEB].usage == {"memory": 512 * MIB}
    with pytest.raises(SourceUnavailable):
        provider.refresh(61.0)
    web = {c.container: c for c in provider.current().containers}[WEB]
    assert web.usage == {} and web.requests["cpu"] == 0.5
    kubelet.down = False
    provider.refresh(71.0)
    assert {c.container: c for c in provider.current().containers}[WEB].usage != {}


def test_an_oversized_answer_is_refused_and_reaches_the_truncation_counter(
    kubelet: Kubelet, pki: Pki, token_file: Path
) -> None:
    provider = _provider(kubelet, pki, token_file, max_body_bytes=100)
    with pytest.raises(SourceUnavailable, match="limit"):
        provider.refresh(0.0)
    counts = truncation_counts(provider)
    assert counts[(SOURCE_KUBELET_RESOURCE, OVERSIZED_BODY)] == 1
    assert counts[(SOURCE_APISERVER, "long_value")] == 0, "every known cut is published from zero"


# --- config -------------------------------------------------------------------------------------------


def _config(kubelet_resource: dict[str, object] | None = None, enabled: bool = True) -> ExporterConfig:
    section: dict[str, object] = {"enabled": enabled, "node_name": "n1"}
    if kubelet_resource is not None:
        section["kubelet_resource"] = kubelet_resource
    return parse_config({"kubernetes": section}, "exporter.yaml")


def _metadata() -> object:
    class Metadata:
        def pods(self) -> list[PodMeta]:
            return []

        def node(self) -> NodeInfo:
            return NodeInfo()

    return Metadata()


def test_the_kubelet_defaults_to_the_node_ip_and_follows_kubernetes_enabled() -> None:
    config = _config()
    assert config.kubernetes.kubelet_resource == KubeletResourceConfig()
    provider = kubelet_node_resources(config, _metadata(), {"NODE_IP": "10.0.7.12"})  # type: ignore[arg-type]
    assert provider is not None and provider.name == "kubelet_resource"
    assert KubeletResourceConfig().url({"NODE_IP": "fd00::7"}) == "https://[fd00::7]:10250"
    assert not KubeletResourceConfig().wanted(kubernetes_enabled=False)
    assert kubelet_node_resources(_config({"enabled": False}), _metadata(), {"NODE_IP": "10.0.7.12"}) is None  # type: ignore[arg-type]


def test_without_an_address_the_default_warns_and_an_explicit_enable_is_a_config_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert kubelet_node_resources(_config(), _metadata(), {}) is None  # type: ignore[arg-type]
    assert "NODE_IP" in caplog.text
    with pytest.raises(ConfigError) as caught:
        kubelet_node_resources(_config({"enabled": True}), _metadata(), {})  # type: ignore[arg-type]
    assert caught.value.one_line().startswith("exporter.yaml: kubernetes.kubelet_resource.address")


def test_the_configured_address_and_files_are_used() -> None:
    config = _config({"address": "https://10.1.2.3:10250/", "insecure_skip_tls_verify": True,
                      "token_file": "/t", "ca_file": "/c"})
    settings = config.kubernetes.kubelet_resource
    assert (settings.url({}), settings.insecure_skip_tls_verify, settings.token_file, settings.ca_file) == (
        "https://10.1.2.3:10250", True, "/t", "/c")


@pytest.mark.parametrize(("section", "key", "value"), [
    ({"enabled": "yes"}, "kubernetes.kubelet_resource.enabled", "yes"),
    ({"address": "10.0.0.1:10250"}, "kubernetes.kubelet_resource.address", "10.0.0.1:10250"),
    ({"address": "https://:10250"}, "kubernetes.kubelet_resource.address", "https://:10250"),
    ({"address": "https://h:99999"}, "kubernetes.kubelet_resource.address", "https://h:99999"),
    ({"address": "https://h:10250/metrics/resource"}, "kubernetes.kubelet_resource.address", "/metrics"),
    ({"insecure_skip_tls_verify": 1}, "kubernetes.kubelet_resource.insecure_skip_tls_verify", "1"),
    ({"port": 10250}, "kubernetes.kubelet_resource.port", "port"),
    ("on", "kubernetes.kubelet_resource", "on"),
])
def test_a_bad_kubelet_resource_value_names_the_file_the_key_path_and_the_value(
    section: object, key: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"kubernetes": {"kubelet_resource": section}}, "exporter.yaml")
    line = caught.value.one_line()
    assert line.startswith(f"exporter.yaml: {key}"), line
    assert value in line


# --- the exporter on a node without GPUs ---------------------------------------------------------------


def _run(config: ExporterConfig, tmp_path: Path) -> tuple[int, str]:
    config = dataclasses.replace(config, listen_address="127.0.0.1:0", state_file=str(tmp_path / "state.json"),
                                 kubernetes=KubernetesConfig())
    exporter: Exporter = build_exporter(config)
    exporter.start()
    try:
        base = f"http://127.0.0.1:{exporter.server.port}"
        deadline = time.monotonic() + 20
        body = ""
        while time.monotonic() < deadline:
            body = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
            if 'gpucost_node_cost_usd_total{resource="cpu"}' in body and ' 0.0\n' not in _cpu_line(body):
                break
            time.sleep(0.2)
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as ready:
            return ready.status, body
    finally:
        exporter.stop()


def _cpu_line(body: str) -> str:
    return next((line + "\n" for line in body.splitlines()
                 if line.startswith('gpucost_node_cost_usd_total{resource="cpu"}')), "")


def _value(body: str, prefix: str) -> float:
    return float(next(line for line in body.splitlines() if line.startswith(prefix)).rsplit(" ", 1)[1])


def test_a_simulated_node_without_gpus_is_ready_and_splits_its_price_between_its_containers(tmp_path: Path) -> None:
    config = dataclasses.replace(load_config_file(str(SCENARIOS / "cpu_node_exporter.yaml")),
                                 nvml_backend="simulated", scenario_file=str(SCENARIOS / "cpu_node.yaml"),
                                 simulate_speed=600.0)
    status, body = _run(config, tmp_path)
    assert status == 200
    assert 'gpucost_exporter_collector_success{collector="kubelet_resource"} 1.0' in body
    assert _value(body, 'gpucost_node_price_usd_per_hour{resource="gpu"') == 0.0
    assert _value(body, 'gpucost_node_price_usd_per_hour{resource="cpu"') > 0.0
    assert _value(body, 'gpucost_node_cost_usd_total{resource="cpu"}') > 0.0
    assert 'namespace="shop",pod="queue-worker-0",container="worker",resource="cpu"' in body


def test_the_none_backend_runs_is_ready_and_prices_the_node_by_its_instance_type(tmp_path: Path) -> None:
    config = parse_config({"nvml": {"backend": "none"}, "pricing": {
        "instance_type": "m5.4xlarge", "instance_types": {"m5.4xlarge": {"on_demand_usd_per_hour": 0.768}}}},
        "exporter.yaml")
    status, body = _run(config, tmp_path)
    assert status == 200
    assert 'gpucost_exporter_collector_success{collector="nvml"} 1.0' in body
    assert _value(body, 'gpucost_node_price_usd_per_hour{resource="cpu"') > 0.0
    assert _value(body, 'gpucost_node_cost_usd_total{resource="cpu"}') == pytest.approx(
        _value(body, 'gpucost_node_unallocated_cost_usd_total{resource="cpu"}')), "static pods declare no requests"
