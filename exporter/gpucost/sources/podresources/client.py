"""A typed client of the kubelet's PodResourcesLister v1 service on its unix socket.

Every gRPC failure (socket missing, permission denied, kubelet restarting,
deadline exceeded) becomes `SourceUnavailable`; callers never see grpc errors.
The channel is rebuilt when the socket file is replaced (a restarted kubelet
creates a new inode), because a channel to the old inode would sit in gRPC's
reconnect backoff instead of reaching the new kubelet at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from gpucost.errors import SourceUnavailable
from gpucost.truncation import LONG_DEVICE_ID, SOURCE_KUBELET, TruncationCounter

from .generated import api_pb2, api_pb2_grpc

__all__ = [
    "MAX_DEVICE_ID_CHARS",
    "ContainerDeviceAssignment",
    "MethodUnsupported",
    "PodResourcesClient",
    "ResourceFilter",
    "pod_assignments",
]

# The kubelet's own pod-resources client allows 16 MiB; a node with hundreds of
# pods and per-device topology exceeds gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# Device ids are uuids or short paths (`GPU-<uuid>::3`, `nvidia0/vgpu2`); a
# longer one cannot name a device, so it is cut (and then counts as unmapped).
MAX_DEVICE_ID_CHARS = 256

# What the kubelet answers (code UNKNOWN) when the KubeletPodResourcesGet gate is off.
_GET_DISABLED_TEXT = "Get method disabled"


# A name for the list type, because inside the class `list` is the method.
Assignments = list["ContainerDeviceAssignment"]
# Which extended resources to keep (the GPU ones); the rest of a List answer is never copied.
ResourceFilter = Callable[[str], bool]


def _every_resource(resource: str) -> bool:
    return True


class MethodUnsupported(SourceUnavailable):
    """The kubelet is reachable but does not serve this method (old version or gate off)."""


@dataclass(frozen=True, slots=True)
class ContainerDeviceAssignment:
    """The device ids of one extended resource that the kubelet gave one container."""

    namespace: str
    pod: str
    container: str
    resource: str
    device_ids: tuple[str, ...]


class PodResourcesClient:
    """Calls List, GetAllocatableResources and Get, each with a deadline."""

    def __init__(self, socket_path: str, timeout_seconds: float = 5.0) -> None:
        self.socket_path = socket_path
        self.timeout_seconds = timeout_seconds
        self._channel: grpc.Channel | None = None
        self._stub: Any = None
        self._channel_inode: int | None = None
        self._get_supported = True

    def list(
        self, keep_resource: ResourceFilter = _every_resource, counter: TruncationCounter | None = None
    ) -> Assignments:
        """Device assignments of every container on the node; raises SourceUnavailable.

        Only assignments of resources `keep_resource` accepts are built; the
        response message itself goes as soon as this returns.
        """
        response = self._call("List", api_pb2.ListPodResourcesRequest())
        assignments: list[ContainerDeviceAssignment] = []
        for pod in response.pod_resources:
            assignments.extend(pod_assignments(pod, keep_resource, counter))
        return assignments

    def allocatable(self) -> dict[str, tuple[str, ...]]:
        """Resource name -> every device id the node advertises; raises SourceUnavailable."""
        response = self._call("GetAllocatableResources", api_pb2.AllocatableResourcesRequest())
        # The kubelet sends one entry per device (each with its own topology), so
        # merge them; a dict keeps the kubelet's order and drops repeats.
        merged: dict[str, dict[str, None]] = {}
        for entry in response.devices:
            ids = merged.setdefault(str(entry.resource_name), {})
            ids.update((str(device_id), None) for device_id in entry.device_ids)
        return {resource: tuple(ids) for resource, ids in merged.items()}

    def get(self, namespace: str, pod: str) -> Assignments:
        """Device assignments of one pod; [] when the kubelet does not know the pod.

        Falls back to filtering List when the kubelet does not serve Get
        (before Kubernetes 1.27, or with the KubeletPodResourcesGet gate off).
        """
        if not self._get_supported:
            return self._get_through_list(namespace, pod)
        request = api_pb2.GetPodResourcesRequest(pod_name=pod, pod_namespace=namespace)
        try:
            response = self._call("Get", request)
        except MethodUnsupported:
            self._get_supported = False
            return self._get_through_list(namespace, pod)
        except _PodNotFound:
            return []
        return pod_assignments(response.pod_resources)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None
        self._stub = None
        self._channel_inode = None

    def __enter__(self) -> PodResourcesClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------

    def _get_through_list(self, namespace: str, pod: str) -> Assignments:
        return [a for a in self.list() if a.namespace == namespace and a.pod == pod]

    def _call(self, method: str, request: Any) -> Any:
        stub = self._connected_stub()
        try:
            return getattr(stub, method)(request, timeout=self.timeout_seconds)
        except grpc.RpcError as error:
            raise _translate(method, self.socket_path, error) from error

    def _connected_stub(self) -> Any:
        try:
            inode = os.stat(self.socket_path).st_ino
        except FileNotFoundError as error:
            self.close()
            raise SourceUnavailable(f"kubelet pod-resources socket {self.socket_path} is missing") from error
        except OSError as error:
            self.close()
            raise SourceUnavailable(f"cannot stat kubelet socket {self.socket_path}: {error}") from error
        if self._stub is None or inode != self._channel_inode:
            self.close()
            self._channel = grpc.insecure_channel(
                f"unix://{self.socket_path}",
                options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
            )
            self._stub = api_pb2_grpc.PodResourcesListerStub(self._channel)
            self._channel_inode = inode
        return self._stub


class _PodNotFound(SourceUnavailable):
    """Get named a pod the kubelet does not know; the caller turns it into []."""


def _translate(method: str, socket_path: str, error: grpc.RpcError) -> SourceUnavailable:
    # grpc raises RpcErrors that are also Calls (code, details); the stubs can't say so.
    code_of = getattr(error, "code", None)
    details_of = getattr(error, "details", None)
    code = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details = str(details_of() or "") if callable(details_of) else ""
    message = f"kubelet {method} on {socket_path} failed: {code.name}: {details}"
    if code is grpc.StatusCode.UNIMPLEMENTED or (
        code is grpc.StatusCode.UNKNOWN and _GET_DISABLED_TEXT in details
    ):
        return MethodUnsupported(message)
    # The kubelet reports an unknown pod as UNKNOWN "pod X in namespace Y not found".
    if method == "Get" and (
        code is grpc.StatusCode.NOT_FOUND or (code is grpc.StatusCode.UNKNOWN and "not found" in details)
    ):
        return _PodNotFound(message)
    return SourceUnavailable(message)


def pod_assignments(
    pod: Any, keep_resource: ResourceFilter = _every_resource, counter: TruncationCounter | None = None
) -> list[ContainerDeviceAssignment]:
    """The non-empty device assignments of one PodResources message for the kept resources."""
    return [
        ContainerDeviceAssignment(
            namespace=str(pod.namespace),
            pod=str(pod.name),
            container=str(container.name),
            resource=str(devices.resource_name),
            device_ids=tuple(_capped_device_id(str(device_id), counter) for device_id in devices.device_ids),
        )
        for container in pod.containers
        for devices in _non_empty(container.devices)
        if keep_resource(str(devices.resource_name))
    ]


def _capped_device_id(device_id: str, counter: TruncationCounter | None) -> str:
    if len(device_id) <= MAX_DEVICE_ID_CHARS:
        return device_id
    if counter is not None:
        counter.add(SOURCE_KUBELET, LONG_DEVICE_ID)
    return device_id[:MAX_DEVICE_ID_CHARS]


def _non_empty(devices: Iterable[Any]) -> Iterable[Any]:
    return (entry for entry in devices if entry.device_ids)
