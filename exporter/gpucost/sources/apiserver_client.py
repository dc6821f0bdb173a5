"""The API-server HTTP client that `ApiServerSource`'s threads share, built on first use.

Building it reads the kubeconfig or the in-cluster service account, and
importing `kube_http` loads lightkube and httpx2 (about 4 MiB resident), so
both wait until a thread first needs the client: importing gpucost, or
constructing a source that is never started, costs neither.  A failure to
build is raised to the calling thread, which retries it like any outage.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpucost.sources.kube_http import ApiServerHttp

__all__ = ["LazyApiServerClient", "recoverable_errors"]


class LazyApiServerClient:
    """One `ApiServerHttp`, connected on first use and shared by every thread until `close()`.

    `kubeconfig` selects a kubeconfig file; `in_cluster` forces (True) or
    forbids (False) the service-account config, and None picks it when
    `KUBERNETES_SERVICE_HOST` is set and no kubeconfig was given.
    """

    def __init__(self, kubeconfig: str | None, in_cluster: bool | None, service_account_dir: str) -> None:
        self._kubeconfig = kubeconfig
        self._in_cluster = in_cluster
        self._service_account_dir = service_account_dir
        self._lock = threading.Lock()
        self._client: ApiServerHttp | None = None

    def http(self) -> ApiServerHttp:
        """The configured HTTP client, built on first use; a failure here is retried like any outage."""
        with self._lock:
            client = self._client
        if client is None:
            from gpucost.sources.kube_http import ApiServerHttp

            client = self._keep_client(
                ApiServerHttp.connect(self._kubeconfig, self._use_in_cluster(), self._service_account_dir)
            )
        return client

    def close(self) -> None:
        """Close the client if one was built; the next `http()` builds a new one."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

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


def recoverable_errors() -> tuple[type[BaseException], ...]:
    """Outside-world failures that mean "retry later"; imported lazily to keep lightkube out of gpucost."""
    from gpucost.sources.kube_http import RECOVERABLE_ERRORS

    return RECOVERABLE_ERRORS
