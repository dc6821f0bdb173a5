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

The `kubernetes` client (about 43 MiB resident) is imported only when `start()`
builds the client, never when gpucost is imported.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

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

__all__ = [
    "ApiServerSource",
    "node_info_from_object",
    "pod_meta_from_object",
    "resolve_node_name",
]

log = logging.getLogger(__name__)

NODE_NAME_ENV = "NODE_NAME"
CONNECT_TIMEOUT_SECONDS = 5.0
# The server closes a watch after timeoutSeconds; a read that stays silent this
# much longer means the connection died without a FIN (NAT timeout, node gone).
WATCH_READ_GRACE_SECONDS = 15.0
FIRST_BACKOFF_SECONDS = 0.5
LIST_PAGE_SIZE = 500
# Responses are read in pieces of this size, each cut before the next is read.
READ_CHUNK_BYTES = 64 * 1024

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
    """The cached part of a pod: names, uid, labels, annotations (every key of a raw dict) and owner."""
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
    """One list+watch loop: what to call, how to apply results, and its health."""

    name: str
    list_call: Callable[..., Any]
    list_kwargs: dict[str, Any]
    keys: KeySelection
    replace_all: Callable[[list[KubeObject]], None]
    apply_event: Callable[[str, KubeObject], None]
    resource_version: str = ""
    synced: bool = False
    watching: bool = False
    response: Any = field(default=None, repr=False)


