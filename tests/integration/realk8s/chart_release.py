"""The chart as `helm` installs it into the real kube-apiserver of this directory's tests.

`install_operator_crds` registers the Prometheus Operator CRDs that
tests/tools/fetch-operator-crds.sh put under .tools/crds (a pinned release, not a
copy in the repository), so the chart's ServiceMonitor, PodMonitor, PrometheusRule and
AlertmanagerConfig are checked against the operator's own schemas by the API server.
`Helm` runs the real helm binary with the admin kubeconfig and a private helm home.
`create_referenced_objects` makes the Secrets and the ConfigMap that the ci values
files name, as an operator would before installing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost_testing.real_apiserver import ApiError, KubeClient, RealApiServer
from gpucost_testing.servers import REPO_ROOT

CHART = REPO_ROOT / "helm" / "gpucost"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
CRDS_DIR = REPO_ROOT / ".tools" / "crds"
OPERATOR_CRD_FILES = tuple(
    f"monitoring.coreos.com_{plural}.yaml"
    for plural in ("servicemonitors", "podmonitors", "prometheusrules", "alertmanagerconfigs")
)
OPERATOR_GROUP_VERSIONS = ("monitoring.coreos.com/v1", "monitoring.coreos.com/v1alpha1")
FETCH_HINT = "run `make bootstrap` (tests/tools/fetch-operator-crds.sh puts them in .tools/crds)"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
_HELM_TIMEOUT = 120.0
_ESTABLISH_TIMEOUT = 60.0

Manifest = dict[str, Any]


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loading, except that a bare `=` (YAML 1.1's "value" tag, in the operator's enums) is the string."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def find_helm() -> str:
    built = REPO_ROOT / ".tools" / "bin" / "helm"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    on_path = shutil.which("helm")
    if on_path is None:
        pytest.fail("helm not found: run `make bootstrap` (installs helm v3.21.4 into .tools/bin)", pytrace=False)
    return on_path


# --- the Prometheus Operator's CRDs -------------------------------------------------------------


def install_operator_crds(server: RealApiServer) -> None:
    """Create the four CRDs (idempotent) and wait until discovery serves their group versions."""
    missing = [name for name in OPERATOR_CRD_FILES if not (CRDS_DIR / name).is_file()]
    if missing:
        pytest.fail(
            f"Prometheus Operator CRDs missing in {CRDS_DIR}: {', '.join(missing)}; {FETCH_HINT}", pytrace=False
        )
    names = []
    for file_name in OPERATOR_CRD_FILES:
        crd = yaml.load((CRDS_DIR / file_name).read_text(encoding="utf-8"), Loader=_CrdLoader)
        names.append(crd["metadata"]["name"])
        try:
            server.admin.post(CRD_PATH, crd)
        except ApiError as err:
            if err.status != 409:
                raise
    deadline = time.monotonic() + _ESTABLISH_TIMEOUT
    while not all(_established(server.admin, name) for name in names) or not _served(server.admin):
        if time.monotonic() > deadline:
            raise AssertionError(f"the operator CRDs {names} were not established in {_ESTABLISH_TIMEOUT:.0f}s")
        time.sleep(0.5)


def _established(admin: KubeClient, name: str) -> bool:
    conditions = admin.get(f"{CRD_PATH}/{name}").get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _served(admin: KubeClient) -> bool:
    # helm decides `.Capabilities.APIVersions.Has "monitoring.coreos.com/v1"` from discovery.
    groups = admin.get("/apis")["groups"]
    served = {version["groupVersion"] for group in groups for version in group["versions"]}
    return set(OPERATOR_GROUP_VERSIONS) <= served


# --- discovery: where each kind lives ----------------------------------------------------------------


@cache
def _resources(admin: KubeClient, api_version: str) -> dict[str, tuple[str, bool]]:
    """kind -> (plural, namespaced) for one group version, from the server's discovery."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    listing = admin.get(base)["resources"]
    return {item["kind"]: (item["name"], item["namespaced"]) for item in listing if "/" not in item["name"]}


