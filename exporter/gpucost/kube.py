"""Kubernetes attribution: kubelet pod-resources for who holds what, the API server for labels,
and (with `per_process`) the host's /proc for which pod each GPU process runs in.

Imported only when `kubernetes.enabled` is set, so the exporter without
Kubernetes never pays for lightkube or gRPC.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from gpucost.attribution import Providers
from gpucost.config import ExporterConfig
from gpucost.errors import ConfigError, SourceUnavailable
from gpucost.model import NodeInfo, PodMeta
from gpucost.sampler import GpuSource
from gpucost.sources.apiserver import ApiServerSource, resolve_node_name
from gpucost.sources.kept_metadata import KeptKeys
from gpucost.sources.kubelet_resource import KubeletResourceReader
from gpucost.sources.node_resources import KubeletNodeResources
from gpucost.sources.podresources.client import PodResourcesClient
from gpucost.sources.podresources.provider import PodResourcesAllocationProvider
from gpucost.sources.podresources.source import PodResourcesSource
from gpucost.sources.procfs import ProcfsPidOwners
from gpucost.sources.registry import APISERVER
from gpucost.truncation import TruncationCounter, TruncationCounts

__all__ = ["ApiServerMetadataProvider", "kubelet_node_resources", "kubernetes_providers"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Kept:
    """A pod's metadata as last served, and when (sampler clock) it was last live or asked for."""

    live: PodMeta
    served: PodMeta
    touched: float


class ApiServerMetadataProvider:
    """Pod, namespace and node labels from the API server watch.

    The API server forgets a pod on its DELETE event, but the kubelet may list
    it, and the sampler book its cost, for a while after.  So the metadata last
    seen of every pod is kept and served after the deletion for as long as
    someone asks for it (the sampler asks for every pod the kubelet lists, each
    tick, and for every pod of a tick it books), and dropped `retention_seconds`
    after it was last live or asked for.  A pod's earliest known start is kept
    too, so a restarted container does not move it later.  The labels of a
    namespace none of whose pods is live any more are kept the same way.
    """

    name = APISERVER.collector

    def __init__(self, source: ApiServerSource, retention_seconds: float = 600.0) -> None:
        self._source = source
        self._retention_seconds = retention_seconds
        self._started = False
        self._last_node = NodeInfo()
        self._clock = 0.0
        self._kept: dict[tuple[str, str], _Kept] = {}
        self._kept_namespaces: dict[str, tuple[Mapping[str, str], float]] = {}
        self._live_namespaces: frozenset[str] = frozenset()

    def refresh(self, now: float) -> None:
        if not self._started:
            self._source.start()
            self._started = True
        self._clock = now
        self._keep_live_pods()
        self._forget_untouched()
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

    def _keep_live_pods(self) -> None:
        """Remember every pod the watch knows now, so a pod deleted before anyone asked is still known."""
        live = self._source.pods()
        for pod in live:
            self._remember(pod)
        self._live_namespaces = frozenset(pod.namespace for pod in live)

    def _remember(self, live: PodMeta) -> PodMeta:
        key = (live.namespace, live.pod)
        kept = self._kept.get(key)
        if kept is not None and kept.live is live:
            kept.touched = self._clock
            return kept.served
        served = live
        if kept is not None and kept.served.uid == live.uid and _earlier(kept.served.started_at, live.started_at):
            served = replace(live, started_at=kept.served.started_at)
        self._kept[key] = _Kept(live, served, self._clock)
        return served

    def _forget_untouched(self) -> None:
        cutoff = self._clock - self._retention_seconds
        for key in [key for key, kept in self._kept.items() if kept.touched < cutoff]:
            del self._kept[key]
        for name in [name for name, (_, touched) in self._kept_namespaces.items() if touched < cutoff]:
            del self._kept_namespaces[name]

    def pod(self, namespace: str, pod: str) -> PodMeta | None:
        live = self._source.pod(namespace, pod)
        if live is not None:
            return self._remember(live)
        kept = self._kept.get((namespace, pod))
        if kept is None:
            return None
        kept.touched = self._clock
        return kept.served

    def pods(self) -> Sequence[PodMeta]:
        """This node's pods as the watch knows them now (whole-node cost reads their requests)."""
        return self._source.pods()

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        labels = self._source.namespace_labels(namespace)
        if labels or namespace in self._live_namespaces:
            if labels:
                self._kept_namespaces[namespace] = (labels, self._clock)
            return labels
        # No live pod is left in it: the namespace may be deleted, its pods' last cost keeps its labels.
        kept = self._kept_namespaces.get(namespace)
        if kept is None:
            return labels
        self._kept_namespaces[namespace] = (kept[0], self._clock)
        return kept[0]

    def node(self) -> NodeInfo:
        return self._last_node

    def truncation_counts(self) -> TruncationCounts:
        return self._source.truncation_counts()

    def pod_uids(self) -> Mapping[tuple[str, str], str]:
        return {(p.namespace, p.pod): p.uid for p in self._source.pods()}

    @property
    def source(self) -> ApiServerSource:
        """The watch behind the labels (a benchmark waits on it to see its own changes)."""
        return self._source

    def stop(self) -> None:
        if self._started:
            self._source.stop()


