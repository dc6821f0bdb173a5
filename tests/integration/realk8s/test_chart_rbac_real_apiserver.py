"""The chart's RBAC on the real authorizer, and quota enforcement with the sidecar's own token.

Two releases of helm/gpucost go into one real kube-apiserver: one with the budget sidecar's
quota enforcement on for two budget namespaces, one with the sidecar but enforcement off.
SubjectAccessReviews then ask the API server's RBAC authorizer what each ServiceAccount
may do: the exporter gets exactly get/list/watch on pods and namespaces and get on nodes;
the sidecar gets resourcequotas get/create/delete and pods list in the budget namespaces
only, and with enforcement off no write at all.

QuotaEnforcer then runs as the sidecar (a TokenRequest token in a kubeconfig, RBAC from
the installed chart): it creates and removes its quota, leaves a foreign quota of the same
name untouched, and the real server refuses its delete when the quota changed or was
replaced after the ownership read (stale uid/resourceVersion preconditions).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.budgets.enforcement import QuotaEnforcer, load_core_v1, quota_name
from gpucost.budgets.spec import BudgetFile, parse_budget_file
from gpucost.budgets.state import SidecarState
from gpucost_testing.real_apiserver import ApiError, RealApiServer, service_account_user
from gpucost_testing.servers import wait_for
from tests.integration.realk8s.chart_release import Helm

pytestmark = pytest.mark.integration

NOVEMBER_28 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
DECEMBER_1 = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
READ_VERBS = ("get", "list", "watch")
# (group, resource, subresource) that neither ServiceAccount may touch at all.
NEVER: tuple[tuple[str, str, str], ...] = (
    ("", "secrets", ""),
    ("", "configmaps", ""),
    ("", "serviceaccounts", ""),
    ("", "serviceaccounts", "token"),
    ("", "services", ""),
    ("", "endpoints", ""),
    ("", "events", ""),
    ("", "persistentvolumeclaims", ""),
    ("", "replicationcontrollers", ""),
    ("", "limitranges", ""),
    ("", "pods", "exec"),
    ("", "pods", "log"),
    ("", "pods", "eviction"),
    ("", "pods", "status"),
    ("", "nodes", "proxy"),
    ("", "nodes", "status"),
    ("apps", "deployments", ""),
    ("apps", "daemonsets", ""),
    ("batch", "jobs", ""),
    ("rbac.authorization.k8s.io", "roles", ""),
    ("rbac.authorization.k8s.io", "rolebindings", ""),
    ("rbac.authorization.k8s.io", "clusterroles", ""),
    ("rbac.authorization.k8s.io", "clusterrolebindings", ""),
    ("coordination.k8s.io", "leases", ""),
    ("monitoring.coreos.com", "servicemonitors", ""),
    ("apiextensions.k8s.io", "customresourcedefinitions", ""),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations", ""),
)
ESCALATIONS = (  # verbs that hand out more than RBAC lists
    ("impersonate", "", "users"),
    ("impersonate", "", "serviceaccounts"),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
    ("bind", "rbac.authorization.k8s.io", "clusterroles"),
    ("*", "", "pods"),
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class Installed:
    server: RealApiServer
    namespace: str
    budget_namespaces: tuple[str, str]
    other_namespace: str
    exporter: str
    enforcing_sidecar: str
    enforcing_account: str
    passive_sidecar: str

    def allowed(self, user: str, verb: str, resource: str, namespace: str | None = None,
                group: str = "", subresource: str = "") -> bool:  # fmt: skip
        return self.server.can_i(user, verb, resource, namespace, group=group, subresource=subresource)


def write_values(path: Path, budget_namespaces: tuple[str, ...], *, enforce: bool) -> Path:
    values = {
        "budgets": {
            "enabled": True,
            "enforcement": {"enabled": enforce, "namespaces": list(budget_namespaces)},
            "spec": {"budgets": [{"name": "b", "scope": {"team": "t"}, "monthly_usd": 1}]},
        }
    }
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def installed(real_apiserver: RealApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    server = real_apiserver
    workdir = tmp_path_factory.mktemp("rbac")
    namespace, other = unique("gpucost"), unique("elsewhere")
    budget_namespaces = (unique("budget-a"), unique("budget-b"))
    for name in (namespace, other, *budget_namespaces):
        server.create_namespace(name)
    helm = Helm(server, workdir)
    helm.install("enforcing", namespace, [write_values(workdir / "on.yaml", budget_namespaces, enforce=True)])
    helm.install("passive", namespace, [write_values(workdir / "off.yaml", budget_namespaces, enforce=False)])
    done = Installed(
        server, namespace, budget_namespaces, other,
        exporter=service_account_user(namespace, "enforcing-gpucost"),
        enforcing_sidecar=service_account_user(namespace, "enforcing-gpucost-budgets"),
        enforcing_account="enforcing-gpucost-budgets",
        passive_sidecar=service_account_user(namespace, "passive-gpucost-budgets"),
    )  # fmt: skip
    # The authorizer reads bindings through an informer: wait until it has seen the new ones.
    wait_for(lambda: done.allowed(done.exporter, "watch", "pods"), timeout=30, what="the exporter's binding")
    wait_for(
        lambda: done.allowed(done.enforcing_sidecar, "create", "resourcequotas", budget_namespaces[1]),
        timeout=30, what="the sidecar's bindings",
    )  # fmt: skip
    try:
        yield done
    finally:
        helm.uninstall("enforcing", namespace)
        helm.uninstall("passive", namespace)


# --- the exporter ---------------------------------------------------------------------------


def test_the_exporter_can_read_pods_and_namespaces_and_get_nodes(installed: Installed) -> None:
    user = installed.exporter
    for verb in READ_VERBS:
        assert installed.allowed(user, verb, "pods"), verb  # cluster-wide: the spec.nodeName watch
        assert installed.allowed(user, verb, "pods", installed.other_namespace), verb
        assert installed.allowed(user, verb, "namespaces"), verb
    assert installed.allowed(user, "get", "nodes")


def test_the_exporter_can_do_nothing_else(installed: Installed) -> None:
    user = installed.exporter
    granted = [
        f"{verb} {resource}"
        for resource in ("pods", "namespaces", "nodes")
        for verb in WRITE_VERBS
        if installed.allowed(user, verb, resource, None if resource != "pods" else installed.other_namespace)
    ]
    granted += [f"{verb} nodes" for verb in ("list", "watch") if installed.allowed(user, verb, "nodes")]
    granted += denied_everywhere_but_granted(installed, user, (*READ_VERBS, *WRITE_VERBS))
    assert not granted, f"the exporter's ServiceAccount may also: {granted}"


def test_the_exporters_token_is_refused_what_rbac_does_not_grant(installed: Installed) -> None:
    server = installed.server
    token = server.service_account_token(installed.namespace, "enforcing-gpucost")
    client = server.client_for_token(token)
    assert client.get("/api/v1/pods", {"fieldSelector": "spec.nodeName=gpu-node-1"})["kind"] == "PodList"
    for path in (f"/api/v1/namespaces/{installed.namespace}/secrets", "/api/v1/nodes", "/api/v1/configmaps"):
        with pytest.raises(ApiError) as refused:
            client.get(path)
        assert refused.value.status == 403, path


def denied_everywhere_but_granted(installed: Installed, user: str, verbs: tuple[str, ...]) -> list[str]:
    """What of NEVER and ESCALATIONS `user` may do anywhere: the release's namespace, the budget ones, cluster-wide."""
    granted = []
    for namespace in (installed.namespace, *installed.budget_namespaces, None):
        for group, resource, subresource in NEVER:
            for verb in verbs:
                if installed.allowed(user, verb, resource, namespace, group, subresource):
                    granted.append(f"{verb} {group}/{resource}/{subresource} in {namespace or 'the cluster'}")
        for verb, group, resource in ESCALATIONS:
            if installed.allowed(user, verb, resource, namespace, group):
                granted.append(f"{verb} {group}/{resource} in {namespace or 'the cluster'}")
    return granted


