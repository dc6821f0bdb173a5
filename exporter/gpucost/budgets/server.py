"""The sidecar's HTTP endpoints: `/metrics` from its own registry, `/healthz`, `/readyz`, the GCP push endpoint.

The serving itself (one event loop, deadlines per connection, keep-alive, a large
listen backlog) is `gpucost.httpserve`, the exporter's server: an idle or slow
client costs the sidecar a coroutine, never a thread, and never delays Prometheus.
"""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from gpucost import listen_address
from gpucost.budgets.gcp_budgets import GCP_BUDGET_PREFIX
from gpucost.budgets.gcp_spend import parse_push
from gpucost.budgets.state import SidecarState
from gpucost.errors import UserInputError
from gpucost.httpserve import HttpServer, Request, Response

__all__ = ["GCP_PUSH_PATH", "SidecarHttpServer", "parse_listen_address"]

log = logging.getLogger(__name__)
GCP_PUSH_PATH = "/gcp/budget-notifications"
_PROBE_PATHS = ("/healthz", "/readyz")
_READ_METHODS = ("GET", "HEAD")


def parse_listen_address(address: str) -> tuple[str, int]:
    """`:9836` -> ("0.0.0.0", 9836); `127.0.0.1:0` -> ("127.0.0.1", 0); UserInputError in the sidecar's words."""
    try:
        host, port = listen_address.parse_listen_address(address)
    except listen_address.ListenAddressError:
        raise UserInputError("--web.listen-address", "", address, "must be [host]:port, e.g. :9836") from None
    # "" (`:9836`) means every interface; the server binds 0.0.0.0 for it, as the exporter's does.
    return (host or "0.0.0.0", port)


class SidecarHttpServer:
    """Binds at construction (a port in use is an OSError for the caller), serves once started."""

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, state: SidecarState) -> None:
        self._registry = registry
        self._state = state
        host, port = address
        self._http = HttpServer(host, port, self._handle, thread_name="gpucost-budgets-http")

    @property
    def port(self) -> int:
        return self._http.port

    def start(self) -> SidecarHttpServer:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    async def _handle(self, request: Request) -> Response:
        if request.path == GCP_PUSH_PATH:
            if request.method != "POST":
                return Response(405, b"method not allowed\n", headers=(("allow", "POST"),))
            return self._gcp_push(request.body)
        if request.path != "/metrics" and request.path not in _PROBE_PATHS:
            return Response(404, b"not found\n")
        if request.method not in _READ_METHODS:
            return Response(405, b"method not allowed\n", headers=(("allow", ", ".join(_READ_METHODS)),))
        if request.path == "/metrics":
            return Response(200, generate_latest(self._registry), CONTENT_TYPE_LATEST)
        return Response(200, b"ok\n")

    def _gcp_push(self, body: bytes) -> Response:
        """A Pub/Sub push of a GCP budget notification.  Bodies over 1 MiB get a 413 from the server itself."""
        try:
            notification = parse_push(body)
        except UserInputError as err:
            log.warning("gcp budget notification rejected: %s", err.one_line())
            # 400 tells Pub/Sub not to retry a message that will never parse.
            return Response(400, b"bad notification\n")
        # The topic may be shared with budgets gpucost does not manage: acknowledge them, publish nothing.
        if notification.display_name.startswith(GCP_BUDGET_PREFIX):
            self._state.set_cloud_spend("gcp", notification.gpucost_name, "actual", notification.cost_usd)
        self._state.set_provider_up("gcp", "budget_spend", True)
        return Response(204)