def _earlier(first: float | None, second: float | None) -> bool:
    return first is not None and (second is None or first < second)


def kubernetes_providers(
    config: ExporterConfig, backend: GpuSource | None, clock: Callable[[], float] = time.monotonic
) -> Providers:
    """The kubelet, API server and /proc providers for `config`; `clock` times the kubelet polls
    (the sampler's clock when it is not the host's, as in the live-node benchmark)."""
    k8s = config.kubernetes
    node_name = resolve_node_name(k8s.node_name or None)
    if not node_name:
        raise ConfigError(config.file or "--kubernetes.node-name", "kubernetes.node_name", "",
                          "is required with Kubernetes attribution (or set NODE_NAME from the downward API)")
    metadata = ApiServerMetadataProvider(
        # Keep only the pod and namespace labels/annotations the workload-label mapping reads.
        ApiServerSource(node_name, kubeconfig=k8s.kubeconfig or None,
                        kept_keys=KeptKeys.for_workload_labels(config.workload_labels)),
        retention_seconds=config.retention_seconds,
    )
    socket = k8s.pod_resources_socket
    source = PodResourcesSource(
        lambda: PodResourcesClient(socket),
        interval_seconds=k8s.pod_resources_interval_seconds,
        max_staleness_seconds=k8s.max_staleness_seconds,
        clock=clock,
    )
    allocations = PodResourcesAllocationProvider(
        source,
        extra_resource_names=k8s.extra_resource_names,
        mps_resources=k8s.mps_resources,
        replicas_per_gpu=k8s.replicas_per_gpu,
        pod_uids=metadata.pod_uids,
    )
    del backend
    pid_owners = ProcfsPidOwners(k8s.host_proc) if k8s.per_process else None
    return Providers(allocations, metadata, pid_owners, kubelet_node_resources(config, metadata))


def kubelet_node_resources(
    config: ExporterConfig, metadata: ApiServerMetadataProvider, environ: Mapping[str, str] | None = None
) -> KubeletNodeResources | None:
    """Whole-node cost's provider, or None when `kubernetes.kubelet_resource` is off or has no address.

    Turned on explicitly, a missing address is a config error; on by default
    (it follows `kubernetes.enabled`), it is a warning and CPU and memory stay
    unallocated: an older chart that does not pass NODE_IP keeps working.
    """
    settings = config.kubernetes.kubelet_resource
    if not settings.wanted(config.kubernetes.enabled):
        return None
    url = settings.url() if environ is None else settings.url(environ)
    if not url:
        problem = "has no kubelet to read: set it, or NODE_IP from the downward API (status.hostIP)"
        if settings.enabled:
            raise ConfigError(config.file or "--config.file", "kubernetes.kubelet_resource.address", "", problem)
        log.warning("whole-node cost: kubernetes.kubelet_resource.address %s; CPU and memory stay unallocated",
                    problem)
        return None
    truncation = TruncationCounter()
    reader = KubeletResourceReader(url, token_file=settings.token_file, ca_file=settings.ca_file,
                                   insecure_skip_tls_verify=settings.insecure_skip_tls_verify,
                                   truncation=truncation)
    return KubeletNodeResources(reader, metadata.pods, metadata.node,
                                max_staleness_seconds=config.kubernetes.max_staleness_seconds,
                                truncation=truncation)
