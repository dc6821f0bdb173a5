"""Kubernetes attribution: kubelet pod-resources for who holds what, the API server for labels.

Imported only when `kubernetes.enabled` is set, so the exporter without
Kubernetes never pays for the `kubernetes` client or gRPC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gpucost.attribution import AllocationProvider, MetadataProvider
from gpucost.config import ExporterConfig
from gpucost.errors import ConfigError, SourceUnavailable
from gpucost.model import NodeInfo, PodMeta
from gpucost.sampler import GpuSource
from gpucost.sources.apiserver import ApiServerSource, resolve_node_name
from gpucost.sources.kept_metadata import KeptKeys
from gpucost.sources.podresources.client import PodResourcesClient
from gpucost.sources.podresources.provider import PodResourcesAllocationProvider
from gpucost.sources.podresources.source import PodResourcesSource
from gpucost.sources.procfs import pod_uid_for_pid
from gpucost.sources.truncation import TruncationCounts
from gpucost.sources.workload_labels import DEFAULT_WORKLOAD_LABEL_CONFIG, parse_workload_label_config

__all__ = ["ApiServerMetadataProvider", "kubernetes_providers"]


class ApiServerMetadataProvider:
    """Pod, namespace and node labels from the API server watch; pids through the host's /proc."""

    name = "kubernetes"

    def __init__(self, source: ApiServerSource, host_proc: str, per_process: bool) -> None:
        self._source = source
        self._host_proc = host_proc
        self._per_process = per_process
        self._started = False
        self._last_node = NodeInfo()

    def refresh(self, now: float) -> None:
        if not self._started:
            self._source.start()
            self._started = True
        node = self._source.node()
        if node is not None:
            self._last_node = node
        if not self._source.healthy:
            # Cached labels keep serving; the health metric shows the outage.
            raise SourceUnavailable(self._source.last_error or "API server unreachable")
        if not self._source.synced:
            # Not a success until the first list arrived: an API server that never answers must show
            # as "never answered" on /readyz, not as healthy with empty labels.
            raise SourceUnavailable(self._source.last_error or "waiting for the first list from the API server")

    def pod(self, namespace: str, pod: str) -> PodMeta | None:
        return self._source.pod(namespace, pod)

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return self._source.namespace_labels(namespace)

    def node(self) -> NodeInfo:
        return self._last_node

    def truncation_counts(self) -> TruncationCounts:
        return self._source.truncation_counts()

    def pod_uids(self) -> Mapping[tuple[str, str], str]:
        return {(p.namespace, p.pod): p.uid for p in self._source.pods()}

    def pid_to_pod_uid(self) -> Callable[[int], str | None] | None:
        if not self._per_process:
            return None
        proc = self._host_proc
        return lambda pid: pod_uid_for_pid(pid, proc)

    def stop(self) -> None:
        if self._started:
            self._source.stop()


def kubernetes_providers(config: ExporterConfig, backend: GpuSource) -> tuple[AllocationProvider, MetadataProvider]:
    k8s = config.kubernetes
    node_name = resolve_node_name(k8s.node_name or None)
    if not node_name:
        raise ConfigError(config.file or "--kubernetes.node-name", "kubernetes.node_name", "",
                          "is required with Kubernetes attribution (or set NODE_NAME from the downward API)")
    # Keep only the pod and namespace labels/annotations the workload-label mapping reads.
    label_config = (
        DEFAULT_WORKLOAD_LABEL_CONFIG
        if config.workload_labels_raw is None
        else parse_workload_label_config(config.workload_labels_raw, config.file)
    )
    metadata = ApiServerMetadataProvider(
        ApiServerSource(node_name, kubeconfig=k8s.kubeconfig or None,
                        kept_keys=KeptKeys.for_workload_labels(label_config)),
        k8s.host_proc,
        k8s.per_process,
    )
    socket = k8s.pod_resources_socket
    source = PodResourcesSource(
        lambda: PodResourcesClient(socket),
        interval_seconds=k8s.pod_resources_interval_seconds,
        max_staleness_seconds=k8s.max_staleness_seconds,
    )
    allocations = PodResourcesAllocationProvider(
        source,
        extra_resource_names=k8s.extra_resource_names,
        mps_resources=k8s.mps_resources,
        replicas_per_gpu=k8s.replicas_per_gpu,
        pod_uids=metadata.pod_uids,
    )
    del backend
    return allocations, metadata
