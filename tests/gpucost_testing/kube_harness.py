"""A simulated Kubernetes GPU node for the exporter: fake kubelet, fake API server, host /proc.

`KubeHarness` replays a scenario file (docs/scenarios.md) the way a real node
would show it to `gpucost-exporter --kubernetes.enabled`:

- a real gRPC `PodResourcesLister` (`FakeKubelet`) on `workdir/kubelet.sock`
  (or, with `socket_in_temp_dir`, in a short temp dir of its own) lists, per
  container, the raw device ids the scenario's pods hold at scenario time t
  (whole GPUs, `GPU-<uuid>::N` replicas, `MIG-<uuid>` slices, with the
  NVIDIA device plugin's resource names) and advertises every GPU, replica and
  MIG slice as allocatable;
- a real HTTP API server (`FakeApiServer`) holds the node object with the
  scenario's node labels (instance type, region, capacity type: what prices
  it) and allocatable cpu, memory and ephemeral-storage, one Namespace per
  scenario namespace (labels from `namespace_labels`), and the pods running at
  t with `spec.nodeName`, uid, labels, annotations, an owner reference and each
  container's resource requests (`kube_objects`).  A pod that ended is deleted
  `pod_deletion_delay` wall seconds after the kubelet stopped listing it, as a
  finished pod's object outlives its containers;
- the kubelet's `/metrics/resource` over HTTPS (`FakeKubeletResource`, with its
  own CA and token file under `workdir/kubelet-resource`): each running
  container's CPU and memory usage at the time of the request, for whole-node
  cost (docs/node-cost.md);
- a host proc tree `workdir/proc/<pid>/cgroup` (cgroup v2, systemd driver path
  with the pod uid) for every process of the scenario, so the exporter's
  per-process split works with `--host.proc=workdir/proc`.

A background thread refreshes all of it every `refresh_seconds` (0.5 s) at
scenario time t = (time.time() - start_time) * speed.  The exporter must run
the same clock: `exporter_args()` points `--simulate.scenario` at a copy of the
scenario with `start_time` and `speed` set, so the simulated NVML, the kubelet
and the API server agree on what happens when.  The config file it points
`--config.file` at sets per-process attribution and the kubelet's address, CA
and token, with `config_extra` (say, a `pricing` section) merged over it.

Kubernetes pod uids are UUIDs and the exporter's cgroup parser only accepts
those, so a scenario uid that is not a UUID (occurrence k of a recurring pod
is `<uid>-<k>`) is served as a stable UUID derived from it (`kube_uid`).

Failure scripting goes through the two fakes (`harness.kubelet`,
`harness.apiserver`) or the shortcuts `stop_kubelet()` / `start_kubelet()`
(socket removed / back on a new inode) and `apiserver_outage(bool)`.
`add_unknown_device(...)` makes the kubelet list a device id no GPU has.

Used by tests/integration/test_kubernetes_e2e.py and the one-command demo
(`python -m gpucost_demo`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gpucost.model import NodeResourceView
from gpucost.sources.podresources.client import ContainerDeviceAssignment
from gpucost.sources.scenario import Scenario, ScenarioPod, load_scenario, replica_device_id
from gpucost_testing.fake_apiserver import FakeApiServer
from gpucost_testing.fake_kubelet import FakeKubelet
from gpucost_testing.fake_kubelet_resource import FakeKubeletResource
from gpucost_testing.kube_objects import UID_NAMESPACE, kube_uid, node_object, pod_object

__all__ = ["KubeHarness", "kube_uid"]

log = logging.getLogger(__name__)

DEFAULT_NODE_NAME = "sim-node"
# sun_path is 108 bytes on Linux; gRPC needs the terminating NUL too.
MAX_SOCKET_PATH_BYTES = 107
GPU_RESOURCE = "nvidia.com/gpu"


def _cgroup_text(pod_uid: str, pid: int) -> str:
    """A cgroup v2 /proc/<pid>/cgroup as the kubelet's systemd driver lays it out."""
    slice_uid = pod_uid.replace("-", "_")
    container_id = uuid.uuid5(UID_NAMESPACE, f"{pod_uid}/{pid}").hex * 2
    return (
        "0::/kubepods.slice/kubepods-burstable.slice/"
        f"kubepods-burstable-pod{slice_uid}.slice/cri-containerd-{container_id}.scope\n"
    )


