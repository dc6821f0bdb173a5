"""The chart's whole-node cost: nodes/metrics and nothing wider, NODE_IP for the kubelet, its config keys,
and the optional DaemonSet for nodes without GPUs."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from gpucost.config import ExporterConfig, parse_config
from gpucost_testing.helm_render import Manifest, of_kind, one, render

NODES_METRICS = {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]}
CPU_NODES = "exporter.cpuNodes.enabled=true"


def _config(manifests: Sequence[Manifest]) -> ExporterConfig:
    config_map = next(m for m in of_kind(manifests, "ConfigMap") if "config.yaml" in m["data"])
    return parse_config(yaml.safe_load(config_map["data"]["config.yaml"]), "config.yaml")


def _daemonsets(manifests: Sequence[Manifest]) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in of_kind(manifests, "DaemonSet")}


def _env(daemonset: Manifest) -> dict[str, object]:
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("valueFrom", item.get("value")) for item in container["env"]}


def _args(daemonset: Manifest) -> list[str]:
    args: list[str] = daemonset["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_the_cluster_role_adds_get_on_nodes_metrics_only() -> None:
    rules = one(render(), "ClusterRole")["rules"]
    assert NODES_METRICS in rules
    granted = {resource for rule in rules for resource in rule["resources"]}
    assert granted == {"pods", "namespaces", "nodes", "nodes/metrics"}, "never nodes/proxy or nodes/stats"
    assert all(rule["verbs"] == ["get"] for rule in rules if "nodes/metrics" in rule["resources"])


def test_the_exporter_gets_the_node_ip_and_reads_its_kubelet_by_default() -> None:
    manifests = render()
    (daemonset,) = _daemonsets(manifests).values()
    assert _env(daemonset)["NODE_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    settings = _config(manifests).kubernetes.kubelet_resource
    assert settings.enabled is True and settings.insecure_skip_tls_verify is False


def test_insecure_tls_is_passed_to_the_config() -> None:
    config = _config(render(sets=("exporter.kubernetes.kubeletResource.insecureSkipTlsVerify=true",)))
    assert config.kubernetes.kubelet_resource.insecure_skip_tls_verify is True


def test_turned_off_there_is_no_grant_no_node_ip_and_the_config_says_off() -> None:
    manifests = render(sets=("exporter.kubernetes.kubeletResource.enabled=false",))
    assert NODES_METRICS not in one(manifests, "ClusterRole")["rules"]
    (daemonset,) = _daemonsets(manifests).values()
    assert "NODE_IP" not in _env(daemonset)
    assert _config(manifests).kubernetes.kubelet_resource.enabled is False


def test_without_kubernetes_attribution_the_kubelet_is_not_read() -> None:
    manifests = render(sets=("exporter.kubernetes.enabled=false",))
    (daemonset,) = _daemonsets(manifests).values()
    assert "NODE_IP" not in _env(daemonset)
    assert _config(manifests).kubernetes.kubelet_resource.enabled is False
    assert not of_kind(manifests, "ClusterRole")


def test_the_no_gpu_daemonset_is_off_by_default() -> None:
    assert list(_daemonsets(render())) == ["gpucost"]


def test_the_no_gpu_daemonset_runs_without_a_gpu_backend_on_the_other_nodes() -> None:
    daemonsets = _daemonsets(render(sets=(CPU_NODES,)))
    assert set(daemonsets) == {"gpucost", "gpucost-cpu"}
    gpu, cpu = daemonsets["gpucost"], daemonsets["gpucost-cpu"]
    assert "--nvml.backend=none" in _args(cpu) and "--nvml.backend=none" not in _args(gpu)
    pod = cpu["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "NotIn",
                                            "values": ["true"]}]}]
    assert gpu["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    env = _env(cpu)
    assert "NVIDIA_VISIBLE_DEVICES" not in env and env["NODE_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert "tolerations" not in pod and "hostPID" not in pod and "runtimeClassName" not in pod


def test_each_daemonset_selects_its_own_pods_and_the_service_selects_both() -> None:
    manifests = render(sets=(CPU_NODES,))
    daemonsets = _daemonsets(manifests)
    cpu_selector = daemonsets["gpucost-cpu"]["spec"]["selector"]["matchLabels"]
    assert cpu_selector["gpucost.io/node-kind"] == "cpu"
    for daemonset in daemonsets.values():
        labels = daemonset["spec"]["template"]["metadata"]["labels"]
        assert daemonset["spec"]["selector"]["matchLabels"].items() <= labels.items()
        service_selector = one(manifests, "Service")["spec"]["selector"]
        assert service_selector.items() <= labels.items()


def test_the_no_gpu_daemonset_follows_the_per_process_and_placement_values() -> None:
    manifests = render(sets=(CPU_NODES, "exporter.perProcess.enabled=true",
                             "exporter.cpuNodes.nodeSelector.pool=web", "exporter.runtimeClassName=nvidia"))
    cpu = _daemonsets(manifests)["gpucost-cpu"]["spec"]["template"]["spec"]
    assert cpu["nodeSelector"] == {"pool": "web"}
    assert "hostPID" not in cpu and "runtimeClassName" not in cpu, "no GPU processes to map, no NVIDIA runtime"
    assert not any(mount["mountPath"] == "/host/proc" for mount in cpu["containers"][0]["volumeMounts"])
