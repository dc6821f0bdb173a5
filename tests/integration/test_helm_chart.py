"""The Helm chart, rendered by the real helm binary: lint, Kubernetes schemas, and what it ships.

Every `ci/*-values.yaml` is linted with --strict, rendered, and each manifest is validated against
the Kubernetes OpenAPI schema of two releases (kubernetes-validate, offline).  The Prometheus
Operator's kinds have no schema there, so they are checked against the minimal schemas below.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
import kubernetes_validate
import pytest
import yaml

from gpucost.budgets.spec import parse_budget_file
from gpucost.chartfiles import main as chartfiles_main
from gpucost.config import parse_config
from gpucost.helmdocs import render_readme
from gpucost.rulegen import RuleOptions

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "gpucost"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBERNETES_VERSIONS = ("1.29", "1.33")
OPERATOR_API = "monitoring.coreos.com/v1"
REQUIRED_CI_FILES = {
    "minimal-values.yaml",
    "operator-values.yaml",
    "per-process-values.yaml",
    "budgets-aws-values.yaml",
    "budgets-gcp-values.yaml",
    "tls-values.yaml",
}

Manifest = dict[str, Any]


def _find_helm() -> str:
    for candidate in (shutil.which("helm"), str(REPO / ".tools" / "bin" / "helm"), "/root/go/bin/helm"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("helm not found: run `make bootstrap` (installs helm v3.21.4 into .tools/bin)")


@pytest.fixture(scope="session")
def helm() -> str:
    return _find_helm()


def _run_helm(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_find_helm(), *args], capture_output=True, text=True, timeout=60, check=False)


@cache
def _render_text(chart: Path, values: tuple[str, ...], sets: tuple[str, ...], api_versions: tuple[str, ...]) -> str:
    args = ["template", "gpucost", str(chart), "--namespace", "gpucost"]
    for path in values:
        args += ["-f", path]
    for assignment in sets:
        args += ["--set", assignment]
    for api in api_versions:
        args += ["--api-versions", api]
    result = _run_helm(args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(
    values: Path | None = None,
    sets: Sequence[str] = (),
    api_versions: Sequence[str] = (),
    chart: Path = CHART,
) -> list[Manifest]:
    text = _render_text(chart, (str(values),) if values else (), tuple(sets), tuple(api_versions))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Sequence[Manifest], kind: str) -> Manifest:
    found = of_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def exporter_container(manifests: Sequence[Manifest]) -> Manifest:
    containers: list[Manifest] = one(manifests, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    return containers[0]


# Every values file, plus the defaults rendered as on a cluster with and without the Operator.
RENDER_CASES: list[tuple[str, Path | None, tuple[str, ...]]] = [
    ("default", None, ()),
    ("default-with-operator", None, (OPERATOR_API,)),
    *[(path.name, path, ()) for path in CI_VALUES],
]


def _case_id(case: tuple[str, Path | None, tuple[str, ...]]) -> str:
    return case[0]


# --- Minimal schemas for the Prometheus Operator's kinds (their key fields only). ---------------

_OBJECT_META = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_RELABELING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "action": {"enum": ["replace", "keep", "drop", "labeldrop", "labelkeep", "labelmap", "hashmod"]},
        "separator": {"type": "string"},
    },
}
_SECRET_KEY = {
    "type": "object",
    "required": ["name", "key"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "key": {"type": "string"}},
}
_SAFE_TLS_CONFIG = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ca": {"type": "object"},
        "cert": {"type": "object"},
        "keySecret": _SECRET_KEY,
        "serverName": {"type": "string"},
        "insecureSkipVerify": {"type": "boolean"},
    },
}
_BASIC_AUTH = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password"],
    "properties": {"username": _SECRET_KEY, "password": _SECRET_KEY},
}
_ENDPOINT = {
    "type": "object",
    "required": ["port", "scheme", "interval", "relabelings"],
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string"},
        "scheme": {"enum": ["http", "https"]},
        "tlsConfig": _SAFE_TLS_CONFIG,
        "basicAuth": _BASIC_AUTH,
        "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
        "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+[smh]$"},
        "honorLabels": {"type": "boolean"},
        "relabelings": {"type": "array", "items": _RELABELING},
        "metricRelabelings": {"type": "array", "items": _RELABELING},
    },
}
_SELECTOR = {
    "type": "object",
    "required": ["matchLabels"],
    "properties": {"matchLabels": {"type": "object", "minProperties": 1}},
}
_MATCHER = {
    "type": "object",
    "required": ["name", "value", "matchType"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "value": {"type": "string"},
        "matchType": {"enum": ["=", "!=", "=~", "!~"]},
    },
}


def _crd(api_version: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"apiVersion": {"const": api_version}, "metadata": _OBJECT_META, "spec": spec},
    }


OPERATOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _crd("monitoring.coreos.com/v1", {
        "type": "object",
        "required": ["selector", "endpoints"],
        "properties": {"selector": _SELECTOR, "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT}},
    }),
    "PodMonitor": _crd("monitoring.coreos.com/v1", {
        "type": "object",
        "required": ["selector", "podMetricsEndpoints"],
        "properties": {
            "selector": _SELECTOR,
            "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
        },
    }),
    "PrometheusRule": _crd("monitoring.coreos.com/v1", {
        "type": "object",
        "required": ["groups"],
        "properties": {"groups": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["name", "rules"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "interval": {"type": "string"},
                "rules": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "required": ["expr"],
                    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                    "properties": {
                        "expr": {"type": "string", "minLength": 1},
                        "for": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                }},
            },
        }}},
    }),
    "AlertmanagerConfig": _crd("monitoring.coreos.com/v1alpha1", {
        "type": "object",
        "required": ["route", "receivers"],
        "properties": {
            "route": {
                "type": "object",
                "required": ["receiver"],
                "properties": {"receiver": {"type": "string"}, "matchers": {"type": "array", "items": _MATCHER}},
            },
            "receivers": {"type": "array", "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "slackConfigs": {"type": "array", "items": {
                        "type": "object",
                        "required": ["apiURL"],
                        "properties": {"apiURL": _SECRET_KEY, "sendResolved": {"type": "boolean"}},
                    }},
                },
            }},
            "inhibitRules": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "sourceMatch": {"type": "array", "items": _MATCHER},
                    "targetMatch": {"type": "array", "items": _MATCHER},
                },
            }},
        },
    }),
}


def _route_receivers(route: Mapping[str, Any]) -> Iterator[str]:
    yield route["receiver"]
    for child in route.get("routes", []):
        yield from _route_receivers(child)


# --- lint and schemas ---------------------------------------------------------------------------


def test_the_ci_values_files_cover_every_required_feature() -> None:
    assert {path.name for path in CI_VALUES} >= REQUIRED_CI_FILES


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "default")
def test_helm_lint_strict_passes(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
    result = _run_helm(args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", RENDER_CASES, ids=_case_id)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_manifest_is_valid_for_the_kubernetes_version(
    case: tuple[str, Path | None, tuple[str, ...]], version: str
) -> None:
    _, values, apis = case
    manifests = render(values, api_versions=apis)
    assert manifests
    for manifest in manifests:
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in OPERATOR_SCHEMAS:
            jsonschema.validate(manifest, OPERATOR_SCHEMAS[manifest["kind"]])
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} is not valid for Kubernetes {version}: {exc.message}")


def test_operator_objects_render_only_where_the_cluster_serves_them() -> None:
    without = {m["kind"] for m in render()}
    with_operator = {m["kind"] for m in render(api_versions=(OPERATOR_API,))}
    assert not without & set(OPERATOR_SCHEMAS)
    assert {"ServiceMonitor", "PrometheusRule"} <= with_operator
    assert "AlertmanagerConfig" not in with_operator  # needs Slack secrets: opt-in


# --- what the chart ships -----------------------------------------------------------------------


def _rule_files() -> dict[str, Any]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted((REPO / "rules").glob("*.yaml"))}


def test_the_prometheus_rules_are_exactly_the_rule_files() -> None:
    rules = of_kind(render(CHART / "ci" / "operator-values.yaml"), "PrometheusRule")
    rendered = {rule["metadata"]["annotations"]["gpucost.io/rule-file"]: rule["spec"] for rule in rules}
    expected = _rule_files()
    assert len(expected) >= 4
    assert set(rendered) == set(expected)
    for name, document in expected.items():
        assert rendered[name]["groups"] == document["groups"], name
    # Prometheus templates ({{ $labels.team }}) reach the rules untouched by Helm.
    alerts = json.dumps(rendered["gpucost.alerts.yaml"])
    assert "{{ $labels.job }}" in alerts


def test_rule_files_can_be_left_out() -> None:
    rules = of_kind(
        render(sets=("prometheusRule.excludeFiles={gpucost.inference.rules.yaml}",), api_versions=(OPERATOR_API,)),
        "PrometheusRule",
    )
    files = {rule["metadata"]["annotations"]["gpucost.io/rule-file"] for rule in rules}
    assert files == set(_rule_files()) - {"gpucost.inference.rules.yaml"}


def _dashboard_data(manifests: Sequence[Manifest]) -> dict[str, str]:
    data: dict[str, str] = {}
    for config_map in of_kind(manifests, "ConfigMap"):
        if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
            assert len(config_map["data"]) == 1
            data.update(config_map["data"])
    return data


def test_the_dashboard_configmaps_are_exactly_the_dashboard_files() -> None:
    expected = {path.name: path.read_text() for path in sorted((REPO / "dashboards").glob("*.json"))}
    rendered = _dashboard_data(render())
    assert set(rendered) == set(expected)
    for name, text in expected.items():
        assert rendered[name] == text.rstrip("\n"), name
        json.loads(rendered[name])


def test_a_new_dashboard_file_is_picked_up_without_a_template_change(tmp_path: Path) -> None:
    # A copy of the repository layout with one more dashboard; `make dashboards` syncs the chart's copies.
    shutil.copytree(CHART, tmp_path / "helm" / "gpucost")
    for directory in ("rules", "alertmanager", "dashboards"):
        shutil.copytree(REPO / directory, tmp_path / directory)
    board = {"title": "New board", "uid": "gpucost-new", "panels": []}
    (tmp_path / "dashboards" / "gpucost-new_board.json").write_text(json.dumps(board))
    assert chartfiles_main(["--repo", str(tmp_path)]) == 0
    rendered = _dashboard_data(render(chart=tmp_path / "helm" / "gpucost"))
    assert json.loads(rendered["gpucost-new_board.json"]) == board
    assert len(rendered) == len(list((REPO / "dashboards").glob("*.json"))) + 1
    names = [m["metadata"]["name"] for m in render(chart=tmp_path / "helm" / "gpucost")]
    assert "gpucost-dashboard-new-board" in names


def test_a_chart_copied_out_of_the_repository_renders_the_same_without_warnings(tmp_path: Path) -> None:
    copy = tmp_path / "gpucost"
    shutil.copytree(CHART, copy)
    values = CHART / "ci" / "operator-values.yaml"
    assert render(values, chart=copy) == render(values)
    result = _run_helm(["lint", "--strict", str(copy), "-f", str(values)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "symbolic link" not in result.stdout + result.stderr


def test_the_alertmanager_templates_configmap_is_the_template_files() -> None:
    manifests = render(CHART / "ci" / "operator-values.yaml")
    config_map = next(m for m in of_kind(manifests, "ConfigMap") if m["metadata"]["name"].endswith("-templates"))
    expected = {p.name: p.read_text().rstrip("\n") for p in (REPO / "alertmanager" / "templates").glob("*.tmpl")}
    assert config_map["data"] == expected


def test_the_alertmanager_config_routes_every_team_with_templates_that_exist() -> None:
    values = CHART / "ci" / "operator-values.yaml"
    config = one(render(values, sets=("budgets.spec.budgets[0].name=ml-monthly",
                                       "budgets.spec.budgets[0].scope.team=ml",
                                       "budgets.spec.budgets[0].monthly_usd=1000")), "AlertmanagerConfig")
    routes = config["spec"]["route"]["routes"]
    teams = {m["value"] for route in routes for m in route["matchers"] if m["name"] == "team"}
    assert teams == {"ml", "nlp", "vision"}
    receivers = {r["name"] for r in config["spec"]["receivers"]}
    assert set(_route_receivers(config["spec"]["route"])) <= receivers
    defined = set(re.findall(r'define "([^"]+)"', (REPO / "alertmanager" / "templates" / "gpucost.tmpl").read_text()))
    used = set(re.findall(r'template "([^"]+)"', json.dumps(config["spec"]["receivers"]).replace('\\"', '"')))
    assert used
    assert used <= defined
    critical = next(r for r in config["spec"]["receivers"] if r["name"] == "ml-budgets-critical")
    assert critical["slackConfigs"][0]["sendResolved"] is True
    assert critical["slackConfigs"][0]["httpConfig"]["authorization"]["credentials"] == {
        "name": "gpucost-slack", "key": "bot-token"}


def test_webhook_mode_reads_one_secret_key_per_team() -> None:
    config = one(render(CHART / "ci" / "podmonitor-values.yaml"), "AlertmanagerConfig")
    keys = {c["apiURL"]["key"] for r in config["spec"]["receivers"] for c in r.get("slackConfigs", [])}
    assert keys == {"slack-webhook-team-research"}


# --- the exporter DaemonSet ---------------------------------------------------------------------


@pytest.mark.parametrize("case", RENDER_CASES, ids=_case_id)
def test_the_daemonset_mounts_pod_resources_read_only_and_is_never_privileged(
    case: tuple[str, Path | None, tuple[str, ...]],
) -> None:
    _, values, apis = case
    manifests = render(values, api_versions=apis)
    pod = one(manifests, "DaemonSet")["spec"]["template"]["spec"]
    container = exporter_container(manifests)
    context = container["securityContext"]
    assert context.get("privileged", False) is False
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for volume in volumes.values():
        if "hostPath" in volume and volume["name"] != "state":
            assert mounts[volume["name"]]["readOnly"] is True, volume
    if "--kubernetes.enabled" in container["args"]:
        assert mounts["pod-resources"] == {
            "name": "pod-resources", "mountPath": "/var/lib/kubelet/pod-resources", "readOnly": True}
        assert volumes["pod-resources"]["hostPath"]["path"] == "/var/lib/kubelet/pod-resources"
    assert volumes["state"]["hostPath"]["path"] == "/var/lib/gpucost"
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert "--config.file=/etc/gpucost/config.yaml" in container["args"]


def test_defaults_run_on_gpu_nodes_with_benchmark_sized_resources_and_no_host_pid() -> None:
    manifests = render()
    pod = one(manifests, "DaemonSet")["spec"]["template"]["spec"]
    container = exporter_container(manifests)
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert container["resources"] == {
        "requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "160Mi"}}
    assert "hostPID" not in pod
    assert "host-proc" not in {v["name"] for v in pod["volumes"]}
    assert "--kubernetes.enabled" in container["args"]
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"} in container["env"]
    assert container["ports"][0]["containerPort"] == 9835


def test_per_process_split_adds_host_pid_and_a_read_only_proc() -> None:
    manifests = render(CHART / "ci" / "per-process-values.yaml")
    pod = one(manifests, "DaemonSet")["spec"]["template"]["spec"]
    container = exporter_container(manifests)
    assert pod["hostPID"] is True
    assert {v["name"]: v for v in pod["volumes"]}["host-proc"]["hostPath"]["path"] == "/proc"
    assert {m["name"]: m for m in container["volumeMounts"]}["host-proc"]["readOnly"] is True
    assert "--host.proc=/host/proc" in container["args"]
    config = yaml.safe_load(_exporter_config(manifests))
    assert config["kubernetes"]["per_process"] is True
    assert config["kubernetes"]["replicas_per_gpu"] == 4


def _exporter_config(manifests: Sequence[Manifest]) -> str:
    config_map = next(m for m in of_kind(manifests, "ConfigMap") if "config.yaml" in m["data"])
    text: str = config_map["data"]["config.yaml"]
    return text


@pytest.mark.parametrize("case", RENDER_CASES, ids=_case_id)
def test_the_rendered_exporter_config_passes_the_exporters_own_validation(
    case: tuple[str, Path | None, tuple[str, ...]],
) -> None:
    _, values, apis = case
    manifests = render(values, api_versions=apis)
    config = parse_config(yaml.safe_load(_exporter_config(manifests)), "config.yaml")
    container = exporter_container(manifests)
    assert config.listen_address == f":{container['ports'][0]['containerPort']}"
    assert config.state_file.startswith("/var/lib/gpucost/")
    assert config.kubernetes.enabled == ("--kubernetes.enabled" in container["args"])


def test_mps_mode_lists_the_mps_resources_in_the_config() -> None:
    config = parse_config(yaml.safe_load(_exporter_config(render(CHART / "ci" / "mps-values.yaml"))), "c.yaml")
    assert config.kubernetes.mps_resources == ("nvidia.com/gpu.shared",)
    assert config.pricing.cloud == "onprem"


def test_the_exporter_cluster_role_is_exactly_pods_namespaces_and_nodes() -> None:
    role = one(render(), "ClusterRole")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
    ]
    assert not of_kind(render(), "Role")


# --- scraping -----------------------------------------------------------------------------------


def test_plain_prometheus_gets_scrape_annotations_and_operator_users_a_service_monitor() -> None:
    plain = render()
    annotations = one(plain, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9835"
    operator = render(api_versions=(OPERATOR_API,))
    assert "prometheus.io/scrape" not in one(operator, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    endpoint = one(operator, "ServiceMonitor")["spec"]["endpoints"][0]
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"} in (
        endpoint["relabelings"])
    job = next(r for r in endpoint["relabelings"] if r.get("targetLabel") == "job")
    assert job["replacement"] == RuleOptions().exporter_job  # what GpuCostExporterDown watches


def _exporter_down_expr(manifests: Sequence[Manifest]) -> str:
    for rule_object in of_kind(manifests, "PrometheusRule"):
        for group in rule_object["spec"]["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == "GpuCostExporterDown":
                    expr: str = rule["expr"]
                    return expr
    raise AssertionError("no GpuCostExporterDown in the PrometheusRules")


@pytest.mark.parametrize("values", ["operator-values.yaml", "podmonitor-values.yaml"])
def test_exporter_down_watches_the_job_the_monitors_set_even_when_renamed(values: str) -> None:
    def monitor_job(manifests: Sequence[Manifest]) -> str:
        monitor = next(m for m in manifests if m["kind"] in {"ServiceMonitor", "PodMonitor"}
                       and m["metadata"]["labels"]["app.kubernetes.io/component"] == "exporter")
        endpoints = monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"]
        job: str = next(r for r in endpoints[0]["relabelings"] if r.get("targetLabel") == "job")["replacement"]
        return job

    default = render(CHART / "ci" / values)
    assert monitor_job(default) == "gpucost-exporter"
    assert 'absent(up{job="gpucost-exporter"})' in _exporter_down_expr(default)
    renamed = render(CHART / "ci" / values, sets=("exporter.scrapeJobName=gpucost-exporter-east",))
    assert monitor_job(renamed) == "gpucost-exporter-east"
    expr = _exporter_down_expr(renamed)
    assert 'up{job="gpucost-exporter-east"} == 0' in expr
    assert 'absent(up{job="gpucost-exporter-east"})' in expr
    assert '"gpucost-exporter"' not in expr


def test_the_pod_monitor_replaces_the_service_monitor_with_the_same_relabeling() -> None:
    manifests = render(CHART / "ci" / "podmonitor-values.yaml")
    assert not of_kind(manifests, "ServiceMonitor")
    endpoint = one(manifests, "PodMonitor")["spec"]["podMetricsEndpoints"][0]
    assert endpoint["relabelings"][0]["sourceLabels"] == ["__meta_kubernetes_pod_node_name"]
    assert endpoint["relabelings"][0]["targetLabel"] == "node"


# --- TLS and basic auth on the exporter --------------------------------------------------------

TLS_VALUES = CHART / "ci" / "tls-values.yaml"
TLS_CONFIG = {"ca": {"secret": {"name": "gpucost-web-config", "key": "ca.crt"}}, "serverName": "gpucost-exporter"}
BASIC_AUTH = {"username": {"name": "gpucost-scrape-auth", "key": "username"},
              "password": {"name": "gpucost-scrape-auth", "key": "password"}}


def test_tls_mode_mounts_the_web_config_and_probes_over_https() -> None:
    manifests = render(TLS_VALUES)
    daemonset = one(manifests, "DaemonSet")
    container = exporter_container(manifests)
    assert "--web.config.file=/etc/gpucost-web/web-config.yml" in container["args"]
    # The whole Secret: web-config.yml names tls.crt and tls.key relative to itself.
    assert _secret_mounts(daemonset) == {"/etc/gpucost-web": ("gpucost-web-config", "*")}
    # The server exempts /healthz and /readyz from basic auth but not from TLS: an HTTP probe would fail.
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics", "scheme": "HTTPS"}


def test_tls_mode_monitors_scrape_https_with_tls_config_and_basic_auth() -> None:
    endpoint = one(render(TLS_VALUES), "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == TLS_CONFIG
    assert endpoint["basicAuth"] == BASIC_AUTH
    pod_monitor_sets = ("podMonitor.enabled=true", "podMonitor.tlsConfig.serverName=gpucost-exporter",
                        "podMonitor.tlsConfig.insecureSkipVerify=true")
    pod_endpoint = one(render(TLS_VALUES, sets=pod_monitor_sets), "PodMonitor")["spec"]["podMetricsEndpoints"][0]
    assert pod_endpoint["scheme"] == "https"
    assert pod_endpoint["tlsConfig"] == {"serverName": "gpucost-exporter", "insecureSkipVerify": True}


def test_tls_mode_without_the_operator_annotates_the_https_scheme() -> None:
    manifests = render(TLS_VALUES, sets=("prometheusOperator.objects=never",))
    annotations = one(manifests, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scheme"] == "https"
    assert one(manifests, "Service")["metadata"]["annotations"]["prometheus.io/scheme"] == "https"


def test_plain_mode_scrapes_and_probes_over_http() -> None:
    manifests = render(api_versions=(OPERATOR_API,))
    for monitor in of_kind(manifests, "ServiceMonitor"):
        assert [e["scheme"] for e in monitor["spec"]["endpoints"]] == ["http"]
        assert "tlsConfig" not in monitor["spec"]["endpoints"][0]
    container = exporter_container(manifests)
    assert not [a for a in container["args"] if a.startswith("--web.config.file")]
    assert container["livenessProbe"]["httpGet"].get("scheme", "HTTP") == "HTTP"


def test_tls_without_a_web_config_secret_is_refused_with_a_clear_message() -> None:
    result = _run_helm(["template", "gpucost", str(CHART), "--set", "exporter.webConfig.tls=true"])
    assert result.returncode != 0
    assert "exporter.webConfig.tls needs exporter.webConfig.existingSecret" in result.stderr


# --- the budget sidecar -------------------------------------------------------------------------


def test_the_budget_sidecar_is_off_by_default() -> None:
    names = {m["metadata"]["name"] for m in render()}
    assert not any(name.endswith("-budgets") for name in names)


def test_the_aws_sidecar_uses_irsa_a_secret_reference_and_a_valid_budgets_file(tmp_path: Path) -> None:
    manifests = render(CHART / "ci" / "budgets-aws-values.yaml")
    deployment = one(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["gpucost-budgets"]
    assert container["args"][0] == "serve"
    assert "--aws.enabled" in container["args"]
    assert "--web.listen-address=:9836" in container["args"]
    assert "--slack.bot-token-file=/var/run/secrets/slack/bot-token" in container["args"]
    assert _secret_mounts(deployment) == {"/var/run/secrets/slack": ("gpucost-slack", "bot-token")}
    assert "SLACK_BOT_TOKEN" not in {e["name"] for e in container["env"]}
    assert all("value" not in e or not re.search("(?i)secret|token|key", e["name"]) for e in container["env"])
    accounts = {m["metadata"]["name"]: m for m in of_kind(manifests, "ServiceAccount")}
    sidecar_account = accounts[deployment["spec"]["template"]["spec"]["serviceAccountName"]]
    assert "eks.amazonaws.com/role-arn" in sidecar_account["metadata"]["annotations"]
    pod_context = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod_context["runAsNonRoot"] is True
    budgets_map = next(m for m in of_kind(manifests, "ConfigMap") if "budgets.yaml" in m["data"])
    budget_file = parse_budget_file(yaml.safe_load(budgets_map["data"]["budgets.yaml"]), "budgets.yaml")
    assert [b.name for b in budget_file.budgets] == ["research-monthly", "platform-inference"]
    role = one(manifests, "Role")
    assert role["metadata"]["namespace"] == "inference"
    assert role["rules"][0] == {"apiGroups": [""], "resources": ["resourcequotas"],
                                "verbs": ["get", "create", "delete"]}


def test_the_gcp_sidecar_uses_workload_identity_and_an_existing_configmap() -> None:
    manifests = render(CHART / "ci" / "budgets-gcp-values.yaml")
    deployment = one(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert "--gcp.billing-account=0123AB-4567CD-89EF01" in args
    assert "--gcp.pubsub-topic=projects/ml-prod/topics/gpucost-budgets" in args
    assert "--gcp.billing-export-table=ml-billing.billing_export.gcp_billing_export_v1_0123AB_4567CD_89EF01" in args
    assert "--gcp.billing-export-label=k8s-label/team" in args
    assert not any(a.startswith("--gcp.bigquery-project") for a in args), "defaults to the table's project"
    assert {v["name"]: v for v in pod["volumes"]}["budgets"]["configMap"]["name"] == "team-budgets"
    assert not any("budgets.yaml" in m["data"] for m in of_kind(manifests, "ConfigMap"))
    accounts = {m["metadata"]["name"]: m for m in of_kind(manifests, "ServiceAccount")}
    assert "iam.gke.io/gcp-service-account" in accounts[pod["serviceAccountName"]]["metadata"]["annotations"]
    assert not of_kind(manifests, "Role")
    exporter_pod = one(manifests, "DaemonSet")["spec"]["template"]["spec"]
    assert "nodeSelector" not in exporter_pod
    assert "NVIDIA_VISIBLE_DEVICES" not in {e["name"] for e in exporter_container(manifests)["env"]}


def _secret_mounts(workload: Manifest) -> dict[str, tuple[str, str]]:
    """mountPath -> (Secret, its only projected key, or * for all) of the Secret volumes of the first container."""
    pod = workload["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, tuple[str, str]] = {}
    for mount in pod["containers"][0]["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        assert mount["readOnly"] is True, mount
        if "items" not in secret:
            mounts[mount["mountPath"]] = (secret["secretName"], "*")
            continue
        [item] = secret["items"]
        assert item["path"] == item["key"]
        mounts[mount["mountPath"]] = (secret["secretName"], item["key"])
    return mounts


def test_key_file_credentials_are_mounted_files_passed_by_flag() -> None:
    manifests = render(CHART / "ci" / "budgets-keyfile-values.yaml")
    deployment = one(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in container
    assert _secret_mounts(deployment) == {
        "/var/run/secrets/aws": ("gpucost-aws", "credentials"),
        "/var/run/secrets/gcp": ("gpucost-gcp", "credentials.json"),
    }
    assert "--aws.shared-credentials-file=/var/run/secrets/aws/credentials" in container["args"]
    assert "--gcp.credentials-file=/var/run/secrets/gcp/credentials.json" in container["args"]
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in {e["name"] for e in container["env"]}
    assert "--dry-run" in container["args"]


def test_secret_keys_are_configurable() -> None:
    manifests = render(CHART / "ci" / "budgets-keyfile-values.yaml", sets=(
        "budgets.aws.existingSecretKey=aws-ini",
        "budgets.slack.existingSecret=bot",
        "budgets.slack.existingSecretKey=t",
    ))
    deployment = one(manifests, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--aws.shared-credentials-file=/var/run/secrets/aws/aws-ini" in args
    assert "--slack.bot-token-file=/var/run/secrets/slack/t" in args
    assert _secret_mounts(deployment)["/var/run/secrets/slack"] == ("bot", "t")


@pytest.mark.parametrize("values", sorted((CHART / "ci").glob("budgets-*-values.yaml")), ids=lambda p: p.name)
def test_the_sidecar_accepts_every_flag_the_chart_passes(values: Path) -> None:
    from gpucost.budgets.cli import build_parser as budgets_parser

    args = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = budgets_parser().parse_args(args)
    for flag, dest in (("--slack.bot-token-file=", "slack_bot_token_file"),
                       ("--aws.shared-credentials-file=", "aws_shared_credentials_file"),
                       ("--gcp.credentials-file=", "gcp_credentials_file")):
        passed = [a.removeprefix(flag) for a in args if a.startswith(flag)]
        assert [str(getattr(parsed, dest))] == passed if passed else getattr(parsed, dest) is None


def _workloads(manifests: Sequence[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] in {"DaemonSet", "Deployment"}]


@pytest.mark.parametrize("case", RENDER_CASES, ids=_case_id)
def test_no_secret_reaches_a_container_through_its_environment(case: tuple[str, Path | None, tuple[str, ...]]) -> None:
    # Env vars show in `kubectl describe` and in every child process (checkov CKV_K8S_35): mount files.
    _, values, apis = case
    for workload in _workloads(render(values, api_versions=apis)):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert not [e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})], container
            assert not [s for s in container.get("envFrom", []) if "secretRef" in s], container


@pytest.mark.parametrize("values", sorted((CHART / "ci").glob("budgets-*-values.yaml")), ids=lambda p: p.name)
def test_the_budget_sidecar_has_a_liveness_probe_on_healthz(values: Path) -> None:
    container = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    probe = container["livenessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz", "http")


# --- values, schema and docs --------------------------------------------------------------------


BAD_VALUES = [
    pytest.param({"exporter": {"config": {"pricing": {"gpu_models": {"H100-80GB": -2.5}}}}},
                 "/exporter/config/pricing/gpu_models/H100-80GB", "exclusiveMinimum: got -2.5, want 0",
                 id="negative-price"),
    pytest.param({"exporter": {"sharing": {"mode": "vgpu"}}}, "/exporter/sharing/mode", "value must be one of",
                 id="unknown-sharing-mode"),
    pytest.param({"exporter": {"port": "metrics"}}, "/exporter/port", "got string, want integer", id="wrong-type"),
    pytest.param({"exporter": {"securityContext": {"privileged": True}}}, "/exporter/securityContext/privileged",
                 "value must be false", id="privileged"),
    pytest.param({"exporter": {"unknownKey": 1}}, "/exporter", "additional properties 'unknownKey' not allowed",
                 id="unknown-key"),
    pytest.param({"budgets": {"aws": {"secretAccessKey": "abc"}}}, "/budgets/aws", "additional properties",
                 id="inline-secret"),
    pytest.param({"budgets": {"enforcement": {"enabled": True}}}, "/budgets/enforcement/namespaces", "minItems",
                 id="enforcement-without-namespaces"),
    pytest.param({"exporter": {"config": {"sample_interval": "often"}}}, "/exporter/config/sample_interval",
                 "does not match pattern", id="bad-duration"),
    pytest.param({"budgets": {"gcp": {"billingExportTable": "billing_export"}}}, "/budgets/gcp/billingExportTable",
                 "does not match pattern", id="export-table-without-project"),
]


@pytest.mark.parametrize(("values", "where", "message"), BAD_VALUES)
def test_bad_values_are_rejected_by_the_schema_with_a_clear_message(
    values: dict[str, Any], where: str, message: str, tmp_path: Path
) -> None:
    values_file = tmp_path / "bad-values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = _run_helm(["template", "gpucost", str(CHART), "-f", str(values_file)])
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    line = next((ln for ln in result.stderr.splitlines() if f"at '{where}'" in ln), "")
    assert message in line, result.stderr


def _schema_leaves(schema: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    properties = schema.get("properties")
    if prefix and not properties:
        yield prefix
        return
    for name, child in (properties or {}).items():
        assert child.get("description"), f"{'.'.join((*prefix, name))} has no description in the schema"
        yield from _schema_leaves(child, (*prefix, name))


def _commented_keys(text: str) -> Iterator[tuple[tuple[str, ...], bool]]:
    """(key path, has a comment directly above) for every key line of values.yaml."""
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        match = re.match(r"^( *)([A-Za-z_][\w.-]*):", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            yield tuple(name for _, name in stack), previous.startswith("#")
        if stripped:
            previous = stripped


def test_every_value_is_in_the_schema_and_commented_in_values_yaml() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    leaves = set(_schema_leaves(schema))
    declared_objects = {leaf[:n] for leaf in leaves for n in range(1, len(leaf))}
    for path, commented in _commented_keys((CHART / "values.yaml").read_text()):
        inside_leaf = any(path[: len(leaf)] == leaf and len(path) > len(leaf) for leaf in leaves)
        if inside_leaf:
            continue  # keys inside a free-form object (resources, securityContext ...) document as one
        assert path in leaves or path in declared_objects, f"{'.'.join(path)} is missing from values.schema.json"
        assert commented, f"{'.'.join(path)} in values.yaml has no comment above it"


def test_the_readme_values_table_is_generated_from_the_schema() -> None:
    readme = (CHART / "README.md").read_text()
    assert render_readme(readme, CHART) == readme, "run: python -m gpucost.helmdocs"


def test_the_exporter_and_sidecar_ports_match_their_cli_defaults() -> None:
    from gpucost.budgets.cli import build_parser as budgets_parser
    from gpucost.config import DEFAULT_LISTEN_ADDRESS

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f":{values['exporter']['port']}" == DEFAULT_LISTEN_ADDRESS
    serve = budgets_parser().parse_args(["serve"])
    assert serve.listen_address == f":{values['budgets']['port']}"