def object_path(admin: KubeClient, manifest: Manifest, default_namespace: str) -> str:
    """The URL path of the object `manifest` describes."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    plural, namespaced = _resources(admin, api_version)[kind]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    name = manifest["metadata"]["name"]
    if namespaced:
        namespace = manifest["metadata"].get("namespace") or default_namespace
        return f"{base}/namespaces/{namespace}/{plural}/{name}"
    return f"{base}/{plural}/{name}"


def strict_dry_run_replace(admin: KubeClient, manifest: Manifest, stored: Manifest, default_namespace: str) -> Manifest:
    """Replace the stored object with `manifest` as a dry run with strict field validation: an
    unknown or duplicate field (which a plain create silently prunes from a custom resource) is an error."""
    path = object_path(admin, manifest, default_namespace)
    body = {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": stored["metadata"]["resourceVersion"]}}
    answer: Manifest = admin.request("PUT", path + "?dryRun=All&fieldValidation=Strict", body)
    return answer


def get_or_none(admin: KubeClient, path: str) -> Manifest | None:
    try:
        found: Manifest = admin.get(path)
    except ApiError as err:
        if err.status == 404:
            return None
        raise
    return found


# --- helm ----------------------------------------------------------------------------------------------


class Helm:
    """The real helm binary against one API server, with a helm home of its own under `workdir`."""

    def __init__(self, server: RealApiServer, workdir: Path) -> None:
        self.binary = find_helm()
        self.kubeconfig = server.kubeconfig
        home = workdir / "helm-home"
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args, "--kubeconfig", str(self.kubeconfig)],
            capture_output=True, text=True, timeout=_HELM_TIMEOUT, check=False, env=self.env,
        )  # fmt: skip

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}"
        return result.stdout

    def install(self, release: str, namespace: str, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
        return self.ok("install", release, str(CHART), "--namespace", namespace, *_value_args(values, sets))

    def upgrade(self, release: str, namespace: str, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
        return self.ok("upgrade", release, str(CHART), "--namespace", namespace, *_value_args(values, sets))

    def uninstall(self, release: str, namespace: str) -> str:
        return self.ok("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "60s")

    def manifests(self, release: str, namespace: str) -> list[Manifest]:
        """What the release installed, as helm recorded it."""
        text = self.ok("get", "manifest", release, "--namespace", namespace)
        return [document for document in yaml.safe_load_all(text) if document]


def _value_args(values: Sequence[Path], sets: Sequence[str]) -> Iterator[str]:
    for path in values:
        yield from ("--values", str(path))
    for assignment in sets:
        yield from ("--set", assignment)


# --- what the ci values files reference ----------------------------------------------------------------

# Secret name -> keys, for every Secret a ci values file names (README: what must exist first).
REFERENCED_SECRETS: dict[str, tuple[str, ...]] = {
    "gpucost-slack": ("api-url", "bot-token"),
    "gpucost-slack-webhooks": ("slack-webhook-team-research", "slack-webhook-team-nlp"),
    "gpucost-aws": ("credentials",),
    "gpucost-gcp": ("credentials.json",),
    "gpucost-web-config": ("web-config.yml", "tls.crt", "tls.key", "ca.crt"),
    "gpucost-scrape-auth": ("username", "password"),
}
BUDGETS_CONFIGMAP = "team-budgets"  # budgets-gcp-values.yaml: budgets.existingConfigMap


def create_referenced_objects(server: RealApiServer, namespace: str) -> None:
    """The Secrets and the budgets ConfigMap the ci values files reference, in `namespace`."""
    for name, keys in REFERENCED_SECRETS.items():
        server.admin.post(f"/api/v1/namespaces/{namespace}/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "stringData": {key: f"test value of {key}" for key in keys},
        })  # fmt: skip
    budgets = {"budgets": [{"name": "nlp-monthly", "scope": {"team": "nlp"}, "monthly_usd": 20000}]}
    server.admin.post(f"/api/v1/namespaces/{namespace}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": BUDGETS_CONFIGMAP},
        "data": {"budgets.yaml": yaml.safe_dump(budgets)},
    })  # fmt: skip


def canonical(value: Any) -> str:
    """A stable text form for comparing rendered and stored fields."""
    return json.dumps(value, sort_keys=True)
