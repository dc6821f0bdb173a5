"""Watch streams: newline-delimited ADDED/MODIFIED/DELETED/BOOKMARK events, sent as they happen.

A watch from "" or "0" starts with a synthetic ADDED per object that exists now; one from a
compacted resourceVersion gets a single ERROR event carrying a 410 Status, as the real server
sends it; an object leaving the watch's selection arrives as DELETED.  `drop_watches()`,
an outage and stopping the server cut the stream without its final chunk.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from gpucost_testing.http_fixture import DropConnection

from .objects import JsonObject, Resource, status, truthy
from .selectors import matches
from .store import Event, ObjectStore

__all__ = ["Selection", "open_watch"]

_LONGEST_WATCH_SECONDS = 1800.0  # the real server's default when the client names no timeoutSeconds
_WAKE_SECONDS = 0.2  # how often an idle stream looks at its deadline


@dataclass(frozen=True)
class Selection:
    """What one list or watch asks for: a resource, a namespace ("" for all), field and label selectors."""

    resource: Resource
    namespace: str
    field_selector: str = ""
    label_selector: str = ""

    @classmethod
    def from_query(cls, resource: Resource, namespace: str, query: Mapping[str, str]) -> Selection:
        return cls(resource, namespace, query.get("fieldSelector", ""), query.get("labelSelector", ""))

    def selects(self, obj: JsonObject | None) -> bool:
        if obj is None:
            return False
        if self.namespace and obj.get("metadata", {}).get("namespace", "") != self.namespace:
            return False
        return matches(obj, self.field_selector, self.label_selector)

    def visible(self, event: Event) -> JsonObject | None:
        """The event this selection's watch sees: entering the selection is ADDED, leaving it DELETED."""
        if event.resource != self.resource:
            return None
        if event.type == "DELETED":
            return {"type": "DELETED", "object": event.new} if self.selects(event.old) else None
        was, now = self.selects(event.old), self.selects(event.new)
        if now:
            return {"type": "MODIFIED" if was else "ADDED", "object": event.new}
        return {"type": "DELETED", "object": event.new} if was else None


def open_watch(store: ObjectStore, selection: Selection, query: Mapping[str, str]) -> Iterator[bytes]:
    """The stream's lines.  Where it starts, and which drops and bookmarks it waits for, is fixed now, on open."""
    requested = query.get("resourceVersion", "")
    deadline = time.monotonic() + float(query.get("timeoutSeconds") or _LONGEST_WATCH_SECONDS)
    with store.lock:
        generations = (store.drop_generation, store.bookmark_generation)
        if requested in ("", "0"):
            initial = [_line({"type": "ADDED", "object": obj})
                       for obj in store.objects_in(selection.resource, selection.namespace) if selection.selects(obj)]
            position = store.resource_version
        elif int(requested) < store.compacted_below:
            message = f"too old resource version: {requested} ({store.compacted_below})"
            return iter([_line({"type": "ERROR", "object": status(410, "Expired", message)})])
        else:
            initial, position = [], int(requested)
    bookmarks = truthy(query.get("allowWatchBookmarks"))
    return itertools.chain(initial, _follow(store, selection, position, generations, bookmarks, deadline))


def _follow(
    store: ObjectStore,
    selection: Selection,
    position: int,
    generations: tuple[int, int],
    bookmarks: bool,
    deadline: float,
) -> Iterator[bytes]:
    drop_generation, bookmark_generation = generations
    while True:
        with store.lock:
            pending = store.events_after(position)
            if not pending and not store.stopping and store.drop_generation == drop_generation:
                if store.bookmark_generation == bookmark_generation:
                    store.lock.wait(timeout=min(_WAKE_SECONDS, max(0.0, deadline - time.monotonic())))
                pending = store.events_after(position)
            if store.stopping or store.drop_generation != drop_generation:
                raise DropConnection  # mid-stream, as a broken network or a restarting server would
            bookmark_now = store.bookmark_generation != bookmark_generation
            bookmark_generation = store.bookmark_generation
            current_version = store.resource_version
        for event in pending:
            position = event.resource_version
            outgoing = selection.visible(event)
            if outgoing is not None:
                yield _line(outgoing)
        if bookmark_now and bookmarks:
            position = max(position, current_version)
            mark = {"kind": selection.resource.kind, "apiVersion": selection.resource.api_version,
                    "metadata": {"resourceVersion": str(position)}}
            yield _line({"type": "BOOKMARK", "object": mark})
        if time.monotonic() >= deadline:
            return


def _line(event: JsonObject) -> bytes:
    return json.dumps(event).encode() + b"\n"