# --- the budget sidecar ------------------------------------------------------------------------


def test_with_enforcement_the_sidecar_manages_quotas_and_lists_pods_in_the_budget_namespaces_only(
    installed: Installed,
) -> None:
    user = installed.enforcing_sidecar
    for namespace in installed.budget_namespaces:
        for verb in ("get", "create", "delete"):
            assert installed.allowed(user, verb, "resourcequotas", namespace), (verb, namespace)
        assert installed.allowed(user, "list", "pods", namespace), namespace
    granted = [
        f"{verb} {resource} in {namespace or 'the cluster'}"
        for namespace in installed.budget_namespaces
        for resource, verbs in (
            ("resourcequotas", ("list", "watch", "update", "patch", "deletecollection")),
            ("pods", ("get", "watch", "create", "update", "patch", "delete", "deletecollection")),
        )
        for verb in verbs
        if installed.allowed(user, verb, resource, namespace)
    ]
    granted += [
        f"{verb} {resource} in {namespace or 'the cluster'}"
        for namespace in (installed.namespace, installed.other_namespace, "default", None)
        for resource in ("resourcequotas", "pods")
        for verb in (*READ_VERBS, *WRITE_VERBS)
        if installed.allowed(user, verb, resource, namespace)
    ]
    granted += denied_everywhere_but_granted(installed, user, (*READ_VERBS, *WRITE_VERBS))
    assert not granted, f"the enforcing sidecar may also: {granted}"


