"""FakeApiServer: the store and REST verbs served over HttpFixture, and the calls a test scripts the cluster with."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Self

import yaml

from gpucost_testing.http_fixture import HttpFixture

from .objects import DEFAULT_RESOURCES, JsonObject, Resource, SeenRequest
from .rest import RestApi
from .store import InjectedFailure, ObjectStore

__all__ = ["FakeApiServer"]


class FakeApiServer:
    """Start with `with FakeApiServer() as server:`; `server.url` is `http://127.0.0.1:<port>`."""

    def __init__(self, resources: tuple[Resource, ...] = DEFAULT_RESOURCES) -> None:
        self._store = ObjectStore()
        for resource in resources:
            self.register(resource)
        self._http = HttpFixture({("*", "*"): RestApi(self._store)}, name="fake-apiserver")

    # --- lifecycle -----------------------------------------------------------

    def register(self, resource: Resource) -> None:
        self._store.register(resource)

    def start(self) -> Self:
        with self._store.lock:
            self._store.stopping = False
        self._http.start()
        return self

    def stop(self) -> None:
        """Cut every open watch first: a stream waiting for events would otherwise outlive the server."""
        with self._store.lock:
            self._store.stopping = True
            self._store.lock.notify_all()
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        return self._http.url

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig with one context pointing at this server over http with a dummy token."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(document))
        return path

    # --- scripting: generic objects -----------------------------------------

    def resource(self, plural: str, api_prefix: str = "/api/v1") -> Resource:
        return self._store.resource(plural, api_prefix)

    def put(self, plural: str, obj: JsonObject, api_prefix: str = "/api/v1") -> JsonObject:
        """Create or replace an object; returns the stored copy with its new resourceVersion."""
        resource = self.resource(plural, api_prefix)
        metadata = obj.setdefault("metadata", {})
        namespace = metadata.get("namespace", "") if resource.namespaced else ""
        return self._store.store((resource, namespace, metadata["name"]), obj)

    def get(
        self, plural: str, name: str, namespace: str = "", api_prefix: str = "/api/v1"
    ) -> JsonObject | None:
        return self._store.get((self.resource(plural, api_prefix), namespace, name))

    def delete(self, plural: str, name: str, namespace: str = "", api_prefix: str = "/api/v1") -> None:
        self._store.remove((self.resource(plural, api_prefix), namespace, name))

    # --- scripting: the objects the exporter watches ------------------------

    def add_pod(
        self,
        namespace: str,
        name: str,
        *,
        node_name: str,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        owner_references: list[JsonObject] | None = None,
    ) -> JsonObject:
        metadata: JsonObject = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
        if annotations:
            metadata["annotations"] = dict(annotations)
        if owner_references:
            metadata["ownerReferences"] = owner_references
        pod = {"metadata": metadata, "spec": {"nodeName": node_name, "containers": [{"name": "main"}]}}
        return self.put("pods", pod)

    def modify_pod(
        self,
        namespace: str,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> JsonObject:
        pod = self.get("pods", name, namespace)
        assert pod is not None, f"no pod {namespace}/{name}"
        if labels is not None:
            pod["metadata"]["labels"] = dict(labels)
        if annotations is not None:
            pod["metadata"]["annotations"] = dict(annotations)
        return self.put("pods", pod)

    def delete_pod(self, namespace: str, name: str) -> None:
        self.delete("pods", name, namespace)

    def put_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> JsonObject:
        return self.put("namespaces", {"metadata": {"name": name, "labels": dict(labels or {})}})

    def set_node(self, name: str, labels: Mapping[str, str]) -> JsonObject:
        return self.put("nodes", {"metadata": {"name": name, "labels": dict(labels)}})

    # --- scripting: failure modes -------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._store.lock:
            return self._store.resource_version

    def compact(self) -> int:
        """Forget history: watches from any older resourceVersion now get 410 Gone."""
        return self._store.compact()

    def send_bookmark(self) -> None:
        """Open watches that allowed bookmarks get a BOOKMARK at the current resourceVersion."""
        with self._store.lock:
            self._store.bookmark_generation += 1
            self._store.lock.notify_all()

    def drop_watches(self) -> None:
        """Close every open watch mid-stream, without the final chunk (a connection drop)."""
        self._store.bump_drop_generation()

    def outage(self, active: bool = True) -> None:
        """While active every request gets 503 and open watches are dropped."""
        with self._store.lock:
            self._store.outage = active
            if active:
                self._store.bump_drop_generation()

    def fail_next(
        self, path: str, status: int, *, count: int = 1, method: str = "GET", watch: bool | None = False
    ) -> None:
        """Answer the next `count` requests to `path` (`watch` None: list or watch) with `status`."""
        with self._store.lock:
            self._store.failures.append(InjectedFailure(method, path, status, count, watch))

    # --- what was asked ------------------------------------------------------

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request so far, in arrival order, outages and injected failures included."""
        return [SeenRequest.parse(request.method, request.target) for request in self._http.requests]

    def watch_resource_versions(self, path: str) -> list[str]:
        """The resourceVersion each watch on `path` started from, in order."""
        return [r.query.get("resourceVersion", "") for r in self.requests if r.path == path and r.is_watch]

    def list_count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path and r.method == "GET" and not r.is_watch)
