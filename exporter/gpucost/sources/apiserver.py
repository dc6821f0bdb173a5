"""Pod, namespace and node metadata for this node, kept current by API-server watches.

Three daemon threads feed an in-memory cache (`apiserver_cache.MetadataCache`)
that the sampler reads without blocking on the network:

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
as a stream through a cutter that shortens any string over 256 KiB (watch
events: `apiserver_events`), objects are pruned as they are decoded to the
label and annotation keys of `kept_keys` (the workload-label mapping's keys
and the owner labels), and kept values are capped at 256 characters.  A 64 MB
annotation therefore never exists in memory, not even as response bytes;
`truncation_counts()` says how often something was cut.

Requests go through lightkube (`kube_http`): kubeconfig or in-cluster service
account, auth and TLS, with the body read as raw bytes.  The official
`kubernetes` client, which decodes whole bodies into models and added about
55 MiB to the exporter, is not used.  `kube_http` (lightkube and httpx2, about
4 MiB resident) is imported only when a thread first needs the client
(`apiserver_client`), never when gpucost is imported.

This module is the reflector: the threads, the list + watch loop, relisting,
backoff and health.  What it keeps is in `apiserver_cache`, the watch wire
format in `apiserver_events`, the lazily built client in `apiserver_client`.
`pod_meta_from_object` and `node_info_from_object` live in `apiserver_cache`
and are re-exported here, where callers import them.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Mapping
from typing import Any

from gpucost.errors import ConfigError, SourceUnavailable
from gpucost.model import NodeInfo, PodMeta
from gpucost.sources.apiserver_cache import MetadataCache, node_info_from_object, pod_meta_from_object
from gpucost.sources.apiserver_client import LazyApiServerClient, recoverable_errors
from gpucost.sources.apiserver_events import WatchGoneError, WatchStream, read_events, shutdown_body
from gpucost.sources.kept_metadata import (
    NODE_KEYS,
    KeptKeys,
    KeySelection,
    KubeObject,
    decode_objects,
)
from gpucost.truncation import (
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
# The default service-account mount (lightkube's); a parameter so tests can point elsewhere.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
NODE_READ_TIMEOUT_SECONDS = 30.0
# The server closes a watch after timeoutSeconds; a read that stays silent this
# much longer means the connection died without a FIN (NAT timeout, node gone).
WATCH_READ_GRACE_SECONDS = 15.0
FIRST_BACKOFF_SECONDS = 0.5
LIST_PAGE_SIZE = 500
PODS_PATH = "/api/v1/pods"
NAMESPACES_PATH = "/api/v1/namespaces"
NODES_PATH = "/api/v1/nodes"


def resolve_node_name(flag_value: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The node to watch: the flag if given, else `NODE_NAME` from the downward API."""
    name = (flag_value or environ.get(NODE_NAME_ENV, "")).strip()
    if not name:
        raise ConfigError(
            "", "--node-name", flag_value, f"node name is required (flag or the {NODE_NAME_ENV} env variable)"
        )
    return name


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
    ) -> None:
        if not node_name:
            raise ConfigError("", "node_name", node_name, "node name is required")
        self.node_name = node_name
        self._client = LazyApiServerClient(kubeconfig, in_cluster, service_account_dir)
        self._backoff_max = max(0.01, resync_backoff_max_seconds)
        self._node_refresh_seconds = node_refresh_seconds
        self._watch_timeout_seconds = max(1, int(watch_timeout_seconds))
        self._kept_keys = kept_keys or KeptKeys()
        self._truncated = TruncationCounter()

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: list[WatchStream] = []
        self._cache = MetadataCache()
        self._errors: dict[str, str] = {}
        self._last_error = ""

    # --- read API (thread-safe, no I/O) -----------------------------------------

    def pod(self, namespace: str, name: str) -> PodMeta | None:
        """The pod as the watch knows it, or its final state for a while after it was deleted."""
        return self._cache.pod(namespace, name)

    def pods(self) -> list[PodMeta]:
        """This node's pods as the watch knows them now (deleted ones only through `pod()`)."""
        return self._cache.pods()

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        """The namespace's labels; the same object until they change (the label mapper caches on it)."""
        return self._cache.namespace_labels(namespace)

    def node(self) -> NodeInfo | None:
        return self._cache.node()

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
            WatchStream(
                name="pods",
                path=PODS_PATH,
                selectors={"fieldSelector": f"spec.nodeName={self.node_name}"},
                keys=self._kept_keys.pods,
                replace_all=self._cache.replace_pods,
                apply_event=self._cache.apply_pod_event,
            ),
            WatchStream(
                name="namespaces",
                path=NAMESPACES_PATH,
                selectors={},
                keys=self._kept_keys.namespaces,
                replace_all=self._cache.replace_namespaces,
                apply_event=self._cache.apply_namespace_event,
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
            shutdown_body(stream.body)
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads = []
        self._client.close()

    # --- list + watch loop -----------------------------------------------------

    def _run_stream(self, stream: WatchStream) -> None:
        recoverable = recoverable_errors()
        failures = 0
        while not self._stopping.is_set():
            try:
                stream.watching = False
                if not stream.resource_version:
                    self._list(stream)
                    self._record_success(stream.name)
                self._watch(stream)
                failures = 0
            except WatchGoneError:
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

    def _list(self, stream: WatchStream) -> None:
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

    def _watch(self, stream: WatchStream) -> None:
        """One watch request from stream.resource_version until the server ends it or it breaks."""
        stream.watching = False
        params = {
            **stream.selectors,
            "watch": "true",
            "resourceVersion": stream.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self._watch_timeout_seconds),
        }
        with self._client.http().get(stream.path, params, self._watch_read_timeout()) as body:
            stream.body = body
            stream.watching = True
            try:
                # stop() may have looked for a body to shut before this one existed.
                if self._stopping.is_set():
                    return
                self._record_success(stream.name)
                read_events(stream, body, self._truncated, self._stopping)
            finally:
                stream.body = None

    def _watch_read_timeout(self) -> float:
        return self._watch_timeout_seconds + WATCH_READ_GRACE_SECONDS

    # --- node refresh ------------------------------------------------------------

    def _run_node(self) -> None:
        recoverable = recoverable_errors()
        failures = 0
        while not self._stopping.is_set():
            try:
                node = self._read_node()
                self._cache.set_node(node)
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
        with self._client.http().get(path, params, read_timeout) as body:
            return decode_objects(body.chunks(), keys, self._truncated, SOURCE_APISERVER)


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        reason = getattr(exc, "reason", "") or ""
        return f"HTTP {status} {reason}".strip()
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."