def _merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` over `base`: mappings merged key by key, any other value replaced."""
    merged = dict(base)
    for key, value in extra.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = _merged(below, value)
        else:
            merged[key] = value
    return merged


def _write_atomically(path: Path, text: str) -> None:
    """Readers (the exporter, every tick) must never see a half-written file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


class KubeHarness:
    """Fake kubelet + fake API server + host /proc, driven by a scenario on a shared clock.

    `scenario` is a scenario file path or a `Scenario` loaded from a file (its
    `source`); `start_time` is the unix time of scenario second 0 and `speed`
    the scenario seconds per wall second.  `namespace_labels` gives labels to
    namespaces (the scenario format has none), for the exporter's namespace
    fallback of workload labels.  `socket_in_temp_dir` puts the kubelet socket in
    a short temp dir (removed by `stop()`) instead of `workdir`, for a workdir too
    long for a unix socket path.  `config_extra` is merged into the exporter's
    config file (mappings merged key by key, anything else replaced).
    """

    def __init__(
        self,
        scenario: str | Path | Scenario,
        workdir: Path,
        *,
        node_name: str = DEFAULT_NODE_NAME,
        start_time: float,
        speed: float = 1.0,
        namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
        refresh_seconds: float = 0.5,
        pod_deletion_delay: float = 2.0,
        socket_in_temp_dir: bool = False,
        config_extra: Mapping[str, Any] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be greater than 0, got {speed!r}")
        if isinstance(scenario, Scenario):
            self.scenario_path = Path(scenario.source)
            self.scenario = scenario
        else:
            self.scenario_path = Path(scenario)
            self.scenario = load_scenario(self.scenario_path)
        self.workdir = workdir
        self.node_name = node_name
        self.start_time = start_time
        self.speed = speed
        self.refresh_seconds = refresh_seconds
        self.pod_deletion_delay = pod_deletion_delay
        self.proc_root = workdir / "proc"
        self.config_path = workdir / "exporter-kubernetes.yaml"
        self.anchored_scenario_path = workdir / "scenario-anchored.yaml"
        self.kubeconfig_path = workdir / "kubeconfig"
        self.state_path = workdir / "exporter-state.json"
        self.kubelet = FakeKubelet(None if socket_in_temp_dir else workdir)
        if len(bytes(self.kubelet.socket_path)) >= MAX_SOCKET_PATH_BYTES:
            self.kubelet.close()
            raise ValueError(
                f"{self.kubelet.socket_dir} is too long for a unix socket path; use a shorter one"
            )
        self.apiserver = FakeApiServer()
        self.kubelet_resource = FakeKubeletResource(workdir / "kubelet-resource", self._node_resources_at)
        self._config_extra = dict(config_extra or {})
        self._namespace_labels = {name: dict(labels) for name, labels in (namespace_labels or {}).items()}
        self._extra_assignments: list[ContainerDeviceAssignment] = []
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._served_pods: dict[tuple[str, str], str] = {}  # (namespace, pod) -> uid in the API server
        self._ended_at: dict[tuple[str, str], float] = {}  # pods gone from the kubelet, by wall time
        self._proc_owner: dict[int, str] = {}
        self._process_pods = self._index_processes()

    # --- clock -----------------------------------------------------------------

    def scenario_seconds(self, wall: float | None = None) -> float:
        """Scenario time at wall time `wall` (now by default); 0 before start_time."""
        moment = time.time() if wall is None else wall
        return max(0.0, (moment - self.start_time) * self.speed)

    def wall_time(self, scenario_seconds: float) -> float:
        """The unix time at which the scenario reaches `scenario_seconds`."""
        return self.start_time + scenario_seconds / self.speed

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> KubeHarness:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc_root.mkdir(exist_ok=True)
        self.kubelet_resource.start()  # before the config file, which names its address
        self._write_exporter_files()
        self.kubelet.start()
        self.apiserver.start()
        self.apiserver.write_kubeconfig(self.kubeconfig_path)
        self.apiserver.put(
            "nodes", node_object(self.node_name, self.scenario.node_labels, self.scenario.node_allocatable)
        )
        for namespace in sorted({pod.namespace for pod in self.scenario.pods} | set(self._namespace_labels)):
            self.apiserver.put_namespace(namespace, self._namespace_labels.get(namespace, {}))
        self.kubelet.set_allocatable(self.allocatable())
        self.refresh()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="kube-harness", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.kubelet.close()
        self.apiserver.stop()
        self.kubelet_resource.stop()

    def __enter__(self) -> KubeHarness:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what the exporter needs -----------------------------------------------------

    def exporter_args(self) -> list[str]:
        """Flags for `gpucost-exporter` (without --web.listen-address) to attribute through this node."""
        return [
            f"--config.file={self.config_path}",
            "--nvml.backend=simulated",
            f"--simulate.scenario={self.anchored_scenario_path}",
            "--kubernetes.enabled",
            f"--kubernetes.node-name={self.node_name}",
            f"--kubernetes.kubeconfig={self.kubeconfig_path}",
            f"--kubelet.pod-resources-socket={self.kubelet.socket_path}",
            "--kubelet.poll-interval=1s",
            f"--host.proc={self.proc_root}",
            f"--state.file={self.state_path}",
        ]

    def _write_exporter_files(self) -> None:
        document = yaml.safe_load(self.scenario_path.read_text(encoding="utf-8"))
        document["start_time"] = self.start_time
        document["speed"] = self.speed
        self.anchored_scenario_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        config: dict[str, Any] = {"kubernetes": {
            "per_process": True,
            "host_proc": str(self.proc_root),
            "kubelet_resource": self.kubelet_resource.exporter_config(),
        }}
        self.config_path.write_text(yaml.safe_dump(_merged(config, self._config_extra)), encoding="utf-8")

    # --- scripting -------------------------------------------------------------------

    def stop_kubelet(self) -> None:
        """The kubelet goes away: its server stops and the socket file is removed."""
        self.kubelet.stop()

    def start_kubelet(self) -> None:
        """The kubelet is back on the same path (a new socket inode)."""
        self.kubelet.start()

    def apiserver_outage(self, active: bool) -> None:
        """Every API request gets 503 while active; open watches are dropped when it starts."""
        self.apiserver.outage(active)

    def add_unknown_device(
        self,
        device_id: str,
        *,
        namespace: str = "default",
        pod: str = "unknown-device-holder",
        container: str = "main",
        resource: str = GPU_RESOURCE,
    ) -> None:
        """Make the kubelet list `device_id`, which no GPU of the scenario has, held by a container."""
        with self._lock:
            self._extra_assignments.append(
                ContainerDeviceAssignment(namespace, pod, container, resource, (device_id,))
            )

    # --- the scenario as the kubelet and the API server show it -------------------------

    def allocatable(self) -> dict[str, list[str]]:
        """Every device id the NVIDIA device plugin would advertise, by resource name."""
        advertised: dict[str, list[str]] = {}
        for gpu in self.scenario.gpus:
            if gpu.mig_enabled:
                for mig in gpu.mig_slices:
                    advertised.setdefault(f"nvidia.com/mig-{mig.profile}", []).append(mig.uuid)
            elif gpu.replicas:
                advertised.setdefault(GPU_RESOURCE, []).extend(
                    replica_device_id(gpu.uuid, replica) for replica in range(gpu.replicas)
                )
            else:
                advertised.setdefault(GPU_RESOURCE, []).append(gpu.uuid)
        return advertised

    def kubelet_assignments(self, t: float) -> list[ContainerDeviceAssignment]:
        """What the kubelet's List answers at scenario time `t`."""
        listed = [
            ContainerDeviceAssignment(
                held.container.namespace,
                held.container.pod,
                held.container.container,
                held.resource,
                held.device_ids,
            )
            for held in self.scenario.device_ids_at(t)
        ]
        with self._lock:
            return listed + self._extra_assignments

    def pod_object(self, pod: ScenarioPod, occurrence: int) -> dict[str, Any]:
        """The API server's object for one occurrence of a scenario pod."""
        return pod_object(pod, occurrence, self.node_name)

    def _node_resources_at(self, wall: float) -> NodeResourceView:
        """The running containers' requests and usage at wall time `wall`, for the kubelet's /metrics/resource."""
        return self.scenario.node_resources_at(self.scenario_seconds(wall))

    # --- refresh loop ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # the loop must outlive one bad refresh, or the node would freeze
                log.exception("kube harness refresh failed")

    def refresh(self, wall: float | None = None) -> None:
        """Bring the API server, the kubelet and /proc to the scenario at `wall` (now)."""
        with self._refresh_lock:
            self._refresh(time.time() if wall is None else wall)

    def _refresh(self, now: float) -> None:
        t = self.scenario_seconds(now)
        running = self.scenario.running_pods_at(t)
        # The API server learns of a pod before the kubelet lists its devices, as in a cluster.
        current: dict[tuple[str, str], str] = {}
        for pod, occurrence in running:
            name, scenario_uid = pod.identity(occurrence)
            key = (pod.namespace, name)
            current[key] = kube_uid(scenario_uid)
            if self._served_pods.get(key) != current[key]:
                self.apiserver.put("pods", self.pod_object(pod, occurrence))
                self._served_pods[key] = current[key]
            self._ended_at.pop(key, None)
        self.kubelet.set_pods(self.kubelet_assignments(t))
        for key in self._served_pods.keys() - current.keys():
            ended = self._ended_at.setdefault(key, now)
            if now - ended >= self.pod_deletion_delay:
                self.apiserver.delete_pod(*key)
                del self._served_pods[key]
                del self._ended_at[key]
        self._update_proc(running)

    def _index_processes(self) -> dict[int, ScenarioPod]:
        return {
            process.pid: pod
            for pod in self.scenario.pods
            for container in pod.containers
            for process in container.processes
        }

    def _update_proc(self, running: Sequence[tuple[ScenarioPod, int]]) -> None:
        """Each pid's cgroup names the pod occurrence running now (occurrence 0 when none is)."""
        occurrences = {id(pod): occurrence for pod, occurrence in running}
        for pid, pod in self._process_pods.items():
            owner = kube_uid(pod.identity(occurrences.get(id(pod), 0))[1])
            if self._proc_owner.get(pid) == owner:
                continue
            directory = self.proc_root / str(pid)
            with contextlib.suppress(FileExistsError):
                directory.mkdir()
            _write_atomically(directory / "cgroup", _cgroup_text(owner, pid))
            self._proc_owner[pid] = owner
