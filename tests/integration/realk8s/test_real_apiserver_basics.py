"""The real kube-apiserver fixture does what the Kubernetes tests will rely on."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from gpucost_testing.real_apiserver import (
    KUBE_VERSION,
    ApiError,
    RealApiServer,
    RealClusterUnavailable,
    find_kube_apiserver,
    service_account_user,
)
from gpucost_testing.servers import wait_for

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_the_server_is_ready_and_reports_the_pinned_version(real_apiserver: RealApiServer) -> None:
    assert real_apiserver.admin.get("/readyz") == "ok"
    version = real_apiserver.version()
    assert (version["gitVersion"], version["major"], version["minor"]) == (KUBE_VERSION, "1", "37")
    assert real_apiserver.url.startswith("https://127.0.0.1:")


def test_a_namespace_gets_its_default_service_account_and_takes_a_bound_pod(real_apiserver: RealApiServer) -> None:
    namespace = unique("team-a")
    real_apiserver.create_namespace(namespace, labels={"team": "a"})
    assert real_apiserver.admin.get(f"/api/v1/namespaces/{namespace}")["metadata"]["labels"]["team"] == "a"
    real_apiserver.admin.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")

    created = real_apiserver.create_pod(namespace, "trainer", "gpu-node-1", labels={"app": "trainer"}, gpus=2)
    pod = real_apiserver.admin.get(f"/api/v1/namespaces/{namespace}/pods/trainer")
    assert pod["metadata"]["uid"] == created["metadata"]["uid"]
    assert pod["spec"]["nodeName"] == "gpu-node-1"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert real_apiserver.set_pod_phase(namespace, "trainer", "Running")["status"]["phase"] == "Running"


def test_without_its_default_service_account_a_namespace_refuses_pods(real_apiserver: RealApiServer) -> None:
    # Why create_namespace makes the ServiceAccount: no controller manager does it here.
    namespace = unique("bare")
    real_apiserver.admin.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    with pytest.raises(ApiError) as refused:
        real_apiserver.create_pod(namespace, "p", "gpu-node-1")
    assert refused.value.status == 403
    assert "service account" in str(refused.value).lower()


def grant_pod_reader(server: RealApiServer, namespace: str, account: str) -> None:
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    server.admin.post(f"{rbac}/namespaces/{namespace}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    })  # fmt: skip
    server.admin.post(f"{rbac}/namespaces/{namespace}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "pod-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    })  # fmt: skip


def status_of(call: Any) -> int:
    try:
        call()
    except ApiError as err:
        return err.status
    return 200


def test_a_service_account_token_authenticates_and_rbac_limits_it(
    real_apiserver: RealApiServer, tmp_path: Path
) -> None:
    namespace = unique("ns")
    real_apiserver.create_namespace(namespace)
    real_apiserver.create_service_account(namespace, "reader")
    token = real_apiserver.service_account_token(namespace, "reader")
    client = real_apiserver.client_for_token(token)
    user = service_account_user(namespace, "reader")

    review = client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
    })  # fmt: skip
    assert review["status"]["userInfo"]["username"] == user
    pods = f"/api/v1/namespaces/{namespace}/pods"
    assert status_of(lambda: client.get(pods)) == 403
    assert not real_apiserver.can_i(user, "list", "pods", namespace)

    grant_pod_reader(real_apiserver, namespace, "reader")
    # RBAC reads bindings through an informer: allow it a moment to see the new one.
    wait_for(lambda: status_of(lambda: client.get(pods)) == 200, timeout=30, what="the RoleBinding to apply")
    assert real_apiserver.can_i(user, "list", "pods", namespace)
    assert not real_apiserver.can_i(user, "list", "secrets", namespace)
    assert not real_apiserver.can_i(user, "list", "pods")  # cluster-wide
    assert status_of(lambda: client.get(f"/api/v1/namespaces/{namespace}/secrets")) == 403
    assert status_of(lambda: client.get("/api/v1/pods")) == 403
    assert status_of(lambda: real_apiserver.client_for_token(token + "x").get(pods)) == 401

    # The same identity through a kubeconfig file, read by the official client.
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    kubeconfig = real_apiserver.token_kubeconfig(token, tmp_path / "reader.kubeconfig", namespace=namespace)
    api = k8s_client.CoreV1Api(k8s_config.new_client_from_config(config_file=str(kubeconfig)))
    assert api.list_namespaced_pod(namespace).items == []


def first_event_of_a_watch_from(server: RealApiServer, namespace: str, resource_version: str) -> Any:
    return next(server.admin.watch(f"/api/v1/namespaces/{namespace}/pods", resource_version=resource_version))


def old_resource_version(server: RealApiServer, namespace: str) -> str:
    """A resourceVersion a watch can resume from: the first of two pods, so the second is the next event."""
    server.create_namespace(namespace)
    first = server.create_pod(namespace, "first", "gpu-node-1")
    server.create_pod(namespace, "second", "gpu-node-1")
    resource_version = str(first["metadata"]["resourceVersion"])
    resumed = first_event_of_a_watch_from(server, namespace, resource_version)
    assert (resumed["type"], resumed["object"]["metadata"]["name"]) == ("ADDED", "second")
    return resource_version


def assert_gone(event: Any) -> None:
    assert event["type"] == "ERROR", event
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


def test_etcd_compaction_makes_a_watch_from_an_old_resource_version_410_gone(
    real_apiserver_without_watch_cache: RealApiServer,
) -> None:
    server = real_apiserver_without_watch_cache
    namespace = unique("watch")
    resource_version = old_resource_version(server, namespace)

    assert server.compact_etcd() > int(resource_version) + 1
    assert_gone(first_event_of_a_watch_from(server, namespace, resource_version))


def test_a_restart_keeps_the_objects_and_the_rebuilt_watch_cache_expires_old_versions(
    real_apiserver: RealApiServer,
) -> None:
    namespace = unique("restart")
    resource_version = old_resource_version(real_apiserver, namespace)
    real_apiserver.compact_etcd()
    # The watch cache still holds those events: the compaction does not show yet.
    assert first_event_of_a_watch_from(real_apiserver, namespace, resource_version)["type"] == "ADDED"

    real_apiserver.restart_apiserver()
    names = [
        pod["metadata"]["name"] for pod in real_apiserver.admin.get(f"/api/v1/namespaces/{namespace}/pods")["items"]
    ]
    assert sorted(names) == ["first", "second"]
    assert_gone(first_event_of_a_watch_from(real_apiserver, namespace, resource_version))


def test_a_missing_kube_apiserver_names_the_command_that_builds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RealClusterUnavailable, match="make bootstrap"):
        find_kube_apiserver(tmp_path / "bin")
