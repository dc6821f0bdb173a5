"""Pod, namespace and node metadata for this node, kept current by API-server watches.

Three daemon threads feed an in-memory cache that the sampler reads without
blocking on the network:

- pods with `spec.nodeName=<node>`: list, then watch from the list's
  resourceVersion with bookmarks; a dropped stream is re-watched from the last
  resourceVersion seen (event or bookmark) after a backoff, and only a
  `410 Gone` (the version was compacted) forces a relist;
- namespaces (their labels feed the workload-label namespace fallback), the same way;
- this node, fetched with `get` every `node_refresh_seconds` (its labels price it).

RBAC needed: get/list/watch on pods and namespaces, get on nodes.

When the API server is unreachable the cache keeps serving what it last knew,
`healthy` turns False with `last_error` saying why, and the threads keep
retrying with capped exponential backoff; nothing here raises into the caller.

Only what attribution reads is kept (see `kept_metadata`): responses are read
as a stream through a cutter that shortens any string over 256 KiB, objects
are pruned as they are decoded to the label and annotation keys of
`kept_keys` (the workload-label mapping's keys and the owner labels), and kept
values are capped at 256 characters.  A 64 MB annotation therefore never
exists in memory, not even as response bytes; `truncation_counts()` says how
often something was cut.

Requests go through lightkube (`kube_http`): kubeconfig or in-cluster service
account, auth and TLS, with the body read as raw bytes.  The official
`kubernetes` client, which decodes whole bodies into models and added about
55 MiB to the exporter, is not used.  `kube_http` (lightkube and httpx2, about
4 MiB resident) is imported only when a thread first needs the client, never
when gpucost is imported.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from gpucost.errors import ConfigError, SourceUnavailable
from gpucost.model import NodeInfo, PodMeta
from gpucost.sources.json_cut import LongStringCutter
from gpucost.sources.kept_metadata import (
    EVERY_KEY,
    MAX_RAW_STRING_BYTES,
    NODE_KEYS,
    KeptKeys,
    KeySelection,
    KubeObject,
    decode_objects,
    kube_object_from_raw,
    object_hook,
)
from gpucost.sources.truncation import (
    OVERSIZED_STRING,
    SOURCE_APISERVER,
    TruncationCounter,
    TruncationCounts,
)

if TYPE_CHECKING:
    from gpucost.sources.kube_http import ApiServerHttp, StreamedBody

__all__ = [
    "ApiServerSource",
    "node_info_from_object",
    "pod_meta_from_object",
    "resolve_node_name",
]

log = logging.getLogger(__name__)

NODE_NAME_ENV = "NODE_NAME"
# The default service-account mount (lightkube's); a parameter so tests can point elsewhere.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
NODE_READ_TIMEOUT_SECONDS = 30.0
# The server closes a watch after timeoutSeconds; a read that stays silent this
# much longer means the connection died without a FIN (NAT timeout, node gone).
WATCH_READ_GRACE_SECONDS = 15.0
FIRST_BACKOFF_SECONDS = 0.5
# How long a deleted pod's final state is kept: the kubelet lists it for a poll or more after the
# delete, and its last tick is booked a settle delay later (docs/kubernetes.md, allocation edges).
DELETED_POD_GRACE_SECONDS = 120.0
LIST_PAGE_SIZE = 500
PODS_PATH = "/api/v1/pods"
NAMESPACES_PATH = "/api/v1/namespaces"
NODES_PATH = "/api/v1/nodes"

_EMPTY_LABELS: Mapping[str, str] = MappingProxyType({})


def resolve_node_name(flag_value: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The node to watch: the flag if given, else `NODE_NAME` from the downward API."""
    name = (flag_value or environ.get(NODE_NAME_ENV, "")).strip()
    if not name:
        raise ConfigError(
            "", "--node-name", flag_value, f"node name is required (flag or the {NODE_NAME_ENV} env variable)"
        )
    return name


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
    )


def node_info_from_object(node: Mapping[str, Any] | KubeObject) -> NodeInfo:
    kept = node if isinstance(node, KubeObject) else kube_object_from_raw(
        node, NODE_KEYS, TruncationCounter(), SOURCE_APISERVER
    )
    return NodeInfo(name=kept.name, labels=kept.labels)


class _GoneError(Exception):
    """The watch's resourceVersion was compacted away (410 Gone): relist."""


@dataclass
class _Stream:
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