class ApiServerSource:
    """Cached, thread-safe view of this node's pods, all namespaces' labels, and the node.

    `kubeconfig` selects a kubeconfig file (development); `in_cluster` forces
    (True) or forbids (False) the service-account config; None picks in-cluster
    when `KUBERNETES_SERVICE_HOST` is set and no kubeconfig was given.
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
    ) -> None:
        if not node_name:
            raise ConfigError("", "node_name", node_name, "node name is required")
        self.node_name = node_name
        self._kubeconfig = kubeconfig
        self._in_cluster = in_cluster
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
        self._namespaces: dict[str, Mapping[str, str]] = {}
        self._node: NodeInfo | None = None
        self._errors: dict[str, str] = {}
        self._last_error = ""
        self._api_client: Any = None
        self._core: Any = None
        self._recoverable: tuple[type[BaseException], ...] = (OSError, ValueError, SourceUnavailable)

    # --- read API (thread-safe, no I/O) -----------------------------------------

    def pod(self, namespace: str, name: str) -> PodMeta | None:
        with self._lock:
            return self._pods.get((namespace, name))

    def pods(self) -> list[PodMeta]:
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
                list_call=lambda **kwargs: self._core_api().list_pod_for_all_namespaces(**kwargs),
                list_kwargs={"field_selector": f"spec.nodeName={self.node_name}"},
                keys=self._kept_keys.pods,
                replace_all=self._replace_pods,
                apply_event=self._apply_pod_event,
            ),
            _Stream(
                name="namespaces",
                list_call=lambda **kwargs: self._core_api().list_namespace(**kwargs),
                list_kwargs={},
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
            _shutdown_response(stream.response)
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads = []
        with self._lock:
            api_client, self._api_client, self._core = self._api_client, None, None
        if api_client is not None:
            api_client.close()

    # --- client ----------------------------------------------------------------

    def _core_api(self) -> Any:
        """The CoreV1Api, built on first use; a failure here is retried like any outage."""
        with self._lock:
            if self._core is not None:
                return self._core
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        configuration = client.Configuration()
        try:
            if self._use_in_cluster():
                config.load_incluster_config(client_configuration=configuration)
            else:
                config.load_kube_config(config_file=self._kubeconfig, client_configuration=configuration)
        except ConfigException as exc:
            raise SourceUnavailable(f"cannot load Kubernetes client config: {exc}") from exc
        api_client = client.ApiClient(configuration)
        with self._lock:
            if self._core is None:
                self._api_client = api_client
                self._core = client.CoreV1Api(api_client)
            return self._core

    def _use_in_cluster(self) -> bool:
        if self._in_cluster is not None:
            return self._in_cluster
        return self._kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ

    def _recoverable_errors(self) -> tuple[type[BaseException], ...]:
        """Outside-world failures that mean "retry later"; built lazily to keep imports out of gpucost."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        return (ApiException, urllib3.exceptions.HTTPError, *self._recoverable)

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
            page = self._call_decoded(
                stream.list_call,
                stream.keys,
                **stream.list_kwargs,
                limit=LIST_PAGE_SIZE,
                _continue=continue_token or None,
                _request_timeout=self._watch_request_timeout(),
            )
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
        response = stream.list_call(
            **stream.list_kwargs,
            watch=True,
            resource_version=stream.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout_seconds,
            _preload_content=False,
            _request_timeout=self._watch_request_timeout(),
        )
        stream.response = response
        stream.watching = True
        try:
            # stop() may have looked for a response to shut before this one existed.
            if self._stopping.is_set():
                return
            self._record_success(stream.name)
            cutter = LongStringCutter(MAX_RAW_STRING_BYTES)
            hook = object_hook(stream.keys, self._truncated, SOURCE_APISERVER)
            counted_cuts = 0
            for line in _response_lines(_cut_chunks(response, cutter)):
                if self._stopping.is_set():
                    return
                self._truncated.add(SOURCE_APISERVER, OVERSIZED_STRING, cutter.cut_count - counted_cuts)
                counted_cuts = cutter.cut_count
                self._handle_watch_event(stream, json.loads(line, object_hook=hook))
        finally:
            stream.response = None
            response.release_conn()

    def _watch_request_timeout(self) -> tuple[float, float]:
        return CONNECT_TIMEOUT_SECONDS, self._watch_timeout_seconds + WATCH_READ_GRACE_SECONDS

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
        decoded = self._call_decoded(
            lambda **kwargs: self._core_api().read_node(self.node_name, **kwargs),
            NODE_KEYS,
            _request_timeout=(CONNECT_TIMEOUT_SECONDS, 30.0),
        )
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
            self._pods = fresh

    def _apply_pod_event(self, event_type: str, obj: KubeObject) -> None:
        pod = pod_meta_from_object(obj)
        key = (pod.namespace, pod.pod)
        with self._lock:
            if event_type == "DELETED":
                self._pods.pop(key, None)
            elif self._pods.get(key) != pod:
                # Most MODIFIED events are status changes; the cached metadata stays the same object.
                self._pods[key] = pod

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

    def _call_decoded(self, call: Callable[..., Any], keys: KeySelection, **kwargs: Any) -> Any:
        """Call a client method without its model decoding and decode the body as it streams in.

        The body is never held whole: each chunk is cut (long strings) before the
        next is read, and named objects are pruned to `keys` as they are decoded.
        """
        response = call(_preload_content=False, **kwargs)
        try:
            decoded = decode_objects(
                response.stream(amt=READ_CHUNK_BYTES, decode_content=True), keys, self._truncated, SOURCE_APISERVER
            )
        finally:
            response.release_conn()
        return decoded


def _cut_chunks(response: Any, cutter: LongStringCutter) -> Iterator[bytes]:
    """The streamed body with every overlong string cut, chunk by chunk.

    A chunked body (every watch) is read in pieces of at most READ_CHUNK_BYTES
    as they arrive, so one 64 MB event never sits in memory whole; urllib3 does
    not wait to fill a piece across HTTP chunks, so events are not delayed.
    """
    amt = READ_CHUNK_BYTES if getattr(response, "chunked", False) else None
    for chunk in response.stream(amt=amt, decode_content=True):
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


def _shutdown_response(response: Any) -> None:
    """Unblock a thread reading a watch: shut the socket (closing alone can wait on the read)."""
    if response is None:
        return
    shutdown = getattr(response, "shutdown", None)
    try:
        if callable(shutdown):
            shutdown()
        else:
            response.close()
    except OSError:
        log.debug("closing a watch response failed", exc_info=True)


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        reason = getattr(exc, "reason", "") or ""
        return f"HTTP {status} {reason}".strip()
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."
