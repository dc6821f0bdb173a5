"""`helm install`, `upgrade` and `uninstall` of helm/gpucost into a real kube-apiserver.

The Prometheus Operator's CRDs (a pinned release) are installed first, so the chart's
monitoring.coreos.com objects meet the operator's real schemas.  For the default values
and every ci/*-values.yaml: helm installs the release, every object it recorded exists
on the server with the fields the chart rendered (nothing pruned by a schema), and a
server-side dry-run replace of each with strict field validation passes (an unknown or duplicate
field is an error there, not silently dropped); then an upgrade relabels every object
and an uninstall removes every one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost_testing.real_apiserver import ApiError, RealApiServer
from tests.integration.realk8s.chart_release import (
    CI_VALUES,
    Helm,
    Manifest,
    canonical,
    create_referenced_objects,
    get_or_none,
    install_operator_crds,
    object_path,
    strict_dry_run_replace,
)

pytestmark = pytest.mark.integration

CASES: list[Path | None] = [None, *CI_VALUES]
# Kinds a case must render: proves the operator objects were rendered and validated at all.
MUST_RENDER = {
    "default": {"DaemonSet", "ClusterRole", "ClusterRoleBinding", "ServiceMonitor", "PrometheusRule", "ConfigMap"},
    "operator": {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"},
    "podmonitor": {"PodMonitor", "AlertmanagerConfig"},
    "budgets-aws": {"Deployment", "Role", "RoleBinding"},
    "minimal": {"DaemonSet"},
}
# Top-level fields that hold what an object is; metadata is checked for labels and annotations.
CONTENT_FIELDS = ("spec", "data", "rules", "roleRef", "subjects", "automountServiceAccountToken")


def case_name(values: Path | None) -> str:
    return "default" if values is None else values.name.removesuffix("-values.yaml")


@dataclass
class Cluster:
    server: RealApiServer
    helm: Helm


@pytest.fixture(scope="module")
def cluster(real_apiserver: RealApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    install_operator_crds(real_apiserver)
    yield Cluster(real_apiserver, Helm(real_apiserver, tmp_path_factory.mktemp("helm")))


def differences(rendered: Any, stored: Any, where: str = "") -> list[str]:
    """Paths where `stored` lacks or changed what `rendered` has (the server may add defaults)."""
    if isinstance(rendered, dict):
        if not isinstance(stored, dict):
            return [f"{where}: {canonical(rendered)} stored as {canonical(stored)}"]
        found: list[str] = []
        for key, value in rendered.items():
            if value is None:
                continue  # a null in a manifest means "unset"
            if key not in stored:
                found.append(f"{where}.{key}: missing")
            else:
                found += differences(value, stored[key], f"{where}.{key}")
        return found
    if isinstance(rendered, list):
        if not isinstance(stored, list) or len(stored) != len(rendered):
            return [f"{where}: {canonical(rendered)} stored as {canonical(stored)}"]
        return [
            problem
            for index, item in enumerate(rendered)
            for problem in differences(item, stored[index], f"{where}[{index}]")
        ]
    if rendered != stored:
        return [f"{where}: {rendered!r} stored as {stored!r}"]
    return []


def prepare_namespaces(cluster: Cluster, namespace: str, values: Path | None) -> None:
    cluster.server.create_namespace(namespace)
    create_referenced_objects(cluster.server, namespace)
    document = yaml.safe_load(values.read_text(encoding="utf-8")) if values is not None else {}
    enforcement = ((document.get("budgets") or {}).get("enforcement") or {}).get("namespaces") or []
    for budget_namespace in enforcement:  # the Role and RoleBinding go into these namespaces
        try:
            cluster.server.create_namespace(budget_namespace)
        except ApiError as err:
            if err.status != 409:
                raise


def assert_installed_as_rendered(cluster: Cluster, manifests: list[Manifest], namespace: str) -> None:
    admin = cluster.server.admin
    for manifest in manifests:
        what = f"{manifest['kind']} {manifest['metadata']['name']}"
        stored = get_or_none(admin, object_path(admin, manifest, namespace))
        assert stored is not None, f"{what} is not on the server"
        problems = [
            problem
            for field in CONTENT_FIELDS
            if field in manifest
            for problem in differences(manifest[field], stored.get(field), field)
        ]
        for part in ("labels", "annotations"):
            problems += differences(manifest["metadata"].get(part) or {}, stored["metadata"].get(part) or {}, part)
        assert not problems, f"{what} differs on the server from what the chart rendered: {problems}"
        try:
            strict_dry_run_replace(admin, manifest, stored, namespace)
        except ApiError as err:
            raise AssertionError(f"{what} fails strict server-side validation: {err}") from None


@pytest.mark.parametrize("values", CASES, ids=case_name)
def test_the_chart_installs_upgrades_and_uninstalls_on_a_real_api_server(cluster: Cluster, values: Path | None) -> None:
    case = case_name(values)
    namespace, release = f"chart-{case}", f"rel-{case}"
    files = [values] if values is not None else []
    prepare_namespaces(cluster, namespace, values)

    cluster.helm.install(release, namespace, files)
    manifests = cluster.helm.manifests(release, namespace)
    kinds = {manifest["kind"] for manifest in manifests}
    assert MUST_RENDER.get(case, set()) <= kinds, f"{case} rendered only {sorted(kinds)}"
    assert_installed_as_rendered(cluster, manifests, namespace)

    cluster.helm.upgrade(release, namespace, files, ["commonLabels.gpucost-upgraded=yes"])
    admin = cluster.server.admin
    upgraded = cluster.helm.manifests(release, namespace)
    assert {(m["kind"], m["metadata"]["name"]) for m in upgraded} == {
        (m["kind"], m["metadata"]["name"]) for m in manifests
    }
    for manifest in upgraded:
        stored = admin.get(object_path(admin, manifest, namespace))
        assert stored["metadata"]["labels"].get("gpucost-upgraded") == "yes", manifest["metadata"]["name"]
    assert_installed_as_rendered(cluster, upgraded, namespace)

    cluster.helm.uninstall(release, namespace)
    left = [
        f"{m['kind']} {m['metadata']['name']}"
        for m in upgraded
        if get_or_none(admin, object_path(admin, m, namespace)) is not None
    ]
    assert not left, f"helm uninstall left {left}"


def test_both_checks_catch_a_field_the_operator_schema_does_not_know(cluster: Cluster) -> None:
    """What a chart typo looks like on the real server: a plain create prunes it, strict validation refuses it."""
    namespace = "chart-typo"
    cluster.server.create_namespace(namespace)
    monitor: Manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "typo", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "endpoints": [{"port": "metrics", "scrapeIntervall": "30s"}],
        },
    }
    admin = cluster.server.admin
    stored = admin.post(f"/apis/monitoring.coreos.com/v1/namespaces/{namespace}/servicemonitors", monitor)
    assert differences(monitor["spec"], stored["spec"], "spec") == ["spec.endpoints[0].scrapeIntervall: missing"]
    with pytest.raises(AssertionError, match="differs on the server"):
        assert_installed_as_rendered(cluster, [monitor], namespace)
    with pytest.raises(ApiError) as refused:
        strict_dry_run_replace(admin, monitor, stored, namespace)
    assert refused.value.status == 400
    assert 'unknown field "spec.endpoints[0].scrapeIntervall"' in str(refused.value)
