"""What the exporter's memory is with Kubernetes attribution on, against a real kube-apiserver.

A real etcd + kube-apiserver (`gpucost_testing.real_apiserver`), one Node and
200 pods bound to it in four team namespaces, each with the labels and
annotations a Deployment's pods carry (owner ReplicaSet, `pod-template-hash`,
`kubectl.kubernetes.io/last-applied-configuration`, the five workload labels).
A gRPC fake kubelet on a unix socket lists 8 of them as holding the node's 8
GPUs.  The real `gpucost-exporter` (simulated NVML, 1 s sampling, Kubernetes
attribution on, a ServiceAccount token kubeconfig bound to the chart's
read-only rules) lists and watches them for a steady window, scraped as
Prometheus would, while one pod is relabelled between scrapes so the watch
carries events; VmRSS and VmHWM come from /proc.

The client the exporter used before (the official `kubernetes` client) cannot
run in the same tree any more, so its figure is the one measured on this
benchmark before the change (`BEFORE`), and the run measures the reference
again the only way it still can: the import cost of `kubernetes.client` in a
separate process, against the import cost of the client used now.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpucost_bench.exporter_cost import import_cost_mib, status_kib

__all__ = ["BEFORE", "TARGET_PEAK_RSS_MIB", "run_exporter_k8s_memory"]

TARGET_PEAK_RSS_MIB = 64.0
PODS = 200
GPUS = 8
NODE_NAME = "ip-10-0-12-34.ec2.internal"
NODE_LABELS = {
    "node.kubernetes.io/instance-type": "p4de.24xlarge",
    "topology.kubernetes.io/region": "us-east-1",
    "topology.kubernetes.io/zone": "us-east-1a",
    "eks.amazonaws.com/capacityType": "ON_DEMAND",
    "kubernetes.io/os": "linux",
}
TEAMS = ("research", "search", "ads", "vision")
EXPORTER_NAMESPACE = "gpucost"
EXPORTER_ACCOUNT = "gpucost-exporter"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_MODEL = "NVIDIA A100-SXM4-80GB"
SCRAPE_INTERVAL_SECONDS = 15.0
# The same run (default mode) with the official `kubernetes` 36.0.3 client, measured on
# this machine at commit 5385996, before the exporter moved to lightkube.
BEFORE: dict[str, Any] = {
    "client": "the official kubernetes client 36.0.3",
    "commit": "5385996",
    "rss_mib": 106.6,
    "peak_rss_mib": 106.6,
}
_KUBERNETES_CLIENT = "import kubernetes.client, kubernetes.config, kubernetes.watch"
_LIGHTKUBE_CLIENT = "import lightkube, httpx2"


@dataclass(frozen=True)
class _Pod:
    namespace: str
    name: str
    gpu: str  # "" when it holds none


def _gpu_uuid(index: int) -> str:
    return f"GPU-5e0c{index:04d}-71a2-4c3e-9b1d-bench00000000"


def _pods() -> list[_Pod]:
    """200 pods over the four team namespaces; the first of each GPU slot holds that GPU."""
    pods = []
    for number in range(PODS):
        team = TEAMS[number % len(TEAMS)]
        gpu = _gpu_uuid(number) if number < GPUS else ""
        pods.append(_Pod(team, f"{team}-{'trainer' if gpu else 'worker'}-{number:03d}", gpu))
    return pods


def _pod_labels(pod: _Pod, number: int) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": pod.name.rsplit("-", 1)[0],
        "app.kubernetes.io/instance": f"{pod.namespace}-{number % 7}",
        "app.kubernetes.io/managed-by": "Helm",
        "pod-template-hash": f"{number * 7919 % 0xFFFFFF:06x}",
        "team": pod.namespace,
        "model": f"{pod.namespace}-model-{number % 5}",
        "model_version": f"v{number % 3 + 1}",
        "cost_center": f"cc-{1000 + number % 11}",
        "business_unit": "ml-platform" if number % 2 else "applied-ml",
    }


def _pod_annotations(pod: _Pod, labels: dict[str, str]) -> dict[str, str]:
    """What `kubectl apply` and common operators leave on a pod (about 1 KiB, none of it kept)."""
    applied = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": labels, "name": pod.name,
                                                               "namespace": pod.namespace}}
    return {
        "kubectl.kubernetes.io/last-applied-configuration": yaml.safe_dump(applied),
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
    }


def _owner(pod: _Pod, number: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{pod.name.rsplit('-', 1)[0]}-{number % 7}",
            "uid": f"00000000-0000-4000-8000-{number:012d}", "controller": True}


def _populate(server: Any) -> list[_Pod]:
    for team in TEAMS:
        server.create_namespace(team, labels={"team": team, "kubernetes.io/metadata.name": team})
    server.create_node(NODE_NAME, labels=NODE_LABELS)
    pods = _pods()
    for number, pod in enumerate(pods):
        labels = _pod_labels(pod, number)
        server.create_pod(pod.namespace, pod.name, NODE_NAME, labels=labels,
                          annotations=_pod_annotations(pod, labels), owner_references=[_owner(pod, number)],
                          gpus=1 if pod.gpu else 0, gpu_resource=GPU_RESOURCE)
        server.set_pod_phase(pod.namespace, pod.name, "Running")
    return pods


def _exporter_kubeconfig(server: Any, workdir: Path) -> Path:
    """A ServiceAccount token kubeconfig with the chart's exporter rules (read pods and namespaces, get nodes)."""
    server.create_namespace(EXPORTER_NAMESPACE)
    server.create_service_account(EXPORTER_NAMESPACE, EXPORTER_ACCOUNT)
    server.admin.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": EXPORTER_ACCOUNT},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
        ],
    })  # fmt: skip
    server.admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": EXPORTER_ACCOUNT},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": EXPORTER_ACCOUNT},
        "subjects": [{"kind": "ServiceAccount", "name": EXPORTER_ACCOUNT, "namespace": EXPORTER_NAMESPACE}],
    })  # fmt: skip
    token = server.service_account_token(EXPORTER_NAMESPACE, EXPORTER_ACCOUNT)
    kubeconfig: Path = server.token_kubeconfig(token, workdir / "exporter.kubeconfig")
    return kubeconfig


