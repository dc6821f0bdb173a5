"""A small in-process Kubernetes API server for tests and the demo, speaking enough of the
REST API for the official `kubernetes` Python client.

Objects live in one generic store keyed by (resource, namespace, name), with one
global resourceVersion counter and an event history, the way etcd backs the real
server.  Supported for every registered resource (pods, namespaces, nodes,
resourcequotas, configmaps by default; `register()` adds more):

- GET list (`/api/v1/pods`, `/api/v1/namespaces/<ns>/pods`) with `fieldSelector`
  (`a.b=v`, `a.b!=v`, comma-separated) and `labelSelector` (`k=v`, `k!=v`, `k`),
  returning `metadata.resourceVersion`;
- GET watch (`?watch=1&resourceVersion=N&allowWatchBookmarks=true&timeoutSeconds=T`):
  chunked, newline-delimited ADDED/MODIFIED/DELETED/BOOKMARK events; a watch from
  a compacted resourceVersion gets an ERROR event with a 410 Status, as the real
  server sends it; an object leaving the field selector arrives as DELETED;
- GET/PUT/PATCH (JSON merge)/DELETE of one object, POST to a collection.

Scripting for tests: `add_pod`, `modify_pod`, `delete_pod`, `put_namespace`,
`set_node`, `compact()`, `send_bookmark()`, `drop_watches()`, `outage()` (503 to
every request, open watches closed), `fail_next(...)` (e.g. HTTP 410 on a list),
and `requests` (every request seen, for asserting resume resourceVersions).
`write_kubeconfig()` writes a kubeconfig pointing at the server over plain http.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULT_RESOURCES", "FakeApiServer", "JsonObject", "Resource", "SeenRequest"]

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """One REST resource: `/api/v1` + `pods` -> kind Pod, namespaced."""

    api_prefix: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return "v1" if self.api_prefix == "/api/v1" else self.api_prefix.removeprefix("/apis/")


DEFAULT_RESOURCES = (
    Resource("/api/v1", "pods", "Pod", True),
    Resource("/api/v1", "namespaces", "Namespace", False),
    Resource("/api/v1", "nodes", "Node", False),
    Resource("/api/v1", "resourcequotas", "ResourceQuota", True),
    Resource("/api/v1", "configmaps", "ConfigMap", True),
)


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: Mapping[str, str]

    @property
    def is_watch(self) -> bool:
        return _truthy(self.query.get("watch"))


def _truthy(value: str | None) -> bool:
    """Query booleans as Go's strconv.ParseBool reads them (the Python client sends `True`)."""
    return (value or "").lower() in ("1", "t", "true")


@dataclass
class _Event:
    resource_version: int
    resource: Resource
    type: str
    old: JsonObject | None
    new: JsonObject | None


@dataclass
class _InjectedFailure:
    method: str
    path: str
    status: int
    remaining: int
    watch: bool | None


@dataclass
class _State:
    lock: threading.Condition = field(default_factory=lambda: threading.Condition(threading.RLock()))
    objects: dict[tuple[Resource, str, str], JsonObject] = field(default_factory=dict)
    history: list[_Event] = field(default_factory=list)
    resource_version: int = 1
    compacted_below: int = 0
    drop_generation: int = 0
    bookmark_generation: int = 0
    outage: bool = False
    stopping: bool = False
    failures: list[_InjectedFailure] = field(default_factory=list)
    requests: list[SeenRequest] = field(default_factory=list)
    connections: set[socket.socket] = field(default_factory=set)


