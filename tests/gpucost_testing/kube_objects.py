"""A scenario's pods and node as the Kubernetes API server serves them (for `KubeHarness`).

Pure functions, no I/O: the pod object of one occurrence of a scenario pod
(uid, labels, annotations, owner reference, each container's resource
requests) and the node object (labels, allocatable cpu, memory and
ephemeral-storage), with amounts written as Kubernetes quantity strings
("500m", "40", "64Gi"), which the exporter parses back
(`gpucost.sources.kept_metadata`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from gpucost.sources.kept_metadata import RESOURCE_NAMES
from gpucost.sources.scenario import ScenarioPod

__all__ = ["UID_NAMESPACE", "cpu_quantity", "kube_uid", "node_object", "pod_object", "quantities", "size_quantity"]

# The `uuid5` namespace for uids derived from non-UUID scenario uids.
UID_NAMESPACE = uuid.UUID("8f3c2a51-6d0e-4b7a-9c1f-2e4d6a8b0c13")
# How owner kinds map to the API group of their ownerReference.
_OWNER_API_VERSIONS = {
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "Node": "v1",
    "ReplicationController": "v1",
}
_KUBE_NAMES = {name: kube_name for kube_name, name in RESOURCE_NAMES.items()}
_BINARY_SUFFIXES = (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def kube_uid(scenario_uid: str) -> str:
    """The pod uid the API server and the cgroup path carry for a scenario uid."""
    try:
        return str(uuid.UUID(scenario_uid))
    except ValueError:
        return str(uuid.uuid5(UID_NAMESPACE, scenario_uid))


def cpu_quantity(cores: float) -> str:
    """Cores as the API server writes them: whole cores as "40", else millicores ("500m")."""
    millicores = round(cores * 1000)
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def size_quantity(size_bytes: float) -> str:
    """Bytes with the largest binary suffix that divides them ("64Gi"), else plain bytes."""
    whole = round(size_bytes)
    for suffix, unit in _BINARY_SUFFIXES:
        if whole and whole % unit == 0:
            return f"{whole // unit}{suffix}"
    return str(whole)


def quantities(amounts: Mapping[str, float]) -> dict[str, str]:
    """Scenario amounts (cpu, memory, storage) under their Kubernetes names (ephemeral-storage)."""
    return {
        _KUBE_NAMES[name]: cpu_quantity(amount) if name == "cpu" else size_quantity(amount)
        for name, amount in amounts.items()
        if name in _KUBE_NAMES
    }


def node_object(name: str, labels: Mapping[str, str], allocatable: Mapping[str, float]) -> dict[str, Any]:
    node: dict[str, Any] = {"metadata": {"name": name, "labels": dict(labels)}}
    if allocatable:
        node["status"] = {"allocatable": quantities(allocatable)}
    return node


def _container(name: str, requests: Mapping[str, float]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name}
    if requests:
        container["resources"] = {"requests": quantities(requests)}
    return container


def pod_object(pod: ScenarioPod, occurrence: int, node_name: str) -> dict[str, Any]:
    """The API server's object for one occurrence of a scenario pod, bound to `node_name`."""
    name, scenario_uid = pod.identity(occurrence)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": pod.namespace,
        "uid": kube_uid(scenario_uid),
        "labels": dict(pod.labels),
    }
    if pod.annotations:
        metadata["annotations"] = dict(pod.annotations)
    if pod.owner_kind:
        metadata["ownerReferences"] = [
            {
                "apiVersion": _OWNER_API_VERSIONS.get(pod.owner_kind, "v1"),
                "kind": pod.owner_kind,
                "name": pod.owner_name,
                "uid": str(uuid.uuid5(UID_NAMESPACE, f"{pod.owner_kind}/{pod.namespace}/{pod.owner_name}")),
                "controller": True,
            }
        ]
    return {
        "metadata": metadata,
        "spec": {
            "nodeName": node_name,
            "containers": [_container(container.name, container.requests) for container in pod.containers],
        },
        "status": {"phase": "Running"},
    }