def _write_scenario(path: Path, start_time: float) -> Path:
    """The node's GPUs only, on wall time: the pods come from the API server and the kubelet."""
    document = {
        "node": {"name": NODE_NAME, "labels": NODE_LABELS},
        "start_time": start_time,
        "speed": 1,
        "duration": 24 * 3600,
        "gpus": [
            {"uuid": _gpu_uuid(index), "index": index, "model": GPU_MODEL, "memory": "81920MiB",
             "timeline": [{"at": 0, "utilization": 0.6, "memory_used": "40GiB", "power_watts": 250}]}
            for index in range(GPUS)
        ],
        "pods": [],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _scrape_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
    return text


def _attributed(url: str, pod: _Pod) -> bool:
    """The API server's labels reached a GPU holder's cost series (watch synced, kubelet read)."""
    text = _scrape_text(url)
    return ('gpucost_exporter_collector_success{collector="apiserver"} 1' in text
            and f'pod="{pod.name}"' in text and f'team="{pod.namespace}"' in text)


def _wait_attributed(url: str, pod: _Pod, timeout: float = 90.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if _attributed(url, pod):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"the exporter never attributed {pod.namespace}/{pod.name} within {timeout:.0f} s")


class _Window:
    """Scrape every SCRAPE_INTERVAL_SECONDS and relabel one pod between scrapes; VmRSS seen at each scrape."""

    def __init__(self, server: Any, pods: list[_Pod], url: str, pid: int) -> None:
        self._server, self._pods, self._url, self._pid = server, pods, url, pid
        self.scrapes = 0
        self.relabels = 0
        self.max_rss_kib = 0

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._relabel_one()
            _scrape_text(self._url)
            self.scrapes += 1
            self.max_rss_kib = max(self.max_rss_kib, status_kib(self._pid, "VmRSS"))
            time.sleep(max(0.0, min(SCRAPE_INTERVAL_SECONDS, deadline - time.monotonic())))

    def _relabel_one(self) -> None:
        pod = self._pods[self.relabels % len(self._pods)]
        self._server.admin.merge_patch(f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}",
                                       {"metadata": {"labels": {"model_version": f"v{self.relabels % 9 + 1}"}}})
        self.relabels += 1


