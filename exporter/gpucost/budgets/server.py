"""The sidecar's HTTP server: `/metrics` from its own registry, `/healthz`, and the GCP push endpoint."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from gpucost import listen_address
from gpucost.budgets.gcp_budgets import GCP_BUDGET_PREFIX
from gpucost.budgets.gcp_spend import parse_push
from gpucost.budgets.state import SidecarState
from gpucost.errors import UserInputError

__all__ = ["GCP_PUSH_PATH", "SidecarHttpServer", "parse_listen_address"]

log = logging.getLogger(__name__)
GCP_PUSH_PATH = "/gcp/budget-notifications"
_MAX_BODY = 1 << 20


def parse_listen_address(address: str) -> tuple[str, int]:
    """`:9836` -> ("0.0.0.0", 9836); `127.0.0.1:0` -> ("127.0.0.1", 0); UserInputError in the sidecar's words."""
    try:
        host, port = listen_address.parse_listen_address(address)
    except listen_address.ListenAddressError:
        raise UserInputError("--web.listen-address", "", address, "must be [host]:port, e.g. :9836") from None
    # The sidecar's server listens on IPv4 only, where "" and 0.0.0.0 are the same.
    return (host or "0.0.0.0", port)


class SidecarHttpServer:
    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, state: SidecarState) -> None:
        handler = _make_handler(registry, state)
        self._server = ThreadingHTTPServer(address, handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> SidecarHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(registry: CollectorRegistry, state: SidecarState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/readyz"):
                self._answer(200, b"ok\n")
            else:
                self._answer(404, b"not found\n")

        def do_POST(self) -> None:
            if self.path.split("?")[0] != GCP_PUSH_PATH:
                self._answer(404, b"not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._answer(413, b"too large\n")
                return
            try:
                notification = parse_push(self.rfile.read(length))
            except UserInputError as err:
                log.warning("gcp budget notification rejected: %s", err.one_line())
                # 400 tells Pub/Sub not to retry a message that will never parse.
                self._answer(400, b"bad notification\n")
                return
            # The topic may be shared with budgets gpucost does not manage: acknowledge them, publish nothing.
            if notification.display_name.startswith(GCP_BUDGET_PREFIX):
                state.set_cloud_spend("gcp", notification.gpucost_name, "actual", notification.cost_usd)
            state.set_provider_up("gcp", "budget_spend", True)
            self._answer(204, b"")

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)

    return Handler
