"""What the API-server watches last said about this node's pods, the namespaces and the node.

`MetadataCache` is the in-memory, thread-safe store that `ApiServerSource`'s
threads write and the sampler reads without blocking on the network:

- this node's pods by (namespace, name), replaced by a list and updated by
  watch events; an unchanged pod keeps its `PodMeta` object, so caches keyed
  on identity downstream stay warm;
- deleted pods' final state for DELETED_POD_GRACE_SECONDS, because the kubelet
  lists a pod for a while after its deletion and its last cost is booked later;
- every namespace's labels (the workload-label namespace fallback), one
  read-only mapping per namespace that stays the same object until it changes;
- this node's name and labels (they price it).

`pod_meta_from_object` and `node_info_from_object` turn decoded objects into
the model's `PodMeta` and `NodeInfo`; `gpucost.sources.apiserver` re-exports them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from gpucost.model import NodeInfo, PodMeta
from gpucost.sources.kept_metadata import EVERY_KEY, NODE_KEYS, KubeObject, kube_object_from_raw
from gpucost.truncation import SOURCE_APISERVER, TruncationCounter

__all__ = [
    "DELETED_POD_GRACE_SECONDS",
    "MetadataCache",
    "node_info_from_object",
    "pod_meta_from_object",
]

# How long a deleted pod's final state is kept: the kubelet lists it for a poll or more after the
# delete, and its last tick is booked a settle delay later (docs/kubernetes.md, allocation edges).
DELETED_POD_GRACE_SECONDS = 120.0

_EMPTY_LABELS: Mapping[str, str] = MappingProxyType({})


def pod_meta_from_object(pod: Mapping[str, Any] | KubeObject) -> PodMeta:
    """The cached part of a pod: names, uid, labels, annotations (every key of a raw dict), owner and lifetime."""
    kept = pod if isinstance(pod, KubeObject) else kube_object_from_raw(
        pod, EVERY_KEY, TruncationCounter(), SOURCE_APISERVER
    )
    return PodMeta(
        namespace=kept.namespace,
        pod=kept.name,
        uid=kept.uid,
        labels=kept.labels,
        annotations=kept.annotations,
        owner_kind=kept.owner_kind,
        owner_name=kept.owner_name,
        started_at=kept.started_at,
        finished_at=kept.finished_at,
        deleted_at=kept.deleted_at,
        container_requests=kept.container_requests,
    )


def node_info_from_object(node: Mapping[str, Any] | KubeObject) -> NodeInfo:
    kept = node if isinstance(node, KubeObject) else kube_object_from_raw(
        node, NODE_KEYS, TruncationCounter(), SOURCE_APISERVER
    )
    return NodeInfo(name=kept.name, labels=kept.labels, allocatable=kept.allocatable)


class MetadataCache:
    """Thread-safe pods, recently deleted pods, namespace labels and node, as the watches last saw them.

    The grace period for deleted pods runs on the monotonic clock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pods: dict[tuple[str, str], PodMeta] = {}
        # Pods the watch deleted, with their final state (the container end times written just before
        # the delete) and when the delete was seen: the kubelet lists a pod for seconds after its
        # deletion and its last cost is booked later still, so its labels and times must outlive it.
        self._deleted: dict[tuple[str, str], tuple[PodMeta, float]] = {}
        self._namespaces: dict[str, Mapping[str, str]] = {}
        self._node: NodeInfo | None = None

    # --- reads (no I/O) -------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> PodMeta | None:
        """The pod as the watch knows it, or its final state for a while after it was deleted."""
        with self._lock:
            live = self._pods.get((namespace, name))
            if live is not None:
                return live
            deleted = self._deleted.get((namespace, name))
            return deleted[0] if deleted is not None else None

    def pods(self) -> list[PodMeta]:
        """This node's pods as the watch knows them now (deleted ones only through `pod()`)."""
        with self._lock:
            found = list(self._pods.values())
        return sorted(found, key=lambda pod: (pod.namespace, pod.pod))

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        """The namespace's labels; the same object until they change (the label mapper caches on it)."""
        with self._lock:
            return self._namespaces.get(namespace, _EMPTY_LABELS)

    def node(self) -> NodeInfo | None:
        with self._lock:
            return self._node

    # --- updates from the list + watch threads ----------------------------------------

    def replace_pods(self, items: list[KubeObject]) -> None:
        fresh = {}
        for item in items:
            pod = pod_meta_from_object(item)
            fresh[(pod.namespace, pod.pod)] = pod
        with self._lock:
            # Keep unchanged PodMeta objects so identity-keyed caches downstream stay warm.
            for key, pod in fresh.items():
                known = self._pods.get(key)
                if known is not None and known == pod:
                    fresh[key] = known
            # A relist after a gap: pods missing from it were deleted while we were not watching.
            for key, gone in self._pods.items():
                if key not in fresh:
                    self._remember_deleted(key, gone)
            for key in fresh:
                self._deleted.pop(key, None)
            self._pods = fresh

    def apply_pod_event(self, event_type: str, obj: KubeObject) -> None:
        pod = pod_meta_from_object(obj)
        key = (pod.namespace, pod.pod)
        with self._lock:
            if event_type == "DELETED":
                self._pods.pop(key, None)
                self._remember_deleted(key, pod)
            elif self._pods.get(key) != pod:
                self._deleted.pop(key, None)
                # Most MODIFIED events are status changes; the cached metadata stays the same object.
                self._pods[key] = pod

    def _remember_deleted(self, key: tuple[str, str], pod: PodMeta) -> None:
        """Keep a deleted pod's final state, its container end times included (called under the lock).

        Only the times the API server wrote bound the pod's life: the moment the delete is seen
        is on this host's wall clock, which the sampler's clock need not follow (a simulated node
        runs its own), so it is not used as an end.
        """
        self._deleted[key] = (pod, time.monotonic())
        self._expire_deleted()

    def _expire_deleted(self) -> None:
        cutoff = time.monotonic() - DELETED_POD_GRACE_SECONDS
        for key in [key for key, (_, seen) in self._deleted.items() if seen < cutoff]:
            del self._deleted[key]

    def replace_namespaces(self, items: list[KubeObject]) -> None:
        fresh: dict[str, Mapping[str, str]] = {}
        for item in items:
            fresh[item.name] = MappingProxyType(dict(item.labels))
        with self._lock:
            for name, labels in fresh.items():
                known = self._namespaces.get(name)
                if known is not None and known == labels:
                    fresh[name] = known
            self._namespaces = fresh

    def apply_namespace_event(self, event_type: str, obj: KubeObject) -> None:
        name = obj.name
        labels = dict(obj.labels)
        with self._lock:
            if event_type == "DELETED":
                self._namespaces.pop(name, None)
            elif self._namespaces.get(name) != labels:
                self._namespaces[name] = MappingProxyType(labels)

    def set_node(self, node: NodeInfo) -> None:
        """Keep the node as last read; an equal reading keeps the cached object."""
        with self._lock:
            if self._node != node:
                self._node = node