def _client_imports() -> dict[str, Any]:
    kubernetes = import_cost_mib(_KUBERNETES_CLIENT)
    lightkube = import_cost_mib(_LIGHTKUBE_CLIENT)
    return {
        "kubernetes_client_mib": kubernetes["import_mib"],
        "lightkube_client_mib": lightkube["import_mib"],
        "ratio_lightkube_to_kubernetes": lightkube["import_mib"] / kubernetes["import_mib"],
        "method": "each in its own process after the exporter's modules, VmRSS before and after",
    }


def _measure(workdir: Path, server: Any, window_seconds: float) -> dict[str, Any]:
    from gpucost.sources.podresources.client import ContainerDeviceAssignment
    from gpucost_testing.fake_kubelet import FakeKubelet
    from gpucost_testing.servers import start_exporter

    populate_started = time.monotonic()
    pods = _populate(server)
    populate_seconds = time.monotonic() - populate_started
    kubeconfig = _exporter_kubeconfig(server, workdir)
    holders = [pod for pod in pods if pod.gpu]
    with FakeKubelet() as kubelet:
        kubelet.set_allocatable({GPU_RESOURCE: [pod.gpu for pod in holders]})
        kubelet.set_pods([ContainerDeviceAssignment(pod.namespace, pod.name, "main", GPU_RESOURCE, (pod.gpu,))
                          for pod in holders])
        kubelet.start()
        scenario = _write_scenario(workdir / "scenario.yaml", time.time())
        exporter = start_exporter(workdir, [
            "--nvml.backend=simulated", f"--simulate.scenario={scenario}", "--sample.interval=1s",
            "--kubernetes.enabled", f"--kubernetes.node-name={NODE_NAME}", f"--kubernetes.kubeconfig={kubeconfig}",
            f"--kubelet.pod-resources-socket={kubelet.socket_path}", "--kubelet.poll-interval=1s",
            f"--state.file={workdir / 'state.json'}", "--log.level=warn"])  # fmt: skip
        with exporter:
            assert exporter.process is not None
            pid = exporter.process.pid
            url = exporter.base_url + "/metrics"
            attributed_after = _wait_attributed(url, holders[-1])
            window = _Window(server, pods, url, pid)
            started = time.monotonic()
            window.run(window_seconds)
            elapsed = time.monotonic() - started
            rss_kib, hwm_kib = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
            owner_series = _scrape_text(url).count("gpucost_pod_owner_info{")
    return {
        "pods_on_node": len(pods),
        "gpu_holders": len(holders),
        "namespaces": len(TEAMS),
        "populate_seconds": populate_seconds,
        "attributed_after_seconds": attributed_after,
        "window_seconds": elapsed,
        "scrapes": window.scrapes,
        "relabels": window.relabels,
        "pod_owner_info_series": owner_series,
        "rss_mib": rss_kib / 1024,
        "max_rss_at_scrapes_mib": window.max_rss_kib / 1024,
        "peak_rss_mib": hwm_kib / 1024,
    }


def run_exporter_k8s_memory(workdir: Path, quick: bool) -> dict[str, Any]:
    """The measurement; `status` is "skipped" with the reason when no kube-apiserver or etcd is installed."""
    from gpucost_testing.real_apiserver import KUBE_VERSION, RealApiServer, RealClusterUnavailable

    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "exporter_k8s_memory", "before": BEFORE,
                              "target": {"peak_rss_mib": TARGET_PEAK_RSS_MIB}}
    case_dir = workdir / "k8s-memory"
    try:
        server = RealApiServer(case_dir / "apiserver").start()
    except RealClusterUnavailable as err:
        return {**result, "status": "skipped", "reason": str(err)}
    try:
        process = _measure(case_dir, server, 20.0 if quick else 120.0)
    finally:
        server.stop()
    imports = _client_imports()
    return {
        **result,
        "status": "run",
        "kube_apiserver": KUBE_VERSION,
        "apiserver_startup_seconds": server.startup_seconds,
        "process": process,
        "client_imports": imports,
        "ratio_peak_to_before": process["peak_rss_mib"] / BEFORE["peak_rss_mib"],
        "passed": process["peak_rss_mib"] <= TARGET_PEAK_RSS_MIB,
        "wall_seconds": time.perf_counter() - started,
    }


def _main() -> None:  # pragma: no cover - a manual run prints what `make bench` would record
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gpucost-k8s-memory-") as scratch:
        print(json.dumps(run_exporter_k8s_memory(Path(scratch), "--quick" in sys.argv), indent=2))


if __name__ == "__main__":
    _main()

