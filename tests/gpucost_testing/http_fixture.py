"""A small threaded HTTP server for the tests' and the demo's stand-ins: routes, recorded requests, a clean stop.

Every fake service in gpucost (the Slack sink, the GCP and BigQuery APIs, the Kubernetes API
server, a kubelet over TLS, a scripted Prometheus, a tiny exposition for Prometheus to scrape)
needs the same things: a port of its own on 127.0.0.1, a function per (method, path), every
request kept for the test to assert on, and a stop that frees the port at once.
`HttpFixture` is that, so each fake is only its behaviour::

    def answer(request: RecordedRequest) -> Reply:
        return Reply(200, b'{"ok": true}', "application/json")

    with HttpFixture({("POST", "/api/chat.postMessage"): answer}) as server:
        ...  # point the client at server.url
        [request] = server.wait_for_requests(1)
        assert request.json()["channel"] == "#research"

A route's method or path may be "*" (any).  Requests no route takes get 404, or 405 when
another method has the path; HEAD is answered by the GET route, without the body.

The product's own endpoints serve through `gpucost.httpserve` (asyncio, deadlines per
connection); this one gives each connection a thread, so a handler may simply sleep to
play a slow server, and may write its body slowly or as a stream of chunks (`Reply`).
Given a server-side `ssl.SSLContext` as `tls`, it serves HTTPS.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["DropConnection", "HttpFixture", "RecordedRequest", "Reply", "Route"]

log = logging.getLogger(__name__)

ANY = "*"


class DropConnection(Exception):
    """Raised by a route, or by a reply's `chunks` mid-stream: the connection is cut, nothing more is sent."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server read it, before any handler answered it."""

    method: str
    target: str  # path and query as sent, e.g. /api/v1/query?query=up
    headers: Mapping[str, str]  # names as the client wrote them; `header()` looks up without case
    body: bytes
    received_at: float = field(default_factory=time.time)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> list[tuple[str, str]]:
        """The query parameters in order, repeated names kept (`match[]=a&match[]=b`)."""
        return urllib.parse.parse_qsl(self.target.partition("?")[2], keep_blank_values=True)

    def header(self, name: str) -> str:
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), "")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler answers.

    `body` goes out with a Content-Length, unless `declare_length` is False: then the body
    ends when the server closes the connection (HTTP/1.0 style).  `seconds_between_bytes`
    writes it a byte at a time (a server answering too slowly).  `chunks`, instead of
    `body`, is sent with chunked transfer encoding, each chunk as soon as it is produced
    (a watch stream); the response ends when the iterable does, or is cut off without its
    last chunk when the iterable raises `DropConnection`.
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    declare_length: bool = True
    seconds_between_bytes: float = 0.0
    chunks: Iterable[bytes] | None = None

    @classmethod
    def json(cls, status: int, document: Any, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(document).encode(), "application/json", headers or {})

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
        return cls(status, text.encode(), content_type)


Route = Callable[[RecordedRequest], Reply]
_NOT_FOUND = Reply(404, b"not found\n")