def test_without_enforcement_the_sidecar_can_write_nothing(installed: Installed) -> None:
    user = installed.passive_sidecar
    everywhere = (installed.namespace, *installed.budget_namespaces, installed.other_namespace, None)
    resources = [("", "resourcequotas", ""), ("", "pods", ""), ("", "namespaces", ""), ("", "nodes", ""), *NEVER]
    granted = [
        f"{verb} {group}/{resource}/{subresource} in {namespace or 'the cluster'}"
        for namespace in everywhere
        for group, resource, subresource in resources
        for verb in WRITE_VERBS
        if installed.allowed(user, verb, resource, namespace, group, subresource)
    ]
    granted += [
        f"{verb} {resource} in {namespace or 'the cluster'}"
        for namespace in everywhere
        for resource in ("resourcequotas", "pods")
        for verb in READ_VERBS
        if installed.allowed(user, verb, resource, namespace)
    ]
    assert not granted, f"with enforcement off the sidecar may still: {granted}"
    # The same ServiceAccount name gets the rights once enforcement is on: the check above can fail.
    assert installed.allowed(installed.enforcing_sidecar, "create", "resourcequotas", installed.budget_namespaces[0])


# --- QuotaEnforcer as the sidecar --------------------------------------------------------------


def budgets_for(namespace: str, name: str) -> BudgetFile:
    budget = {
        "name": name,
        "scope": {"team": "platform", "namespace": namespace},
        "monthly_usd": 1000,
        "enforce": "quota",
        "hard_threshold_percent": 100,
    }
    return parse_budget_file({"budgets": [budget]}, "budgets.yaml")


def sidecar_core_v1(installed: Installed, tmp_path: Path) -> Any:
    token = installed.server.service_account_token(installed.namespace, installed.enforcing_account)
    return load_core_v1(str(installed.server.token_kubeconfig(token, tmp_path / "sidecar.kubeconfig")))


def quota_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/resourcequotas/{name}"


def test_the_sidecar_creates_its_quota_with_its_own_token_and_removes_it_next_month(
    installed: Installed, tmp_path: Path
) -> None:
    server, namespace = installed.server, installed.budget_namespaces[0]
    budgets = budgets_for(namespace, unique("inference"))
    name = quota_name(budgets.budgets[0])
    server.create_pod(namespace, unique("server"), "gpu-node-1", gpus=2)
    server.create_pod(namespace, unique("canary"), "gpu-node-1", gpus=1)
    finished = unique("finished")
    server.create_pod(namespace, finished, "gpu-node-1", gpus=4)
    server.set_pod_phase(namespace, finished, "Succeeded")

    enforcer = QuotaEnforcer(sidecar_core_v1(installed, tmp_path), SidecarState(), dry_run=False)
    [applied] = enforcer.run(budgets, lambda budget: 1500.0, NOVEMBER_28)
    assert (applied.action, applied.gpus) == ("apply_quota", 3)
    quota = server.admin.get(quota_path(namespace, name))
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "3"}
    assert quota["metadata"]["labels"]["gpucost.io/budget"] == budgets.budgets[0].name
    assert quota["metadata"]["annotations"]["gpucost.io/budget-month"] == "2026-11"

    [removed] = enforcer.run(budgets, lambda budget: 0.0, DECEMBER_1)
    assert removed.action == "remove_quota"
    with pytest.raises(ApiError) as gone:
        server.admin.get(quota_path(namespace, name))
    assert gone.value.status == 404


