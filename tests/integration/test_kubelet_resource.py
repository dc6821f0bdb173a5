"""The kubelet /metrics/resource reader against real local servers: HTTPS with a bearer token, and bad answers.

The kubelet stand-in serves the recorded fixtures under tests/fixtures/kubelet
over TLS with a throw-away CA (gpucost_testing.real_apiserver_pki), checks the
bearer token the way the kubelet's webhook authenticator would see it, and the
plain-HTTP fixture server plays the bad answers: 401, garbage, a huge body, a
body that never ends in time.  Each must end as SourceUnavailable, which the
health wrapper turns into this collector's failure and nothing else's.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gpucost.engine.node_split import ContainerClaim, ResourceTick, split_resource_cost
from gpucost.errors import SourceUnavailable
from gpucost.health import HealthBoard
from gpucost.model import ContainerRef, NodeInfo
from gpucost.pricing import parse_pricing_settings, shipped_catalog
from gpucost.pricing.node_parts import NodePartsBook
from gpucost.sources.kubelet_resource import (
    OVERSIZED_BODY,
    RESOURCE_METRICS_PATH,
    SOURCE_KUBELET_RESOURCE,
    KubeletResourceReader,
    UsageTracker,
)
from gpucost.truncation import TruncationCounter
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply
from gpucost_testing.real_apiserver_pki import Pki, make_pki

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubelet"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.gpucost-exporter-sa"
WEB = ContainerRef("shop", "frontend-5c7f9d8b4-abcde", "web")
WORKER = ContainerRef("shop", "queue-worker-0", "worker")
GIB = 2.0**30


@dataclass
class TlsKubelet:
    """A kubelet stand-in on 127.0.0.1 over TLS: serves `bodies` in turn, records each Authorization header."""

    pki: Pki
    bodies: list[bytes]
    expected_token: str
    authorizations: list[str] = field(default_factory=list)
    server: HttpFixture | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.serving_cert, self.pki.serving_key)
        self.server = HttpFixture({("GET", "*"): self._answer}, name="tls-kubelet", tls=context).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def _answer(self, request: RecordedRequest) -> Reply:
        authorization = request.header("Authorization")
        self.authorizations.append(authorization)
        if request.path != RESOURCE_METRICS_PATH:
            return Reply.text(404, "404 page not found\n")
        if authorization != f"Bearer {self.expected_token}":
            return Reply.text(401, "Unauthorized\n")
        body = self.bodies[0] if len(self.bodies) == 1 else self.bodies.pop(0)
        return Reply(200, body, "text/plain; version=0.0.4; charset=utf-8")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("kubelet-pki"))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tls_kubelet(pki: Pki) -> Iterator[TlsKubelet]:
    bodies = [(FIXTURES / name).read_bytes() for name in ("cpu_node_t0.prom", "cpu_node_t1.prom")]
    kubelet = TlsKubelet(pki, bodies, TOKEN)
    kubelet.start()
    yield kubelet
    kubelet.stop()


def test_reads_usage_over_https_with_the_serviceaccount_token_and_the_cluster_ca(
    tls_kubelet: TlsKubelet, pki: Pki, token_file: Path
) -> None:
    reader = KubeletResourceReader(tls_kubelet.url, token_file=str(token_file), ca_file=str(pki.ca_cert))
    tracker = UsageTracker()
    tracker.update(reader.read())
    usage = tracker.update(reader.read())
    assert tls_kubelet.authorizations == [f"Bearer {TOKEN}"] * 2
    assert usage.containers[WEB].cpu_cores == pytest.approx(0.5)
    assert usage.node_cpu_cores == pytest.approx(0.8)


def test_the_token_is_read_again_for_every_request_because_the_kubelet_rotates_it(
    tls_kubelet: TlsKubelet, pki: Pki, token_file: Path
) -> None:
    reader = KubeletResourceReader(tls_kubelet.url, token_file=str(token_file), ca_file=str(pki.ca_cert))
    reader.read()
    token_file.write_text("rotated-token", encoding="utf-8")
    tls_kubelet.expected_token = "rotated-token"
    reader.read()
    assert tls_kubelet.authorizations == [f"Bearer {TOKEN}", "Bearer rotated-token"]


def test_a_kubelet_certificate_from_another_ca_is_refused(
    tls_kubelet: TlsKubelet, tmp_path: Path, token_file: Path
) -> None:
    other = make_pki(tmp_path / "other")
    reader = KubeletResourceReader(tls_kubelet.url, token_file=str(token_file), ca_file=str(other.ca_cert))
    with pytest.raises(SourceUnavailable, match="SSLCertVerificationError"):
        reader.read()
    assert tls_kubelet.authorizations == []  # the token never left the exporter


def test_a_missing_token_file_is_source_unavailable(tls_kubelet: TlsKubelet, pki: Pki, tmp_path: Path) -> None:
    reader = KubeletResourceReader(tls_kubelet.url, token_file=str(tmp_path / "none"), ca_file=str(pki.ca_cert))
    with pytest.raises(SourceUnavailable, match="ServiceAccount token"):
        reader.read()


def _serve(reply: Callable[[RecordedRequest], Reply]) -> HttpFixture:
    return HttpFixture({("GET", RESOURCE_METRICS_PATH): reply}, name="kubelet-resource-bad")


def _reader(url: str, token_file: Path, truncation: TruncationCounter | None = None,
            **options: Any) -> KubeletResourceReader:
    return KubeletResourceReader(url, token_file=str(token_file), truncation=truncation, **options)


def test_401_names_the_rbac_the_exporter_needs(token_file: Path) -> None:
    with _serve(lambda _: Reply.text(401, "Unauthorized")) as server, \
            pytest.raises(SourceUnavailable, match=r"HTTP 401 .*nodes/metrics"):
        _reader(server.url, token_file).read()


def test_garbage_text_is_source_unavailable(token_file: Path) -> None:
    with _serve(lambda _: Reply(200, b"\x00\x01 garbage {{{ \n")) as server, \
            pytest.raises(SourceUnavailable, match="not Prometheus text"):
        _reader(server.url, token_file).read()


def test_a_huge_declared_body_is_refused_unread_and_counted(token_file: Path) -> None:
    truncation = TruncationCounter()
    huge = b"# " + b"x" * (2 * 1024 * 1024) + b"\n"
    with _serve(lambda _: Reply(200, huge)) as server, \
            pytest.raises(SourceUnavailable, match="over the 1048576-byte limit"):
        _reader(server.url, token_file, truncation, max_body_bytes=1024 * 1024).read()
    assert truncation.snapshot() == {(SOURCE_KUBELET_RESOURCE, OVERSIZED_BODY): 1}


def test_a_huge_streamed_body_is_cut_off_at_the_limit_and_counted(token_file: Path) -> None:
    truncation = TruncationCounter()
    chunks = (b"# " + b"x" * 65536 + b"\n" for _ in range(64))  # 4 MiB, no Content-Length
    with _serve(lambda _: Reply(200, chunks=chunks)) as server, \
            pytest.raises(SourceUnavailable, match="sent more than 262144 bytes"):
        _reader(server.url, token_file, truncation, max_body_bytes=256 * 1024).read()
    assert truncation.snapshot() == {(SOURCE_KUBELET_RESOURCE, OVERSIZED_BODY): 1}


def test_an_answer_that_drips_past_the_deadline_is_source_unavailable(token_file: Path) -> None:
    def slow_lines() -> Iterator[bytes]:
        for _ in range(50):
            time.sleep(0.2)
            yield b"# still coming\n"

    def drip(_: RecordedRequest) -> Reply:
        return Reply(200, chunks=slow_lines())

    with _serve(drip) as server:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="no full answer in 1s"):
            _reader(server.url, token_file, timeout_seconds=1.0).read()
    assert time.monotonic() - started < 5.0


def test_a_kubelet_that_is_not_listening_is_source_unavailable(token_file: Path) -> None:
    with _serve(lambda _: Reply.text(200, "")) as server:
        url = server.url
    with pytest.raises(SourceUnavailable, match="ConnectionRefusedError"):
        _reader(url, token_file).read()


def test_a_bad_kubelet_answer_degrades_only_this_collector(token_file: Path) -> None:
    board = HealthBoard()
    with _serve(lambda _: Reply.text(401, "Unauthorized")) as server:
        reader = _reader(server.url, token_file)
        no_devices: list[str] = []
        devices = board.run("nvml", lambda: ["GPU-a", "GPU-b"], no_devices)
        usage = board.run("kubelet_resource", reader.read, None)
    assert devices == ["GPU-a", "GPU-b"]
    assert usage is None
    health = {item.collector: item.success for item in board.snapshot()}
    assert health == {"nvml": True, "kubelet_resource": False}


def test_a_node_without_gpus_conserves_its_price_over_containers_and_unallocated(
    tls_kubelet: TlsKubelet, pki: Pki, token_file: Path
) -> None:
    """m5.2xlarge (8 vCPU, 32 GiB; 7.5 cores and 28 GiB allocatable) at a configured 0.384 USD/h."""
    pricing = parse_pricing_settings({"instance_types": {"m5.2xlarge": {"on_demand_usd_per_hour": 0.384}}}, "x.yaml")
    node = NodeInfo("web-node-1", {"node.kubernetes.io/instance-type": "m5.2xlarge",
                                   "topology.kubernetes.io/region": "us-east-1"})
    parts = NodePartsBook(pricing, shipped_catalog()).parts(node, 0.0)
    reader = KubeletResourceReader(tls_kubelet.url, token_file=str(token_file), ca_file=str(pki.ca_cert))
    tracker = UsageTracker()
    tracker.update(reader.read())
    usage = tracker.update(reader.read())
    requests = {WEB: (0.25, 0.5 * GIB), WORKER: (2.0, 4 * GIB)}
    seconds = 10.0
    costs = []
    for resource, allocatable, price in (("cpu", 7.5, parts.cpu_usd_per_hour),
                                         ("memory", 28 * GIB, parts.memory_usd_per_hour)):
        claims = []
        for container, (cpu_request, memory_request) in requests.items():
            measured = usage.containers[container]
            if resource == "cpu":
                claims.append(ContainerClaim(container, cpu_request, measured.cpu_cores))
            else:
                claims.append(ContainerClaim(container, memory_request, measured.memory_working_set_bytes))
        costs.append(split_resource_cost(ResourceTick(resource, price, seconds, allocatable, claims)))
    cpu, memory = costs
    assert {item.container: item.claimed for item in cpu.containers} == pytest.approx({WEB: 0.5, WORKER: 2.0})
    assert {item.container: item.claimed for item in memory.containers} == pytest.approx(
        {WEB: 0.625 * GIB, WORKER: 4 * GIB}
    )
    booked = math.fsum(cost.allocated_usd + cost.unallocated_usd for cost in costs)
    assert parts.gpu_usd_per_hour == parts.storage_usd_per_hour == 0.0
    assert booked == pytest.approx(0.384 * seconds / 3600, abs=1e-6 * 0.384 * seconds / 3600)