class HttpFixture:
    """Serves `routes` on 127.0.0.1 (an ephemeral port unless `port` is given) from a background thread."""

    def __init__(
        self,
        routes: Mapping[tuple[str, str], Route],
        *,
        port: int = 0,
        name: str = "http-fixture",
        keep_requests: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`keep_requests` bounds the recording to the latest n (a stand-in the demo runs for hours).

        `tls`, a server-side context, makes it serve HTTPS (a kubelet, an API server).
        """
        self._routes = dict(routes)
        self._tls = tls
        self._port = port
        self._name = name
        self._changed = threading.Condition()
        self._requests: collections.deque[RecordedRequest] = collections.deque(maxlen=keep_requests)
        self._connections: set[socket.socket] = set()
        self._stopping = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        if self._server is None:
            self._stopping = False
            self._server = _Server(("127.0.0.1", self._port), self, self._tls)
            self._bound_port = int(self._server.server_address[1])
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every open connection (kept-alive or streaming), free the port."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        with self._changed:
            self._stopping = True
            open_connections = list(self._connections)
        for connection in open_connections:
            # Unblocks a handler thread waiting to read the next keep-alive request or writing a stream.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port bound by start(); still known after stop(), for assertions that name the URL used."""
        if self._bound_port is None:
            raise RuntimeError(f"{self._name} is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        scheme = "http" if self._tls is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def serving_thread(self) -> threading.Thread | None:
        """The thread accepting connections while started; stop() ends it."""
        return self._thread

    @property
    def target(self) -> str:
        """host:port, as a Prometheus scrape config names it."""
        return f"127.0.0.1:{self.port}"

    # --- what was received ----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._changed:
            return list(self._requests)

    def clear(self) -> None:
        with self._changed:
            self._requests.clear()

    def wait_for_requests(
        self, count: int, timeout: float = 10.0, where: Callable[[RecordedRequest], bool] | None = None
    ) -> list[RecordedRequest]:
        """Block until `count` requests (matching `where`) arrived; all of them, or AssertionError with what came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self._requests if where is None or where(r)]
                remaining = deadline - time.monotonic()
                if len(found) >= count:
                    return found
                if remaining <= 0:
                    seen = [(r.method, r.target) for r in self._requests]
                    raise AssertionError(f"{self._name}: wanted {count} requests within {timeout}s, got "
                                         f"{len(found)}; all requests: {seen}")
                self._changed.wait(remaining)

    # --- used by the handler threads ----------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _route_for(self, method: str, path: str) -> Route | None:
        for key in ((method, path), (method, ANY), (ANY, path), (ANY, ANY)):
            if key in self._routes:
                return self._routes[key]
        return None

    def _answer(self, request: RecordedRequest) -> Reply:
        route = self._route_for(request.method, request.path)
        if route is None and request.method == "HEAD":
            route = self._route_for("GET", request.path)
        if route is None:
            allowed = sorted({method for method, path in self._routes if path in (request.path, ANY)} - {ANY})
            return Reply(405, b"method not allowed\n", headers={"Allow": ", ".join(allowed)}) if allowed else _NOT_FOUND
        try:
            return route(request)
        except DropConnection:
            raise
        except Exception as exc:  # a broken fake answers 500 and says why, instead of hanging the client
            log.exception("%s: handler for %s %s failed", self._name, request.method, request.path)
            return Reply(500, f"{self._name}: handler failed: {exc!r}\n".encode())

    def _opened(self, connection: socket.socket) -> None:
        with self._changed:
            if self._stopping:  # accepted just before stop(): its handler thread must not wait on it
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.add(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._changed:
            self._connections.discard(connection)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fixture: HttpFixture, tls: ssl.SSLContext | None) -> None:
        self.fixture = fixture
        self.tls = tls
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.tls is None:
            return connection, address
        # The handshake happens on the handler thread's first read, so a client that stalls or
        # refuses our certificate holds up only its own connection, never the accept loop.
        return self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A failed TLS handshake or a client hanging up mid-request is the test's business, not a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("%s: connection from %s failed", self.fixture._name, client_address, exc_info=True)
        else:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive, as real services and Go clients (Alertmanager, Prometheus) expect; stop() closes idle ones.
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.fixture._opened(self.connection)

    def finish(self) -> None:
        self.server.fixture._closed(self.connection)
        with contextlib.suppress(OSError):  # the client hung up: nothing left to flush to
            super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test reads `requests`, not an access log."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            method=self.command,
            target=self.path,
            headers=dict(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
        )
        fixture = self.server.fixture
        fixture._record(request)
        try:
            self._send(fixture._answer(request), with_body=request.method != "HEAD")
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            self.close_connection = True  # the client gave up (its timeout, a size cap): often what a test is about

    def _send(self, reply: Reply, *, with_body: bool) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunks is not None:
            self.send_header("Transfer-Encoding", "chunked")
        elif reply.declare_length:
            self.send_header("Content-Length", str(len(reply.body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not with_body:
            return
        if reply.chunks is not None:
            self._write_chunks(reply.chunks)
        elif reply.seconds_between_bytes > 0:
            for byte in reply.body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(reply.seconds_between_bytes)
        else:
            self.wfile.write(reply.body)

    def _write_chunks(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            if chunk:  # an empty chunk would end the body early
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
