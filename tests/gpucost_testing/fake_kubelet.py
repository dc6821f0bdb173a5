"""A real gRPC PodResourcesLister server on a unix socket, scriptable from tests and the demo.

It speaks the kubelet's v1 wire protocol (the same generated code the client
uses), so the client under test goes through real gRPC: channel, socket,
deadline, status codes.  Scripting:

- `set_pods([...ContainerDeviceAssignment])` and `set_allocatable({resource: ids})`
  set what List, Get and GetAllocatableResources answer (ids in any format);
- `fail(code, method=...)` makes calls fail with a status code, `hang(...)`
  makes them block past any client deadline, `recover()` undoes both;
- `get_mode` mimics the kubelet's Get: served, disabled by feature gate
  (UNKNOWN "PodResources API Get method disabled") or absent (UNIMPLEMENTED);
- `stop()` shuts the server down and removes the socket file, `start()` brings
  it back on the same path (a new inode, as a restarted kubelet would);
- `calls` counts the requests each method received.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any, Literal

import grpc

from gpucost.sources.podresources.client import ContainerDeviceAssignment
from gpucost.sources.podresources.generated import api_pb2, api_pb2_grpc

__all__ = ["FakeKubelet", "GetMode"]

GetMode = Literal["served", "disabled", "unimplemented"]
METHODS = ("List", "GetAllocatableResources", "Get")
# Long enough to outlast any client deadline in the tests, short enough that a
# forgotten hang cannot stall the suite: stop() and recover() release it at once.
MAX_HANG_SECONDS = 30.0


class FakeKubelet:
    """Owns a short temp dir (unix socket paths are limited to ~107 bytes) and the server in it."""

    def __init__(self, socket_dir: Path | None = None) -> None:
        self._owned_dir = socket_dir is None
        self.socket_dir = Path(tempfile.mkdtemp(prefix="kubelet-")) if socket_dir is None else socket_dir
        self.socket_path = self.socket_dir / "kubelet.sock"
        self.calls: Counter[str] = Counter()
        self.get_mode: GetMode = "served"
        self._lock = threading.Lock()
        self._pods: tuple[ContainerDeviceAssignment, ...] = ()
        self._allocatable: dict[str, tuple[str, ...]] = {}
        self._failures: dict[str | None, tuple[grpc.StatusCode, str]] = {}
        self._hanging: set[str | None] = set()
        self._release = threading.Event()
        self._server: grpc.Server | None = None

    # --- scripting --------------------------------------------------------------

    def set_pods(self, assignments: Sequence[ContainerDeviceAssignment]) -> None:
        with self._lock:
            self._pods = tuple(assignments)

    def set_allocatable(self, allocatable: Mapping[str, Sequence[str]]) -> None:
        with self._lock:
            self._allocatable = {resource: tuple(ids) for resource, ids in allocatable.items()}

    def fail(
        self, code: grpc.StatusCode, details: str = "scripted failure", method: str | None = None
    ) -> None:
        """Fail `method` (every method when None) with `code` until recover()."""
        with self._lock:
            self._failures[_checked(method)] = (code, details)

    def hang(self, method: str | None = None) -> None:
        """Block `method` (every method when None) until recover() or stop()."""
        with self._lock:
            self._hanging.add(_checked(method))
            self._release.clear()

    def recover(self) -> None:
        with self._lock:
            self._failures.clear()
            self._hanging.clear()
            self._release.set()

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> FakeKubelet:
        if self._server is not None:
            return self
        self._release.clear()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-kubelet"))
        api_pb2_grpc.add_PodResourcesListerServicer_to_server(_Servicer(self), server)
        if server.add_insecure_port(f"unix:{self.socket_path}") == 0:
            raise RuntimeError(f"cannot listen on {self.socket_path}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Shut down and remove the socket file, as a kubelet that went away."""
        self._release.set()
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        self.socket_path.unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()
        if self._owned_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def __enter__(self) -> FakeKubelet:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- what the servicer reads ------------------------------------------------

    def _enter_call(self, method: str, context: grpc.ServicerContext) -> None:
        """Count the call, then hang or fail it as scripted."""
        with self._lock:
            self.calls[method] += 1
            hanging = method in self._hanging or None in self._hanging
            failure = self._failures.get(method) or self._failures.get(None)
            release = self._release
        if hanging:
            release.wait(MAX_HANG_SECONDS)
        if failure is not None:
            context.abort(failure[0], failure[1])

    def _pod_messages(self) -> list[Any]:
        with self._lock:
            pods = self._pods
        grouped: dict[tuple[str, str], dict[str, list[ContainerDeviceAssignment]]] = {}
        for assignment in pods:
            containers = grouped.setdefault((assignment.namespace, assignment.pod), {})
            containers.setdefault(assignment.container, []).append(assignment)
        return [
            api_pb2.PodResources(
                name=pod,
                namespace=namespace,
                containers=[
                    api_pb2.ContainerResources(
                        name=container,
                        devices=[
                            api_pb2.ContainerDevices(resource_name=a.resource, device_ids=list(a.device_ids))
                            for a in assignments
                        ],
                    )
                    for container, assignments in containers.items()
                ],
            )
            for (namespace, pod), containers in grouped.items()
        ]

    def _allocatable_message(self) -> Any:
        with self._lock:
            allocatable = dict(self._allocatable)
        # Like the kubelet: one entry per device, each with its NUMA node.
        return api_pb2.AllocatableResourcesResponse(
            devices=[
                api_pb2.ContainerDevices(
                    resource_name=resource,
                    device_ids=[device_id],
                    topology=api_pb2.TopologyInfo(nodes=[api_pb2.NUMANode(ID=0)]),
                )
                for resource, ids in allocatable.items()
                for device_id in ids
            ]
        )


class _Servicer(api_pb2_grpc.PodResourcesListerServicer):  # type: ignore[misc]
    def __init__(self, kubelet: FakeKubelet) -> None:
        self._kubelet = kubelet

    def List(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._kubelet._enter_call("List", context)
        return api_pb2.ListPodResourcesResponse(pod_resources=self._kubelet._pod_messages())

    def GetAllocatableResources(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._kubelet._enter_call("GetAllocatableResources", context)
        return self._kubelet._allocatable_message()

    def Get(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._kubelet._enter_call("Get", context)
        if self._kubelet.get_mode == "unimplemented":
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "unknown method Get for service v1.PodResourcesLister"
            )
        if self._kubelet.get_mode == "disabled":
            context.abort(grpc.StatusCode.UNKNOWN, "PodResources API Get method disabled")
        for pod in self._kubelet._pod_messages():
            if pod.name == request.pod_name and pod.namespace == request.pod_namespace:
                return api_pb2.GetPodResourcesResponse(pod_resources=pod)
        context.abort(
            grpc.StatusCode.UNKNOWN, f"pod {request.pod_name} in namespace {request.pod_namespace} not found"
        )


def _checked(method: str | None) -> str | None:
    if method is not None and method not in METHODS:
        raise ValueError(f"unknown PodResourcesLister method {method!r}; use one of {METHODS}")
    return method
