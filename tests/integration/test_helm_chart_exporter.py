"""The Helm chart's exporter, rendered by the real helm binary: the DaemonSet and its exporter config,
how Prometheus scrapes it (annotations, ServiceMonitor or PodMonitor), and TLS with basic auth.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from gpucost.config import parse_config
from gpucost.rulegen import RuleOptions
from gpucost_testing.helm_render import (
    CHART,
    OPERATOR_API,
    RENDER_CASES,
    Manifest,
    case_id,
    exporter_container,
    of_kind,
    one,
    render,
    run_helm,
    secret_mounts,
)

pytestmark = pytest.mark.integration


# --- the exporter DaemonSet ---------------------------------------------------------------------


@pytest.mark.parametrize("case", RENDER_CASES, ids=case_id)
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


@pytest.mark.parametrize("case", RENDER_CASES, ids=case_id)
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


def test_the_exporter_cluster_role_is_exactly_pods_namespaces_nodes_and_nodes_metrics() -> None:
    role = one(render(), "ClusterRole")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},  # whole-node cost (#19)
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
    assert secret_mounts(daemonset) == {"/etc/gpucost-web": ("gpucost-web-config", "*")}
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
    result = run_helm(["template", "gpucost", str(CHART), "--set", "exporter.webConfig.tls=true"])
    assert result.returncode != 0
    assert "exporter.webConfig.tls needs exporter.webConfig.existingSecret" in result.stderr