def test_a_foreign_quota_of_the_same_name_stays_unmodified(installed: Installed, tmp_path: Path) -> None:
    server, namespace = installed.server, installed.budget_namespaces[1]
    budgets = budgets_for(namespace, unique("training"))
    name = quota_name(budgets.budgets[0])
    foreign = server.admin.post(f"/api/v1/namespaces/{namespace}/resourcequotas", {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "gpucost"}},
        "spec": {"hard": {"requests.nvidia.com/gpu": "64"}},
    })  # fmt: skip
    enforcer = QuotaEnforcer(sidecar_core_v1(installed, tmp_path), SidecarState(), dry_run=False)
    assert enforcer.run(budgets, lambda budget: 5000.0, NOVEMBER_28) == []  # over: would apply
    assert enforcer.run(budgets, lambda budget: 0.0, DECEMBER_1) == []  # next month: would remove
    after = server.admin.get(quota_path(namespace, name))
    assert after["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]
    assert after["spec"]["hard"] == {"requests.nvidia.com/gpu": "64"}


class ChangesTheQuotaAfterTheFreshRead:
    """The sidecar's client, except that an admin changes the quota right after the sidecar's second GET
    (the ownership read right before the delete), so the delete's preconditions are stale."""

    def __init__(self, core_v1: Any, change: Callable[[], None]) -> None:
        self._core_v1 = core_v1
        self._change = change
        self.reads = 0

    def read_namespaced_resource_quota(self, name: str, namespace: str) -> Any:
        answer = self._core_v1.read_namespaced_resource_quota(name, namespace)
        self.reads += 1
        if self.reads == 2:
            self._change()
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core_v1, name)


@pytest.mark.parametrize("change", ["modified", "replaced"])
def test_the_real_server_refuses_a_delete_with_stale_preconditions(
    installed: Installed, tmp_path: Path, change: str
) -> None:
    server, namespace = installed.server, installed.budget_namespaces[1]
    budgets = budgets_for(namespace, unique(change))
    name = quota_name(budgets.budgets[0])
    path = quota_path(namespace, name)
    core_v1 = sidecar_core_v1(installed, tmp_path)
    QuotaEnforcer(core_v1, SidecarState(), dry_run=False).run(budgets, lambda budget: 1500.0, NOVEMBER_28)
    ours = server.admin.get(path)

    def modify() -> None:  # resourceVersion precondition: same object, newer version
        server.admin.merge_patch(path, {"metadata": {"annotations": {"platform/note": "kept on purpose"}}})

    def replace() -> None:  # uid precondition: another object under the same name, carrying our marks
        server.admin.delete(path)
        server.admin.post(f"/api/v1/namespaces/{namespace}/resourcequotas", {
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": name, "labels": ours["metadata"]["labels"],
                         "annotations": ours["metadata"]["annotations"]},
            "spec": {"hard": {"requests.nvidia.com/gpu": "64"}},
        })  # fmt: skip

    changing = ChangesTheQuotaAfterTheFreshRead(core_v1, modify if change == "modified" else replace)
    state = SidecarState()
    assert QuotaEnforcer(changing, state, dry_run=False).run(budgets, lambda budget: 0.0, DECEMBER_1) == []
    assert changing.reads == 2
    survivor = server.admin.get(path)  # the real server answered the delete with 409 Conflict
    if change == "modified":
        assert survivor["metadata"]["uid"] == ours["metadata"]["uid"]
        assert survivor["metadata"]["annotations"]["platform/note"] == "kept on purpose"
    else:
        assert survivor["metadata"]["uid"] != ours["metadata"]["uid"]
        assert survivor["spec"]["hard"] == {"requests.nvidia.com/gpu": "64"}
    assert state.snapshot().enforcement_actions == {}