class ApiServerSource:
    """Cached, thread-safe view of this node's pods, all namespaces' labels, and the node.

    `kubeconfig` selects a kubeconfig file (development); `in_cluster` forces
    (True) or forbids (False) the service-account config; None picks in-cluster
    when `KUBERNETES_SERVICE_HOST` is set and no kubeconfig was given;
    `service_account_dir` is where the in-cluster token, CA and namespace are.
    `kept_keys` selects the pod and namespace labels and annotations kept
    (`KeptKeys.for_workload_labels(config)`); the default keeps every key.
    """

    def __init__(
        self,
        node_name: str,
        *,
        kubeconfig: str | None = None,
        in_cluster: bool | None = None,
        resync_backoff_max_seconds: float = 30.0,
        node_refresh_seconds: float = 300.0,
        watch_timeout_seconds: int = 300,
        kept_keys: KeptKeys | None = None,
        service_account_dir: str = SERVICE_ACCOUNT_DIR,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not node_name:
            raise ConfigError("", "node_name", node_name, "node name is required")
        self.node_name = node_name
        self._kubeconfig = kubeconfig
        self._in_cluster = in_cluster
        self._service_account_dir = service_account_dir
        self._wall_clock = wall_clock
        self._backoff_max = max(0.01, resync_backoff_max_seconds)
        self._node_refresh_seconds = node_refresh_seconds
        self._watch_timeout_seconds = max(1, int(watch_timeout_seconds))
        self._kept_keys = kept_keys or KeptKeys()
        self._truncated = TruncationCounter()

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: list[_Stream] = []
        self._pods: dict[tuple[str, str], PodMeta] = {}
        # Pods the watch deleted, with their final state (the container end times written just before
        # the delete) and when the delete was seen: the kubelet lists a pod for seconds after its
        # deletion and its last cost is booked later still, so its labels and times must outlive it.
        self._deleted: dict[tuple[str, str], tuple[PodMeta, float]] = {}
        self._namespaces: dict[str, Mapping[str, str]] = {}
        self._node: NodeInfo | None = None
        self._errors: dict[str, str] = {}
        self._last_error = ""
        self._client: ApiServerHttp | None = None

    # --- read API (thread-safe, no I/O) -----------------------------------------

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

    @property
    def healthy(self) -> bool:
        """False while any of the pod watch, namespace watch or node get is failing."""
        with self._lock:
            return not any(self._errors.values())

    @property
    def last_error(self) -> str:
        """Why the source is unhealthy (the most recent failure); "" when healthy."""
        with self._lock:
            return self._last_error if any(self._errors.values()) else ""

    def truncation_counts(self) -> TruncationCounts:
        """How often oversized data was cut from API server responses, by (source, reason)."""
        return self._truncated.snapshot()

    @property
    def synced(self) -> bool:
        """True once the first pod and namespace lists have been loaded."""
        with self._lock:
            return bool(self._streams) and all(stream.synced for stream in self._streams)

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the background threads; returns at once and never raises for an unreachable server."""
        if self._threads:
            return
        self._stopping.clear()
        self._streams = [
            _Stream(
                name="pods",
                path=PODS_PATH,
                selectors={"fieldSelector": f"spec.nodeName={self.node_name}"},
                keys=self._kept_keys.pods,
                replace_all=self._replace_pods,
                apply_event=self._apply_pod_event,
            ),
            _Stream(
                name="namespaces",
                path=NAMESPACES_PATH,
                selectors={},
                keys=self._kept_keys.namespaces,
                replace_all=self._replace_namespaces,
                apply_event=self._apply_namespace_event,
            ),
        ]
        self._threads = [
            threading.Thread(
                target=self._run_stream, args=(stream,), name=f"gpucost-apiserver-{stream.name}", daemon=True
            )
            for stream in self._streams
        ]
        self._threads.append(
            threading.Thread(target=self._run_node, name="gpucost-apiserver-node", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads: open watch connections are shut so blocked reads return at once."""
        self._stopping.set()
        for stream in self._streams:
            _shutdown_body(stream.body)
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads = []
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # --- client ----------------------------------------------------------------

    def _http(self) -> ApiServerHttp:
        """The configured HTTP client, built on first use; a failure here is retried like any outage."""
        with self._lock:
            client = self._client
        if client is None:
            from gpucost.sources.kube_http import ApiServerHttp

            client = self._keep_client(
                ApiServerHttp.connect(self._kubeconfig, self._use_in_cluster(), self._service_account_dir)
            )
        return client

    def _keep_client(self, built: ApiServerHttp) -> ApiServerHttp:
        """Keep `built` unless another thread kept one first (then close `built` and use that one)."""
        with self._lock:
            kept = self._client
            if kept is None:
                self._client = built
                return built
        built.close()
        return kept

    def _use_in_cluster(self) -> bool:
        if self._in_cluster is not None:
            return self._in_cluster
        return self._kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ

    @staticmethod
    def _recoverable_errors() -> tuple[type[BaseException], ...]:
        """Outside-world failures that mean "retry later"; imported lazily to keep lightkube out of gpucost."""
        from gpucost.sources.kube_http import RECOVERABLE_ERRORS

        return RECOVERABLE_ERRORS

    # --- list + watch loop -----------------------------------------------------

    def _run_stream(self, stream: _Stream) -> None:
        recoverable = self._recoverable_errors()
        failures = 0
        while not self._stopping.is_set():
            try:
                stream.watching = False
                if not stream.resource_version:
                    self._list(stream)
                    self._record_success(stream.name)
                self._watch(stream)
                failures = 0
            except _GoneError:
                log.info("%s watch: version %s expired; relisting", stream.name, stream.resource_version)
                stream.resource_version = ""
            except recoverable as exc:
                if getattr(exc, "status", None) == 410:
                    # Some servers and proxies answer an expired version with HTTP 410, not an ERROR event.
                    log.info("%s: HTTP 410 Gone; relisting", stream.name)
                    stream.resource_version = ""
                elif stream.watching:
                    # An established watch broke (server restart, idle load balancer): routine, so
                    # health only turns red if re-watching from the same resourceVersion fails too.
                    log.info("%s watch dropped (%s); resuming from %s", stream.name, _describe(exc),
                             stream.resource_version)
                else:
                    self._record_failure(stream.name, _describe(exc))
                failures += 1
                self._stopping.wait(self._backoff_seconds(failures))
            except Exception as exc:  # health wrapper: a bug must not end the watch for good
                log.exception("%s watch failed unexpectedly", stream.name)
                self._record_failure(stream.name, _describe(exc))
                failures += 1
                self._stopping.wait(self._backoff_seconds(failures))

    def _list(self, stream: _Stream) -> None:
        items: list[KubeObject] = []
        continue_token = ""
        while True:
            params = {**stream.selectors, "limit": str(LIST_PAGE_SIZE)}
            if continue_token:
                params["continue"] = continue_token
            page = self._get_decoded(stream.path, params, stream.keys, self._watch_read_timeout())
            if not isinstance(page, Mapping):
                raise SourceUnavailable(f"API server answered {type(page).__name__}, expected a list")
            items.extend(item for item in page.get("items") or () if isinstance(item, KubeObject))
            metadata = page.get("metadata")
            if not isinstance(metadata, Mapping):
                metadata = {}
            continue_token = str(metadata.get("continue") or "")
            if not continue_token:
                break
        stream.replace_all(items)
        stream.resource_version = str(metadata.get("resourceVersion") or "")
        with self._lock:
            stream.synced = True

    def _watch(self, stream: _Stream) -> None:
        """One watch request from stream.resource_version until the server ends it or it breaks."""
        stream.watching = False
        params = {
            **stream.selectors,
            "watch": "true",
            "resourceVersion": stream.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self._watch_timeout_seconds),
        }
        with self._http().get(stream.path, params, self._watch_read_timeout()) as body:
            stream.body = body
            stream.watching = True
            try:
                # stop() may have looked for a body to shut before this one existed.
                if self._stopping.is_set():
                    return
                self._record_success(stream.name)
                self._read_events(stream, body)
            finally:
                stream.body = None

    def _read_events(self, stream: _Stream, body: StreamedBody) -> None:
        cutter = LongStringCutter(MAX_RAW_STRING_BYTES)
        hook = object_hook(stream.keys, self._truncated, SOURCE_APISERVER)
        counted_cuts = 0
        for line in _response_lines(_cut_chunks(body.chunks(), cutter)):
            if self._stopping.is_set():
                return
            self._truncated.add(SOURCE_APISERVER, OVERSIZED_STRING, cutter.cut_count - counted_cuts)
            counted_cuts = cutter.cut_count
            self._handle_watch_event(stream, json.loads(line, object_hook=hook))

    def _watch_read_timeout(self) -> float:
        return self._watch_timeout_seconds + WATCH_READ_GRACE_SECONDS

    def _handle_watch_event(self, stream: _Stream, event: object) -> None:
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
                    raise _GoneError(str(obj.get("message", "")))
                raise SourceUnavailable(
                    f"watch error {code} {obj.get('reason', '')}: {obj.get('message', '')}"
                )
            version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        else:
            version = ""
        if version:
            stream.resource_version = version

    # --- node refresh ------------------------------------------------------------

    def _run_node(self) -> None:
        recoverable = self._recoverable_errors()
        failures = 0
        while not self._stopping.is_set():
            try:
                node = self._read_node()
                with self._lock:
                    if self._node != node:
                        self._node = node
                self._record_success("node")
                failures = 0
                self._stopping.wait(self._node_refresh_seconds)
            except recoverable as exc:
                self._record_failure("node", _describe(exc))
                failures += 1
                self._stopping.wait(min(self._backoff_seconds(failures), self._node_refresh_seconds))
            except Exception as exc:  # health wrapper: a bug must not end the refresh for good
                log.exception("node refresh failed unexpectedly")
                self._record_failure("node", _describe(exc))
                failures += 1
                self._stopping.wait(self._backoff_seconds(failures))

    def _read_node(self) -> NodeInfo:
        decoded = self._get_decoded(f"{NODES_PATH}/{self.node_name}", {}, NODE_KEYS, NODE_READ_TIMEOUT_SECONDS)
        if not isinstance(decoded, KubeObject):
            raise SourceUnavailable(f"API server answered no named object for node {self.node_name}")
        return node_info_from_object(decoded)

    # --- cache updates -------------------------------------------------------------

    def _replace_pods(self, items: list[KubeObject]) -> None:
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

    def _apply_pod_event(self, event_type: str, obj: KubeObject) -> None:
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
        """Keep a deleted pod's final state; its deletion bounds its end (called under the lock).

        The API server sends DELETED once the kubelet has stopped the pod's containers, so the
        moment it is seen is a bound on the containers' end even when no end time was written.
        """
        seen_at = self._wall_clock()
        deleted_at = seen_at if pod.deleted_at is None else min(pod.deleted_at, seen_at)
        self._deleted[key] = (replace(pod, deleted_at=deleted_at), time.monotonic())
        self._expire_deleted()

    def _expire_deleted(self) -> None:
        cutoff = time.monotonic() - DELETED_POD_GRACE_SECONDS
        for key in [key for key, (_, seen) in self._deleted.items() if seen < cutoff]:
            del self._deleted[key]

    def _replace_namespaces(self, items: list[KubeObject]) -> None:
        fresh: dict[str, Mapping[str, str]] = {}
        for item in items:
            fresh[item.name] = MappingProxyType(dict(item.labels))
        with self._lock:
            for name, labels in fresh.items():
                known = self._namespaces.get(name)
                if known is not None and known == labels:
                    fresh[name] = known
            self._namespaces = fresh

    def _apply_namespace_event(self, event_type: str, obj: KubeObject) -> None:
        name = obj.name
        labels = dict(obj.labels)
        with self._lock:
            if event_type == "DELETED":
                self._namespaces.pop(name, None)
            elif self._namespaces.get(name) != labels:
                self._namespaces[name] = MappingProxyType(labels)

    # --- health ----------------------------------------------------------------------

    def _record_success(self, part: str) -> None:
        with self._lock:
            was_failing = bool(self._errors.get(part))
            self._errors[part] = ""
        if was_failing:
            log.info("API server %s recovered", part)

    def _record_failure(self, part: str, problem: str) -> None:
        message = f"{part}: {problem}"
        with self._lock:
            was_failing = bool(self._errors.get(part))
            self._errors[part] = message
            self._last_error = message
        if not was_failing:
            log.warning("API server %s failing, serving cached metadata: %s", part, problem)

    def _backoff_seconds(self, failures: int) -> float:
        ceiling = min(self._backoff_max, FIRST_BACKOFF_SECONDS * 2 ** min(failures - 1, 16))
        # Jitter keeps every node of a cluster from hammering a recovering API server in step.
        return random.uniform(ceiling / 2, ceiling)

    def _get_decoded(self, path: str, params: Mapping[str, str], keys: KeySelection, read_timeout: float) -> Any:
        """GET `path` and decode the body as it streams in.

        The body is never held whole: each chunk is cut (long strings) before the
        next is read, and named objects are pruned to `keys` as they are decoded.
        """
        with self._http().get(path, params, read_timeout) as body:
            return decode_objects(body.chunks(), keys, self._truncated, SOURCE_APISERVER)


def _cut_chunks(chunks: Iterable[bytes], cutter: LongStringCutter) -> Iterator[bytes]:
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


def _response_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
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


def _shutdown_body(body: StreamedBody | None) -> None:
    """Unblock a thread reading a watch: shut the socket (closing alone can wait on the read)."""
    if body is None:
        return
    try:
        body.shutdown()
    except OSError:
        log.debug("shutting a watch connection failed", exc_info=True)


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        reason = getattr(exc, "reason", "") or ""
        return f"HTTP {status} {reason}".strip()
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."
