"""A simulated GPU node joined to a real kube-apiserver: what the exporter sees on a node of a cluster.

`KubeHarness` (gpucost_testing.kube_harness) replays a scenario through its own fake API
server, which lets it choose pod uids; a real API server assigns them, so pods here are
made through the real API instead and this adapter keeps the node's other two views in
step with them:

- the Node object (its labels price the GPUs) is created on the real server;
- the simulated NVML reads a scenario file with only the node's GPUs (constant utilization,
  no pods), anchored at `start_time` with speed 1, so scenario time is wall time;
- a real gRPC `FakeKubelet` on a unix socket lists, per running pod, the GPUs it was
  given; `run_pod` creates the pod through the API (`spec.nodeName` set, phase Running)
  before the kubelet lists it, `delete_pod` stops listing it before deleting it, as a
  node would.

Per-process attribution is left off: pods hold whole GPUs, so cost is price x time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gpucost.sources.podresources.client import ContainerDeviceAssignment
from gpucost_testing.fake_kubelet import FakeKubelet
from gpucost_testing.real_apiserver import RealApiServer

GPU_RESOURCE = "nvidia.com/gpu"
GPU_MODEL = "NVIDIA A100-SXM4-80GB"


class RealClusterNode:
    """One node: its Node object on `server`, a fake kubelet and a simulated NVML over `gpus`."""

    def __init__(
        self,
        server: RealApiServer,
        workdir: Path,
        *,
        node_name: str,
        node_labels: Mapping[str, str],
        gpus: Sequence[str],
        start_time: float,
    ) -> None:
        self.server = server
        self.workdir = workdir
        self.node_name = node_name
        self.node_labels = dict(node_labels)
        self.gpus = tuple(gpus)
        self.start_time = start_time
        self.scenario_path = workdir / "node-scenario.yaml"
        self.state_path = workdir / "exporter-state.json"
        self.kubelet = FakeKubelet()  # its own short temp dir: unix socket paths are short
        self._lock = threading.Lock()
        self._listed: dict[tuple[str, str], tuple[str, ...]] = {}

    def start(self) -> RealClusterNode:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_scenario()
        self.server.create_node(self.node_name, labels=self.node_labels)
        self.kubelet.set_allocatable({GPU_RESOURCE: list(self.gpus)})
        self.kubelet.start()
        return self

    def stop(self) -> None:
        self.kubelet.close()

    def exporter_args(self, kubeconfig: Path) -> list[str]:
        """Flags for `gpucost-exporter` (without --web.listen-address) on this node, with `kubeconfig`'s identity."""
        return [
            "--nvml.backend=simulated",
            f"--simulate.scenario={self.scenario_path}",
            "--kubernetes.enabled",
            f"--kubernetes.node-name={self.node_name}",
            f"--kubernetes.kubeconfig={kubeconfig}",
            f"--kubelet.pod-resources-socket={self.kubelet.socket_path}",
            "--kubelet.poll-interval=1s",
            f"--state.file={self.state_path}",
            "--sample.interval=1s",
        ]

    def _write_scenario(self) -> None:
        document: dict[str, Any] = {
            "node": {"name": self.node_name, "labels": self.node_labels},
            "start_time": self.start_time,
            "speed": 1,
            "duration": 24 * 3600,
            "gpus": [
                {
                    "uuid": uuid,
                    "index": index,
                    "model": GPU_MODEL,
                    "memory": "81920MiB",
                    "timeline": [{"at": 0, "utilization": 0.5, "memory_used": "40GiB", "power_watts": 250}],
                }
                for index, uuid in enumerate(self.gpus)
            ],
            "pods": [],
        }
        self.scenario_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    # --- pods ----------------------------------------------------------------------------

    def run_pod(
        self, namespace: str, name: str, gpus: Sequence[str], *, labels: Mapping[str, str] | None = None
    ) -> str:
        """Create the pod on the API server, bound here and Running, then let the kubelet list its GPUs; its uid."""
        pod = self.server.create_pod(namespace, name, self.node_name, labels=labels, gpus=len(gpus))
        self.server.set_pod_phase(namespace, name, "Running")
        with self._lock:
            self._listed[(namespace, name)] = tuple(gpus)
            self._publish()
        return str(pod["metadata"]["uid"])

    def delete_pod(self, namespace: str, name: str) -> None:
        """The containers end (the kubelet stops listing them), then the pod object is deleted."""
        with self._lock:
            self._listed.pop((namespace, name), None)
            self._publish()
        self.server.admin.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}?gracePeriodSeconds=0")

    def _publish(self) -> None:
        self.kubelet.set_pods([
            ContainerDeviceAssignment(namespace, pod, "main", GPU_RESOURCE, devices)
            for (namespace, pod), devices in sorted(self._listed.items())
        ])  # fmt: skip
