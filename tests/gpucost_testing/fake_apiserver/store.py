"""The fake API server's state: objects, one resourceVersion counter and an event history, as etcd backs the real one.

Every write bumps the global resourceVersion and appends an event a watch can resume from;
`compact()` forgets that history so an older resume gets 410 Gone.  The scripted failure
modes (an outage, injected failures, dropped watches, bookmarks) live here too, because the
watch streams wait on this store's lock for any of them.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from .objects import JsonObject, Resource, SeenRequest

__all__ = ["Event", "InjectedFailure", "ObjectKey", "ObjectStore"]

ObjectKey = tuple[Resource, str, str]  # resource, namespace ("" when cluster-scoped), name


@dataclass(frozen=True)
class Event:
    resource_version: int
    resource: Resource
    type: str  # ADDED, MODIFIED or DELETED
    old: JsonObject | None
    new: JsonObject | None


@dataclass
class InjectedFailure:
    """The next `remaining` requests to `method` `path` get `status` (`watch` None: lists and watches alike)."""

    method: str
    path: str
    status: int
    remaining: int
    watch: bool | None

    def takes(self, seen: SeenRequest) -> bool:
        if self.remaining <= 0 or self.method != seen.method or self.path != seen.path:
            return False
        return self.watch is None or self.watch == seen.is_watch


class ObjectStore:
    """Thread-safe: every method takes `lock` (reentrant), which watch streams also wait on for news."""

    def __init__(self) -> None:
        self.lock = threading.Condition(threading.RLock())
        self.resources: dict[tuple[str, str], Resource] = {}
        self.objects: dict[ObjectKey, JsonObject] = {}
        self.history: list[Event] = []
        self.resource_version = 1
        self.compacted_below = 0
        self.drop_generation = 0  # bumped to cut every open watch
        self.bookmark_generation = 0  # bumped to send every open watch a BOOKMARK
        self.outage = False
        self.stopping = False
        self.failures: list[InjectedFailure] = []

    def register(self, resource: Resource) -> None:
        with self.lock:
            self.resources[(resource.api_prefix, resource.plural)] = resource

    def resource(self, plural: str, api_prefix: str) -> Resource:
        with self.lock:
            return self.resources[(api_prefix, plural)]

    def get(self, key: ObjectKey) -> JsonObject | None:
        """A copy of the stored object, or None."""
        with self.lock:
            found = self.objects.get(key)
            return copy.deepcopy(found) if found is not None else None

    def store(self, key: ObjectKey, obj: JsonObject) -> JsonObject:
        """Create or replace; returns a copy of what was stored, with its new resourceVersion."""
        resource, namespace, name = key
        with self.lock:
            old = self.objects.get(key)
            self.resource_version += 1
            stored = copy.deepcopy(obj)
            metadata = stored.setdefault("metadata", {})
            metadata["name"] = name
            if resource.namespaced:
                metadata["namespace"] = namespace
            metadata["resourceVersion"] = str(self.resource_version)
            metadata.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            stored["kind"] = resource.kind
            stored["apiVersion"] = resource.api_version
            self.objects[key] = stored
            event_type = "MODIFIED" if old is not None else "ADDED"
            self.history.append(Event(self.resource_version, resource, event_type, old, stored))
            self.lock.notify_all()
            return copy.deepcopy(stored)

    def remove(self, key: ObjectKey) -> JsonObject | None:
        """Delete; returns the object as its DELETED event carries it, or None when there was none."""
        with self.lock:
            old = self.objects.pop(key, None)
            if old is None:
                return None
            self.resource_version += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self.resource_version)
            self.history.append(Event(self.resource_version, key[0], "DELETED", old, gone))
            self.lock.notify_all()
            return gone

    def objects_in(self, resource: Resource, namespace: str) -> Iterator[JsonObject]:
        """The stored objects (not copies: never mutated in place) of `resource`, all namespaces when ""."""
        with self.lock:
            ordered = sorted(self.objects.items(), key=lambda entry: (entry[0][1], entry[0][2]))
        for (kind, object_namespace, _), obj in ordered:
            if kind == resource and (not namespace or object_namespace == namespace):
                yield obj

    def events_after(self, resource_version: int) -> list[Event]:
        with self.lock:
            return [event for event in self.history if event.resource_version > resource_version]

    def compact(self) -> int:
        with self.lock:
            self.compacted_below = self.resource_version
            self.history.clear()
            return self.compacted_below

    def take_failure(self, seen: SeenRequest) -> int | None:
        """The status an injected failure answers `seen` with (using one up), or None."""
        with self.lock:
            for failure in self.failures:
                if failure.takes(seen):
                    failure.remaining -= 1
                    return failure.status
            return None

    def bump_drop_generation(self) -> None:
        with self.lock:
            self.drop_generation += 1
            self.lock.notify_all()
