"""Watch events off the wire, applied to one list+watch stream of `ApiServerSource`.

A watch response is newline-delimited JSON that never ends while the watch is
open.  It is read as it arrives: every chunk passes through a
`LongStringCutter` (no string over MAX_RAW_STRING_BYTES is ever decoded, and
each cut is counted), is split into events however the chunks fall, and each
event is decoded with the stream's key-pruning object hook.  ADDED, MODIFIED
and DELETED objects go to the stream's cache update; every event or BOOKMARK
carrying a resourceVersion moves the stream's resume point; an ERROR event
with code 410 (the version was compacted) raises `WatchGoneError` so the
caller relists.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gpucost.errors import SourceUnavailable
from gpucost.sources.json_cut import LongStringCutter
from gpucost.sources.kept_metadata import MAX_RAW_STRING_BYTES, KeySelection, KubeObject, object_hook
from gpucost.truncation import OVERSIZED_STRING, SOURCE_APISERVER, TruncationCounter

if TYPE_CHECKING:
    from gpucost.sources.kube_http import StreamedBody

__all__ = [
    "WatchGoneError",
    "WatchStream",
    "cut_chunks",
    "handle_watch_event",
    "read_events",
    "response_lines",
    "shutdown_body",
]

log = logging.getLogger(__name__)


class WatchGoneError(Exception):
    """The watch's resourceVersion was compacted away (410 Gone): relist."""


@dataclass
class WatchStream:
    """One list+watch loop: what to request, how to apply results, and its health."""

    name: str
    path: str
    selectors: dict[str, str]
    keys: KeySelection
    replace_all: Callable[[list[KubeObject]], None]
    apply_event: Callable[[str, KubeObject], None]
    resource_version: str = ""
    synced: bool = False
    watching: bool = False
    body: StreamedBody | None = field(default=None, repr=False)


def read_events(
    stream: WatchStream, body: StreamedBody, truncated: TruncationCounter, stopping: threading.Event
) -> None:
    """Apply `body`'s events to `stream` until the body ends or `stopping` is set."""
    cutter = LongStringCutter(MAX_RAW_STRING_BYTES)
    hook = object_hook(stream.keys, truncated, SOURCE_APISERVER)
    counted_cuts = 0
    for line in response_lines(cut_chunks(body.chunks(), cutter)):
        if stopping.is_set():
            return
        truncated.add(SOURCE_APISERVER, OVERSIZED_STRING, cutter.cut_count - counted_cuts)
        counted_cuts = cutter.cut_count
        handle_watch_event(stream, json.loads(line, object_hook=hook))


def handle_watch_event(stream: WatchStream, event: object) -> None:
    if not isinstance(event, Mapping):
        raise SourceUnavailable(f"watch sent {type(event).__name__}, expected an event object")
    event_type = str(event.get("type", ""))
    obj = event.get("object") or {}
    if isinstance(obj, KubeObject):
        if event_type in ("ADDED", "MODIFIED", "DELETED"):
            stream.apply_event(event_type, obj)
        version = obj.resource_version
    elif isinstance(obj, Mapping):
        # Status objects (errors) and BOOKMARKs carry no name: they stay plain JSON.
        if event_type == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise WatchGoneError(str(obj.get("message", "")))
            raise SourceUnavailable(
                f"watch error {code} {obj.get('reason', '')}: {obj.get('message', '')}"
            )
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    else:
        version = ""
    if version:
        stream.resource_version = version


def cut_chunks(chunks: Iterable[bytes], cutter: LongStringCutter) -> Iterator[bytes]:
    """The streamed body with every overlong string cut, chunk by chunk.

    The chunks are what arrived, at most READ_CHUNK_BYTES each (see `kube_http`):
    one 64 MB event never sits in memory whole, and an event is handed on as
    soon as its bytes are in, not when a piece fills.
    """
    for chunk in chunks:
        yield cutter.feed(chunk)
    rest = cutter.finish()
    if rest:
        yield rest


def response_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Newline-delimited watch events from streamed chunks, however the chunks fall."""
    buffer = bytearray()
    for chunk in chunks:
        buffer.extend(chunk)
        while (end := buffer.find(b"\n")) != -1:
            line = bytes(buffer[:end]).strip()
            del buffer[: end + 1]
            if line:
                yield line
    if buffer.strip():
        yield bytes(buffer).strip()


def shutdown_body(body: StreamedBody | None) -> None:
    """Unblock a thread reading a watch: shut the socket (closing alone can wait on the read)."""
    if body is None:
        return
    try:
        body.shutdown()
    except OSError:
        log.debug("shutting a watch connection failed", exc_info=True)
