"""ApiServerSource (lightkube config and auth, bodies streamed through the cutter) against the fake API server."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpucost.errors import ConfigError
from gpucost.model import NodeInfo
from gpucost.sources.apiserver import ApiServerSource, pod_meta_from_object, resolve_node_name
from gpucost.sources.workload_labels import WorkloadLabelMapper
from gpucost_testing.fake_apiserver import FakeApiServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NODE = "gpu-node-a"
OTHER_NODE = "gpu-node-b"
PODS_PATH = "/api/v1/pods"
NAMESPACES_PATH = "/api/v1/namespaces"


def eventually(check: Callable[[], object], timeout: float = 8.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout}s")


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as fake:
        fake.put_namespace("ml", {"team": "research"})
        fake.set_node(NODE, {"node.kubernetes.io/instance-type": "p4d.24xlarge"})
        yield fake


@pytest.fixture
def make_source(server: FakeApiServer, tmp_path: Path) -> Iterator[Callable[..., ApiServerSource]]:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    started: list[ApiServerSource] = []

    def start(watch_timeout_seconds: int = 2) -> ApiServerSource:
        source = ApiServerSource(
            NODE,
            kubeconfig=str(kubeconfig),
            in_cluster=False,
            resync_backoff_max_seconds=0.2,
            node_refresh_seconds=0.3,
            watch_timeout_seconds=watch_timeout_seconds,
        )
        source.start()
        started.append(source)
        eventually(lambda: source.synced, what="initial sync")
        return source

    yield start
    for source in started:
        source.stop()


def pod_names(source: ApiServerSource) -> list[str]:
    return [f"{pod.namespace}/{pod.pod}" for pod in source.pods()]


# --- list and watch --------------------------------------------------------------------


def test_initial_list_loads_only_the_pods_scheduled_on_this_node(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    server.add_pod("ml", "trainer-0", node_name=NODE, labels={"team": "search"})
    server.add_pod("ml", "elsewhere", node_name=OTHER_NODE)
    source = make_source()
    assert pod_names(source) == ["ml/trainer-0"]
    trainer = source.pod("ml", "trainer-0")
    assert trainer is not None
    assert trainer.labels == {"team": "search"}
    assert trainer.uid
    assert source.pod("ml", "elsewhere") is None
    assert source.healthy
    assert source.last_error == ""
    pod_requests = [r for r in server.requests if r.path == PODS_PATH]
    assert pod_requests and all(r.query["fieldSelector"] == f"spec.nodeName={NODE}" for r in pod_requests)


def test_added_modified_and_deleted_pods_are_seen_through_the_watch(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    source = make_source()
    server.add_pod("ml", "serve-1", node_name=NODE, labels={"model": "a"}, annotations={"note": "x"})
    eventually(lambda: source.pod("ml", "serve-1") is not None, what="added pod")
    server.modify_pod("ml", "serve-1", labels={"model": "b"})
    eventually(lambda: (p := source.pod("ml", "serve-1")) is not None and p.labels == {"model": "b"})
    server.delete_pod("ml", "serve-1")
    # A deleted pod leaves the live view but keeps its final state for a grace period: its last
    # cost is booked later, with its labels and the end times the API server wrote.
    eventually(lambda: pod_names(source) == [], what="deleted pod gone from the live view")
    final = source.pod("ml", "serve-1")
    assert final is not None and final.labels == {"model": "b"}
    assert server.list_count(PODS_PATH) == 1


def test_a_watch_event_reaches_the_cache_at_once_not_when_the_stream_ends_or_a_read_piece_fills(
    server: FakeApiServer, make_source: Callable[..., ApiServerSource]
) -> None:
    # The server ends this watch only after a minute: an event held back until the stream
    # ended, or until 64 KiB had arrived, would miss the deadline below by far.
    source = make_source(watch_timeout_seconds=60)
    eventually(lambda: server.watch_resource_versions(PODS_PATH), what="the pod watch open")
    time.sleep(0.2)
    server.add_pod("ml", "prompt", node_name=NODE, labels={"model": "a"})
    began = time.monotonic()
    eventually(lambda: source.pod("ml", "prompt") is not None, timeout=5.0, what="the watched pod")
    assert time.monotonic() - began < 2.0


def test_pods_added_on_other_nodes_never_reach_the_cache(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    source = make_source()
    server.add_pod("ml", "foreign", node_name=OTHER_NODE)
    server.add_pod("ml", "local", node_name=NODE)
    eventually(lambda: source.pod("ml", "local") is not None)
    assert pod_names(source) == ["ml/local"]


def test_owner_is_inferred_for_deployments_jobs_statefulsets_and_training_jobs(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    def owner(kind: str, name: str) -> list[dict[str, object]]:
        return [{"apiVersion": "v1", "kind": kind, "name": name, "uid": "x", "controller": True}]

    server.add_pod(
        "ml", "vllm-7d9f8c6b5-abcde", node_name=NODE,
        labels={"pod-template-hash": "7d9f8c6b5"}, owner_references=owner("ReplicaSet", "vllm-7d9f8c6b5"),
    )
    server.add_pod("ml", "eval-x1", node_name=NODE, owner_references=owner("Job", "eval"))
    server.add_pod("ml", "triton-0", node_name=NODE, owner_references=owner("StatefulSet", "triton"))
    server.add_pod(
        "ml", "bert-master-0", node_name=NODE,
        labels={"training.kubeflow.org/job-name": "bert",
                "training.kubeflow.org/operator-name": "pytorchjob-controller"},
    )
    source = make_source()
    owners = {pod.pod: (pod.owner_kind, pod.owner_name) for pod in source.pods()}
    assert owners == {
        "vllm-7d9f8c6b5-abcde": ("Deployment", "vllm"),
        "eval-x1": ("Job", "eval"),
        "triton-0": ("StatefulSet", "triton"),
        "bert-master-0": ("PyTorchJob", "bert"),
    }


def test_namespace_team_label_reaches_pods_through_the_label_mapper(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    server.add_pod("ml", "trainer-0", node_name=NODE, labels={"model": "llama"})
    source = make_source()
    mapper = WorkloadLabelMapper()

    def team() -> str:
        return mapper.values(source.pod("ml", "trainer-0"), source.namespace_labels("ml"))[0]

    assert team() == "research"
    server.put_namespace("ml", {"team": "platform"})
    eventually(lambda: team() == "platform", what="namespace label change")
    assert source.namespace_labels("unknown") == {}


def test_node_labels_are_read_and_refreshed(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    source = make_source()
    eventually(lambda: source.node() is not None, what="node fetched")
    assert source.node() == NodeInfo(NODE, {"node.kubernetes.io/instance-type": "p4d.24xlarge"})
    server.set_node(
        NODE, {"node.kubernetes.io/instance-type": "p5.48xlarge", "gpucost.io/price-per-gpu-hour": "2.5"}
    )
    eventually(
        lambda: (n := source.node()) is not None and n.instance_type == "p5.48xlarge", what="node refresh"
    )
    node = source.node()
    assert node is not None and node.labels["gpucost.io/price-per-gpu-hour"] == "2.5"


# --- resuming and relisting ----------------------------------------------------------------


def test_dropped_watch_resumes_from_the_last_seen_resource_version_without_relisting(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    source = make_source()
    added = server.add_pod("ml", "serve-1", node_name=NODE)
    eventually(lambda: source.pod("ml", "serve-1") is not None)
    last_seen = added["metadata"]["resourceVersion"]
    watches_before = len(server.watch_resource_versions(PODS_PATH))
    server.drop_watches()
    eventually(lambda: len(server.watch_resource_versions(PODS_PATH)) > watches_before, what="re-watch")
    assert server.watch_resource_versions(PODS_PATH)[watches_before] == last_seen
    server.add_pod("ml", "serve-2", node_name=NODE)
    eventually(lambda: source.pod("ml", "serve-2") is not None, what="event after resume")
    assert server.list_count(PODS_PATH) == 1


def test_bookmark_moves_the_resume_point_past_events_for_other_nodes(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    source = make_source()
    for index in range(3):
        server.add_pod("ml", f"foreign-{index}", node_name=OTHER_NODE)
    bookmark_version = str(server.resource_version)
    server.send_bookmark()
    time.sleep(0.5)  # the bookmark is an event on the open stream; give the reader thread its turn
    watches_before = len(server.watch_resource_versions(PODS_PATH))
    server.drop_watches()
    eventually(lambda: len(server.watch_resource_versions(PODS_PATH)) > watches_before, what="re-watch")
    assert server.watch_resource_versions(PODS_PATH)[watches_before] == bookmark_version
    assert source.healthy


def test_expired_resource_version_410_triggers_a_relist_that_drops_pods_deleted_meanwhile(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    server.add_pod("ml", "short-lived", node_name=NODE)
    source = make_source()
    assert source.pod("ml", "short-lived") is not None
    server.outage(True)  # disconnect the client so it misses the delete below
    server.delete_pod("ml", "short-lived")
    server.add_pod("ml", "newcomer", node_name=NODE)
    server.compact()
    server.outage(False)
    eventually(lambda: server.list_count(PODS_PATH) >= 2, what="relist after 410")
    eventually(lambda: pod_names(source) == ["ml/newcomer"], what="state from relist")
    eventually(lambda: source.healthy, what="healthy after relist")
    # The delete it missed still leaves the pod's last known state for its last charges.
    gone = source.pod("ml", "short-lived")
    assert gone is not None and gone.labels == {}


def test_http_410_on_list_is_retried_until_the_list_succeeds(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    server.add_pod("ml", "trainer-0", node_name=NODE)
    server.fail_next(PODS_PATH, 410, count=2)
    source = make_source()
    assert pod_names(source) == ["ml/trainer-0"]
    assert server.list_count(PODS_PATH) == 3
    eventually(lambda: source.healthy, what="healthy after list succeeded")


def test_http_410_answer_to_a_watch_request_also_triggers_a_relist(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    source = make_source()
    server.fail_next(PODS_PATH, 410, watch=True)
    server.drop_watches()
    eventually(lambda: server.list_count(PODS_PATH) == 2, what="relist after HTTP 410 on watch")
    server.add_pod("ml", "after-relist", node_name=NODE)
    eventually(lambda: source.pod("ml", "after-relist") is not None)


# --- outages -------------------------------------------------------------------------------------


def test_outage_keeps_serving_cached_labels_and_recovers_with_new_pods(
    server: FakeApiServer, make_source: Callable[[], ApiServerSource]
) -> None:
    server.add_pod("ml", "trainer-0", node_name=NODE, labels={"team": "search"})
    source = make_source()
    eventually(lambda: source.healthy and source.node() is not None)

    server.outage(True)
    eventually(lambda: not source.healthy, what="unhealthy during outage")
    assert "503" in source.last_error
    cached = source.pod("ml", "trainer-0")
    assert cached is not None and cached.labels == {"team": "search"}
    assert source.namespace_labels("ml") == {"team": "research"}
    assert source.node() is not None

    server.add_pod("ml", "late", node_name=NODE, labels={"team": "infra"})
    time.sleep(0.3)
    assert source.pod("ml", "late") is None
    server.outage(False)
    eventually(lambda: source.healthy, what="healthy after outage")
    eventually(lambda: source.pod("ml", "late") is not None, what="pod created during the outage")
    assert source.last_error == ""


def test_unreachable_server_at_start_is_unhealthy_not_fatal(tmp_path: Path) -> None:
    with FakeApiServer() as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    # The server is gone: its port refuses connections.
    source = ApiServerSource(NODE, kubeconfig=str(kubeconfig), resync_backoff_max_seconds=0.2)
    source.start()
    try:
        eventually(lambda: not source.healthy, what="unhealthy")
        assert not source.synced
        assert source.pods() == []
        assert source.last_error
    finally:
        source.stop()


def test_stop_ends_the_background_threads_promptly(
    server: FakeApiServer, make_source: Callable[..., ApiServerSource]
) -> None:
    # A minute-long watch: stop() must shut its socket, not wait for the server to end it.
    source = make_source(watch_timeout_seconds=60)
    eventually(lambda: len(server.watch_resource_versions(NAMESPACES_PATH)) >= 1, what="the namespace watch open")
    eventually(lambda: len(server.watch_resource_versions(PODS_PATH)) >= 1, what="the pod watch open")
    time.sleep(0.2)
    began = time.monotonic()
    source.stop()
    assert time.monotonic() - began < 3.0
    assert not [t for t in threading.enumerate() if t.name.startswith("gpucost-apiserver")]


def test_importing_the_source_imports_no_kubernetes_client_library() -> None:
    exporter_dir = Path(__file__).resolve().parents[2] / "exporter"
    code = (
        "import sys; import gpucost.sources.apiserver, gpucost.sources.workload_labels; "
        "loaded = sorted(m for m in ('kubernetes', 'lightkube', 'httpx2') if m in sys.modules); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=exporter_dir, timeout=30)


def test_the_exporters_kubernetes_path_never_imports_the_official_kubernetes_client() -> None:
    # Everything the exporter imports with --kubernetes.enabled, including the client module
    # that start() loads, without starting anything.
    exporter_dir = Path(__file__).resolve().parents[2] / "exporter"
    code = (
        "import sys; import gpucost.kube, gpucost.sources.kube_http, gpucost.cli.exporter, gpucost.app; "
        "assert 'lightkube' in sys.modules, 'the client module was not imported'; "
        "assert 'kubernetes' not in sys.modules, sorted(m for m in sys.modules if m.startswith('kubernetes'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=exporter_dir, timeout=60)


def test_node_name_comes_from_the_flag_or_the_downward_api_env() -> None:
    assert resolve_node_name("flag-node", {"NODE_NAME": "env-node"}) == "flag-node"
    assert resolve_node_name(None, {"NODE_NAME": "env-node"}) == "env-node"
    with pytest.raises(ConfigError) as caught:
        resolve_node_name(None, {})
    assert caught.value.key_path == "--node-name"


def test_pod_metadata_conversion_keeps_only_what_attribution_needs() -> None:
    pod = pod_meta_from_object(
        {
            "metadata": {
                "name": "p",
                "namespace": "ml",
                "uid": "u-1",
                "labels": {"team": "a"},
                "annotations": {"note": "b"},
                "ownerReferences": [{"kind": "StatefulSet", "name": "db", "controller": True}],
            },
            "spec": {"nodeName": NODE, "containers": [{"name": "main"}]},
        }
    )
    assert (pod.namespace, pod.pod, pod.uid) == ("ml", "p", "u-1")
    assert (pod.labels, pod.annotations) == ({"team": "a"}, {"note": "b"})
    assert (pod.owner_kind, pod.owner_name) == ("StatefulSet", "db")
