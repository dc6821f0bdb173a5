"""ApiServerSource in a pod's shoes against the real kube-apiserver: in-cluster config and token rotation.

The service-account mount is a directory holding `token`, `ca.crt` and `namespace`, and
KUBERNETES_SERVICE_HOST/PORT point at the server, as the kubelet sets them up.  Tokens
come from the TokenRequest API bound to a Secret, so deleting the Secret revokes the token
for real; the kubelet's rotation is replaced by writing the next token atomically.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gpucost.sources.apiserver import ApiServerSource
from gpucost_testing.real_apiserver import ApiError, RealApiServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NAMESPACE = "in-cluster-source"
ACCOUNT = "reader"
ROLE = "gpucost-in-cluster-source-test"
NODE = "in-cluster-node"


def eventually(check: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


def grant_exporter_rules(server: RealApiServer) -> None:
    """The chart's exporter rules: read pods and namespaces, get nodes."""
    server.admin.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": ROLE},
        "rules": [{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]},
                  {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
    })  # fmt: skip
    server.admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}],
    })  # fmt: skip


def bound_token(server: RealApiServer, secret: str) -> str:
    """A token of the ServiceAccount that stops working when `secret` is deleted."""
    created: dict[str, Any] = server.admin.post(f"/api/v1/namespaces/{NAMESPACE}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret},
    })  # fmt: skip
    answer = server.admin.post(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{ACCOUNT}/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600, "boundObjectRef": {
            "apiVersion": "v1", "kind": "Secret", "name": secret, "uid": created["metadata"]["uid"]}},
    })  # fmt: skip
    return str(answer["status"]["token"])


def write_atomically(path: Path, text: str) -> None:
    """As the kubelet swaps the projected volume: a reader sees the old token or the new one, never half."""
    partial = path.with_name(path.name + ".new")
    partial.write_text(text)
    os.replace(partial, path)


def rejected(server: RealApiServer, token: str) -> bool:
    try:
        server.client_for_token(token).get(f"/api/v1/namespaces/{NAMESPACE}/pods")
    except ApiError as err:
        return err.status == 401
    return False


@pytest.fixture(scope="module")
def cluster(real_apiserver: RealApiServer) -> RealApiServer:
    real_apiserver.create_namespace(NAMESPACE, labels={"team": "platform"})
    real_apiserver.create_service_account(NAMESPACE, ACCOUNT)
    grant_exporter_rules(real_apiserver)
    real_apiserver.create_node(NODE, labels={"node.kubernetes.io/instance-type": "p5.48xlarge"})
    return real_apiserver


@pytest.fixture
def service_account_dir(cluster: RealApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    assert cluster.pki is not None
    shutil.copyfile(cluster.pki.ca_cert, mount / "ca.crt")
    (mount / "namespace").write_text(NAMESPACE)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(cluster.port))
    return mount


@pytest.fixture
def source(service_account_dir: Path) -> Iterator[Callable[[], ApiServerSource]]:
    started: list[ApiServerSource] = []

    def start() -> ApiServerSource:
        # No kubeconfig and KUBERNETES_SERVICE_HOST set: the source picks the in-cluster config itself.
        made = ApiServerSource(NODE, service_account_dir=str(service_account_dir), resync_backoff_max_seconds=0.2,
                               node_refresh_seconds=0.5, watch_timeout_seconds=2)
        made.start()
        started.append(made)
        return made

    yield start
    for made in started:
        made.stop()


def test_in_cluster_config_lists_and_watches_with_the_mounted_token_and_ca(
    cluster: RealApiServer, service_account_dir: Path, source: Callable[[], ApiServerSource]
) -> None:
    write_atomically(service_account_dir / "token", bound_token(cluster, "first-mount"))
    cluster.create_pod(NAMESPACE, "listed", NODE, labels={"model": "llama"})
    watched_source = source()
    eventually(lambda: watched_source.synced and watched_source.pod(NAMESPACE, "listed") is not None,
               what="the pod listed through the in-cluster config")
    node = watched_source.node()
    assert node is not None and node.labels["node.kubernetes.io/instance-type"] == "p5.48xlarge"
    assert watched_source.namespace_labels(NAMESPACE)["team"] == "platform"
    cluster.create_pod(NAMESPACE, "watched", NODE)
    eventually(lambda: watched_source.pod(NAMESPACE, "watched") is not None, what="the watched pod")
    assert watched_source.healthy


def test_a_rotated_token_file_is_read_again_when_the_old_token_is_refused_and_health_never_drops(
    cluster: RealApiServer, service_account_dir: Path, source: Callable[[], ApiServerSource]
) -> None:
    token_file = service_account_dir / "token"
    old_token = bound_token(cluster, "rotation-old")
    write_atomically(token_file, old_token)
    rotating = source()
    eventually(lambda: rotating.synced and rotating.node() is not None, what="first sync with the old token")

    write_atomically(token_file, bound_token(cluster, "rotation-new"))
    cluster.admin.delete(f"/api/v1/namespaces/{NAMESPACE}/secrets/rotation-old")
    health: list[bool] = []

    def old_token_refused() -> bool:
        health.append(rotating.healthy)
        return rejected(cluster, old_token)

    # The server caches a token's success for a few seconds before it sees the Secret is gone.
    eventually(old_token_refused, timeout=60, what="the old token refused")
    cluster.create_pod(NAMESPACE, "after-rotation", NODE)
    eventually(lambda: health.append(rotating.healthy) or rotating.pod(NAMESPACE, "after-rotation") is not None,
               what="a pod seen through a watch made with the new token")
    for _ in range(20):  # the node refresh (every 0.5 s) and two more watch timeouts, all with the new token
        health.append(rotating.healthy)
        time.sleep(0.25)
    assert all(health), f"health dropped during rotation: {rotating.last_error}"