class FakeApiServer:
    """Start with `with FakeApiServer() as server:`; `server.url` is `http://127.0.0.1:<port>`."""

    def __init__(self, resources: tuple[Resource, ...] = DEFAULT_RESOURCES) -> None:
        self._resources: dict[tuple[str, str], Resource] = {}
        for resource in resources:
            self.register(resource)
        self._state = _State()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------

    def register(self, resource: Resource) -> None:
        self._resources[(resource.api_prefix, resource.plural)] = resource

    def start(self) -> FakeApiServer:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-apiserver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._state.lock:
            self._state.stopping = True
            self._state.lock.notify_all()
            open_connections = list(self._state.connections)
        if self._server is not None:
            self._server.shutdown()
            # Idle keep-alive connections would keep their handler threads (and server_close) waiting.
            for connection in open_connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        return self._resources[(api_prefix, plural)]

    def put(self, plural: str, obj: JsonObject, api_prefix: str = "/api/v1") -> JsonObject:
        """Create or replace an object; returns the stored copy with its new resourceVersion."""
        resource = self.resource(plural, api_prefix)
        metadata = obj.setdefault("metadata", {})
        key = (resource, metadata.get("namespace", "") if resource.namespaced else "", metadata["name"])
        with self._state.lock:
            return self._store(key, obj)

    def get(
        self, plural: str, name: str, namespace: str = "", api_prefix: str = "/api/v1"
    ) -> JsonObject | None:
        resource = self.resource(plural, api_prefix)
        with self._state.lock:
            found = self._state.objects.get((resource, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def delete(self, plural: str, name: str, namespace: str = "", api_prefix: str = "/api/v1") -> None:
        resource = self.resource(plural, api_prefix)
        with self._state.lock:
            self._remove((resource, namespace, name))

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
        with self._state.lock:
            return self._state.resource_version

    def compact(self) -> int:
        """Forget history: watches from any older resourceVersion now get 410 Gone."""
        with self._state.lock:
            self._state.compacted_below = self._state.resource_version
            self._state.history.clear()
            return self._state.compacted_below

    def send_bookmark(self) -> None:
        """Open watches that allowed bookmarks get a BOOKMARK at the current resourceVersion."""
        with self._state.lock:
            self._state.bookmark_generation += 1
            self._state.lock.notify_all()

    def drop_watches(self) -> None:
        """Close every open watch mid-stream, without the final chunk (a connection drop)."""
        with self._state.lock:
            self._state.drop_generation += 1
            self._state.lock.notify_all()

    def outage(self, active: bool = True) -> None:
        """While active every request gets 503 and open watches are dropped."""
        with self._state.lock:
            self._state.outage = active
            if active:
                self._state.drop_generation += 1
                self._state.lock.notify_all()

    def fail_next(
        self, path: str, status: int, *, count: int = 1, method: str = "GET", watch: bool | None = False
    ) -> None:
        """Answer the next `count` requests to `path` (`watch` None: list or watch) with `status`."""
        with self._state.lock:
            self._state.failures.append(_InjectedFailure(method, path, status, count, watch))

    @property
    def requests(self) -> list[SeenRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def watch_resource_versions(self, path: str) -> list[str]:
        """The resourceVersion each watch on `path` started from, in order."""
        return [r.query.get("resourceVersion", "") for r in self.requests if r.path == path and r.is_watch]

    def list_count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path and r.method == "GET" and not r.is_watch)

    # --- store internals (call with the lock held) ---------------------------

    def _store(self, key: tuple[Resource, str, str], obj: JsonObject) -> JsonObject:
        resource, namespace, name = key
        state = self._state
        old = state.objects.get(key)
        state.resource_version += 1
        stored = copy.deepcopy(obj)
        metadata = stored.setdefault("metadata", {})
        metadata["name"] = name
        if resource.namespaced:
            metadata["namespace"] = namespace
        metadata["resourceVersion"] = str(state.resource_version)
        metadata.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        stored["kind"] = resource.kind
        stored["apiVersion"] = resource.api_version
        state.objects[key] = stored
        event_type = "MODIFIED" if old is not None else "ADDED"
        state.history.append(_Event(state.resource_version, resource, event_type, old, stored))
        state.lock.notify_all()
        return copy.deepcopy(stored)

    def _remove(self, key: tuple[Resource, str, str]) -> JsonObject | None:
        state = self._state
        old = state.objects.pop(key, None)
        if old is None:
            return None
        state.resource_version += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(state.resource_version)
        state.history.append(_Event(state.resource_version, key[0], "DELETED", old, gone))
        state.lock.notify_all()
        return gone


# --- selectors ------------------------------------------------------------------


def _field_value(obj: JsonObject, dotted: str) -> str:
    current: Any = obj
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    return "" if current is None else str(current)


def _matches(obj: JsonObject, field_selector: str, label_selector: str) -> bool:
    for term in filter(None, field_selector.split(",")):
        if "!=" in term:
            path, value = term.split("!=", 1)
            if _field_value(obj, path) == value:
                return False
        else:
            path, value = term.replace("==", "=").split("=", 1)
            if _field_value(obj, path) != value:
                return False
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, label_selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _precondition_conflict(obj: JsonObject, preconditions: Mapping[str, Any]) -> bool:
    metadata = obj.get("metadata") or {}
    return any(
        preconditions.get(field) not in (None, "") and preconditions.get(field) != metadata.get(field)
        for field in ("uid", "resourceVersion")
    )


def _status(code: int, reason: str, message: str) -> JsonObject:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (used for merge and, approximately, strategic merge patches)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


# --- HTTP -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Route:
    resource: Resource
    namespace: str
    name: str


def _make_handler(server: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        fake = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeApiServer

    def setup(self) -> None:
        super().setup()
        with self.fake._state.lock:
            self.fake._state.connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._state.lock:
            self.fake._state.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `requests` instead of a log."""

    # --- dispatch ---

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        body = self._read_body()
        state = self.fake._state
        seen = SeenRequest(method, parsed.path, query)
        with state.lock:
            state.requests.append(seen)
            if state.outage:
                self._send_json(503, _status(503, "ServiceUnavailable", "the server is unavailable"))
                return
            injected = self._take_failure(seen)
        if injected is not None:
            reason = "Expired" if injected == 410 else "InjectedFailure"
            self._send_json(injected, _status(injected, reason, f"injected HTTP {injected}"))
            return
        route = self._route(parsed.path)
        if route is None:
            self._send_json(404, _status(404, "NotFound", f"no route for {parsed.path}"))
            return
        if method == "GET" and not route.name and seen.is_watch:
            self._watch(route, query)
        elif method == "GET" and not route.name:
            self._list(route, query)
        elif method == "GET":
            self._get(route)
        elif method == "POST" and not route.name:
            self._create(route, body)
        elif method in ("PUT", "PATCH") and route.name:
            self._update(route, body, patch=method == "PATCH")
        elif method == "DELETE" and route.name:
            self._delete(route, body)
        else:
            self._send_json(405, _status(405, "MethodNotAllowed", f"{method} {parsed.path}"))

    def _take_failure(self, seen: SeenRequest) -> int | None:
        for failure in self.fake._state.failures:
            if failure.remaining <= 0 or failure.method != seen.method or failure.path != seen.path:
                continue
            if failure.watch is not None and failure.watch != seen.is_watch:
                continue
            failure.remaining -= 1
            return failure.status
        return None

    def _route(self, path: str) -> _Route | None:
        for prefix_len in (3, 4):  # /api/v1/...  or  /apis/<group>/<version>/...
            parts = path.strip("/").split("/")
            prefix = "/" + "/".join(parts[:prefix_len - 1])
            rest = parts[prefix_len - 1 :]
            if not rest or rest == [""]:
                continue
            if rest[0] == "namespaces" and len(rest) >= 3:
                resource = self.fake._resources.get((prefix, rest[2]))
                if resource is not None and resource.namespaced and len(rest) <= 4:
                    return _Route(resource, rest[1], rest[3] if len(rest) == 4 else "")
            resource = self.fake._resources.get((prefix, rest[0]))
            if resource is not None and len(rest) <= 2:
                return _Route(resource, "", rest[1] if len(rest) == 2 else "")
        return None

    # --- handlers ---

    def _list(self, route: _Route, query: Mapping[str, str]) -> None:
        state = self.fake._state
        with state.lock:
            items = [
                copy.deepcopy(obj)
                for obj in self._objects_in(route)
                if _matches(obj, query.get("fieldSelector", ""), query.get("labelSelector", ""))
            ]
            version = str(state.resource_version)
        for item in items:
            item.pop("kind", None)
            item.pop("apiVersion", None)
        kind = route.resource.kind + "List"
        self._send_json(
            200,
            {
                "kind": kind,
                "apiVersion": route.resource.api_version,
                "metadata": {"resourceVersion": version},
                "items": items,
            },
        )

    def _objects_in(self, route: _Route) -> Iterator[JsonObject]:
        for (resource, namespace, _), obj in sorted(
            self.fake._state.objects.items(), key=lambda entry: (entry[0][1], entry[0][2])
        ):
            if resource == route.resource and (not route.namespace or namespace == route.namespace):
                yield obj

    def _get(self, route: _Route) -> None:
        with self.fake._state.lock:
            found = self.fake._state.objects.get((route.resource, route.namespace, route.name))
            found = copy.deepcopy(found) if found is not None else None
        if found is None:
            self._send_not_found(route)
        else:
            self._send_json(200, found)

    def _create(self, route: _Route, body: JsonObject | None) -> None:
        if body is None or not isinstance(body.get("metadata"), dict) or not body["metadata"].get("name"):
            self._send_json(422, _status(422, "Invalid", "metadata.name is required"))
            return
        key = (route.resource, route.namespace, body["metadata"]["name"])
        with self.fake._state.lock:
            if key in self.fake._state.objects:
                self._send_json(409, _status(409, "AlreadyExists", f"{key[2]} already exists"))
                return
            body["metadata"].pop("resourceVersion", None)
            stored = self.fake._store(key, body)
        self._send_json(201, stored)

    def _update(self, route: _Route, body: JsonObject | None, *, patch: bool) -> None:
        if body is None:
            self._send_json(400, _status(400, "BadRequest", "body required"))
            return
        key = (route.resource, route.namespace, route.name)
        with self.fake._state.lock:
            current = self.fake._state.objects.get(key)
            if current is None:
                self._send_not_found(route)
                return
            if patch:
                body = _merge_patch(current, body)
                assert isinstance(body, dict)
                body["metadata"].pop("resourceVersion", None)
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                self._send_json(409, _status(409, "Conflict", "the object has been modified"))
                return
            body.setdefault("metadata", {}).pop("resourceVersion", None)
            stored = self.fake._store(key, body)
        self._send_json(200, stored)

    def _delete(self, route: _Route, body: JsonObject | None) -> None:
        preconditions = (body or {}).get("preconditions") or {}
        key = (route.resource, route.namespace, route.name)
        with self.fake._state.lock:
            current = self.fake._state.objects.get(key)
            conflict = current is not None and _precondition_conflict(current, preconditions)
            gone = None if conflict or current is None else self.fake._remove(key)
        if conflict:
            # As the real API server: a delete whose uid/resourceVersion preconditions no longer hold is refused.
            self._send_json(409, _status(409, "Conflict", f"Precondition failed for {route.name}: {preconditions}"))
        elif gone is None:
            self._send_not_found(route)
        else:
            self._send_json(200, gone)

    def _watch(self, route: _Route, query: Mapping[str, str]) -> None:
        state = self.fake._state
        field_selector = query.get("fieldSelector", "")
        label_selector = query.get("labelSelector", "")
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        requested = query.get("resourceVersion", "")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with state.lock:
            drop_generation = state.drop_generation
            bookmark_generation = state.bookmark_generation
            if requested in ("", "0"):
                # "Start at most recent" from scratch: synthetic ADDED for what exists now.
                for obj in list(self._objects_in(route)):
                    if _matches(obj, field_selector, label_selector):
                        self._send_chunk({"type": "ADDED", "object": obj})
                position = state.resource_version
            elif int(requested) < state.compacted_below:
                message = f"too old resource version: {requested} ({state.compacted_below})"
                gone = _status(410, "Expired", message)
                self._send_chunk({"type": "ERROR", "object": gone})
                self._end_chunks()
                return
            else:
                position = int(requested)
        while True:
            with state.lock:
                pending = [event for event in state.history if event.resource_version > position]
                if not pending and not state.stopping and state.drop_generation == drop_generation:
                    if state.bookmark_generation == bookmark_generation:
                        state.lock.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
                    pending = [event for event in state.history if event.resource_version > position]
                if state.stopping or state.drop_generation != drop_generation:
                    self._drop_connection()
                    return
                bookmark_now = state.bookmark_generation != bookmark_generation
                bookmark_generation = state.bookmark_generation
                current_version = state.resource_version
            for event in pending:
                position = event.resource_version
                if event.resource != route.resource:
                    continue
                outgoing = self._visible_event(event, route, field_selector, label_selector)
                if outgoing is not None and not self._send_chunk(outgoing):
                    return
            if bookmark_now and bookmarks:
                position = max(position, current_version)
                mark = {"kind": route.resource.kind, "apiVersion": route.resource.api_version,
                        "metadata": {"resourceVersion": str(position)}}
                if not self._send_chunk({"type": "BOOKMARK", "object": mark}):
                    return
            if time.monotonic() >= deadline:
                self._end_chunks()
                return

    @staticmethod
    def _visible_event(
        event: _Event, route: _Route, field_selector: str, label_selector: str
    ) -> JsonObject | None:
        """What a selective watch sees: entering the selection is ADDED, leaving it DELETED."""
        def selected(obj: JsonObject | None) -> bool:
            if obj is None:
                return False
            namespace = obj.get("metadata", {}).get("namespace", "")
            if route.namespace and namespace != route.namespace:
                return False
            return _matches(obj, field_selector, label_selector)

        if event.type == "DELETED":
            return {"type": "DELETED", "object": event.new} if selected(event.old) else None
        was, now = selected(event.old), selected(event.new)
        if now and not was:
            return {"type": "ADDED", "object": event.new}
        if now:
            return {"type": "MODIFIED", "object": event.new}
        if was:
            return {"type": "DELETED", "object": event.new}
        return None

    # --- wire helpers ---

    def _read_body(self) -> JsonObject | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return None
        raw = self.rfile.read(length)
        with contextlib.suppress(ValueError):
            decoded = json.loads(raw)
            return decoded if isinstance(decoded, dict) else None
        return None

    def _send_json(self, code: int, payload: JsonObject) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_not_found(self, route: _Route) -> None:
        self._send_json(404, _status(404, "NotFound", f'{route.resource.plural} "{route.name}" not found'))

    def _send_chunk(self, event: JsonObject) -> bool:
        line = json.dumps(event).encode() + b"\n"
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return False
        return True

    def _end_chunks(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        self.close_connection = True

    def _drop_connection(self) -> None:
        """Close the socket mid-stream, as a broken network or a restarting server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
