"""The REST verbs on the store: list, watch, get, create, replace, merge-patch and delete, each answered as a Reply.

Paths are the real server's: `/api/v1/pods`, `/api/v1/namespaces/<ns>/pods/<name>`,
`/apis/<group>/<version>/...`.  Before any of that, an outage answers 503 and an injected
failure its status, so a test can break exactly one call.
"""

from __future__ import annotations

import contextlib
import copy
import json

from gpucost_testing.http_fixture import RecordedRequest, Reply

from .objects import JsonObject, SeenRequest, merge_patch, status
from .selectors import precondition_conflict
from .store import ObjectKey, ObjectStore
from .watch import Selection, open_watch

__all__ = ["RestApi"]


class RestApi:
    """An HttpFixture route answering every method and path from `store`."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def __call__(self, request: RecordedRequest) -> Reply:
        seen = SeenRequest.parse(request.method, request.target)
        if self._store.outage:
            return _failure(503, "ServiceUnavailable", "the server is unavailable")
        injected = self._store.take_failure(seen)
        if injected is not None:
            return _failure(injected, "Expired" if injected == 410 else "InjectedFailure", f"injected HTTP {injected}")
        found = self._route(seen.path)
        if found is None:
            return _failure(404, "NotFound", f"no route for {seen.path}")
        resource, namespace, name = found
        selection = Selection.from_query(resource, namespace, seen.query)
        body = _json_body(request.body)
        method = seen.method
        if method == "GET" and not name:
            if seen.is_watch:
                stream = open_watch(self._store, selection, seen.query)
                return Reply(200, content_type="application/json", chunks=stream)
            return self._list(selection)
        key = (resource, namespace, name)
        if method == "GET" and name:
            stored = self._store.get(key)
            return Reply.json(200, stored) if stored is not None else _not_found(key)
        if method == "POST" and not name:
            return self._create(selection, body)
        if method in ("PUT", "PATCH") and name:
            return self._update(key, body, patch=method == "PATCH")
        if method == "DELETE" and name:
            return self._delete(key, body)
        return _failure(405, "MethodNotAllowed", f"{method} {seen.path}")

    def _route(self, path: str) -> ObjectKey | None:
        """The resource, namespace ("" for all) and object name ("" for the collection) a path names."""
        parts = path.strip("/").split("/")
        for prefix_len in (2, 3):  # /api/v1/...  or  /apis/<group>/<version>/...
            prefix = "/" + "/".join(parts[:prefix_len])
            rest = parts[prefix_len:]
            if not rest or rest == [""]:
                continue
            if rest[0] == "namespaces" and len(rest) >= 3:
                resource = self._store.resources.get((prefix, rest[2]))
                if resource is not None and resource.namespaced and len(rest) <= 4:
                    return resource, rest[1], rest[3] if len(rest) == 4 else ""
            resource = self._store.resources.get((prefix, rest[0]))
            if resource is not None and len(rest) <= 2:
                return resource, "", rest[1] if len(rest) == 2 else ""
        return None

    def _list(self, selection: Selection) -> Reply:
        with self._store.lock:
            items = [copy.deepcopy(obj) for obj in self._store.objects_in(selection.resource, selection.namespace)
                     if selection.selects(obj)]
            version = str(self._store.resource_version)
        for item in items:
            item.pop("kind", None)
            item.pop("apiVersion", None)
        resource = selection.resource
        return Reply.json(200, {"kind": resource.kind + "List", "apiVersion": resource.api_version,
                                "metadata": {"resourceVersion": version}, "items": items})

    def _create(self, selection: Selection, body: JsonObject | None) -> Reply:
        if body is None or not isinstance(body.get("metadata"), dict) or not body["metadata"].get("name"):
            return _failure(422, "Invalid", "metadata.name is required")
        key = (selection.resource, selection.namespace, body["metadata"]["name"])
        with self._store.lock:
            if key in self._store.objects:
                return _failure(409, "AlreadyExists", f"{key[2]} already exists")
            body["metadata"].pop("resourceVersion", None)
            return Reply.json(201, self._store.store(key, body))

    def _update(self, key: ObjectKey, body: JsonObject | None, *, patch: bool) -> Reply:
        if body is None:
            return _failure(400, "BadRequest", "body required")
        with self._store.lock:
            current = self._store.get(key)
            if current is None:
                return _not_found(key)
            if patch:
                body = merge_patch(current, body)
                assert isinstance(body, dict)
                body["metadata"].pop("resourceVersion", None)  # a patch applies to whatever version is current
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                return _failure(409, "Conflict", "the object has been modified")
            body.setdefault("metadata", {}).pop("resourceVersion", None)
            return Reply.json(200, self._store.store(key, body))

    def _delete(self, key: ObjectKey, body: JsonObject | None) -> Reply:
        preconditions = (body or {}).get("preconditions") or {}
        with self._store.lock:
            current = self._store.get(key)
            if current is None:
                return _not_found(key)
            if precondition_conflict(current, preconditions):
                # As the real API server: a delete whose uid/resourceVersion preconditions no longer hold is refused.
                return _failure(409, "Conflict", f"Precondition failed for {key[2]}: {preconditions}")
            gone = self._store.remove(key)
        assert gone is not None
        return Reply.json(200, gone)


def _json_body(raw: bytes) -> JsonObject | None:
    """The request's JSON object, or None for no body, not JSON, or JSON that is not an object."""
    with contextlib.suppress(ValueError):
        decoded = json.loads(raw) if raw else None
        return decoded if isinstance(decoded, dict) else None
    return None


def _failure(code: int, reason: str, message: str) -> Reply:
    return Reply.json(code, status(code, reason, message))


def _not_found(key: ObjectKey) -> Reply:
    resource, _, name = key
    return _failure(404, "NotFound", f'{resource.plural} "{name}" not found')
