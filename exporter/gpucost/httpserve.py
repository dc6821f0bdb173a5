"""A small HTTP/1.1 server for gpucost's endpoints: one asyncio event loop, h11 for the protocol.

Why not `http.server`: it handshakes TLS inside `accept()` on its one serving
thread (one idle connection to a TLS port stops every scrape), starts a thread
per connection with no timeout (500 half-sent requests made 463 threads), has a
listen backlog of 5, answers HTTP/1.0 without keep-alive, and prints a raw
traceback on stderr for every client that hangs up.

Here every connection is a coroutine with deadlines: the TLS handshake, the
request (from its first byte to its last), the keep-alive wait for the next
request and each write.  A slow or idle client costs a few kilobytes, never a
thread, and never delays another client (TLS is done in `gpucost.httpstreams`,
which says why not with asyncio's own).  The end of each connection is logged
once, at debug level, through the `gpucost.http` logger (so in the configured
logfmt or JSON format); nothing is printed around `logging`.

The server knows nothing of gpucost's routes: it calls one async handler per
request, so the exporter and the budgets sidecar can both serve through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

import h11

from gpucost.httpstreams import PlainStream, TlsStream

__all__ = ["Handler", "HttpServer", "Request", "Response", "ServerLimits", "listening_socket"]

log = logging.getLogger("gpucost.http")


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Deadlines and sizes; the defaults suit a Prometheus scraping every few seconds to minutes."""

    tls_handshake_seconds: float = 10.0
    # From a request's first byte to its last: a client dribbling a byte a second is cut off.
    request_seconds: float = 10.0
    # Keep-alive: how long an open connection may wait for its next request.
    idle_seconds: float = 75.0
    write_seconds: float = 30.0
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 1 << 20
    # Connections the kernel holds while the loop is busy; a burst of scrapers must not hit SYN retransmits.
    backlog: int = 1024


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    peer: str

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    # Several chunks are written one after another without being joined into a copy first.
    body: bytes | Sequence[bytes | memoryview] = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)

    def chunks(self) -> Sequence[bytes | memoryview]:
        return (self.body,) if isinstance(self.body, bytes) else self.body


Handler = Callable[[Request], Awaitable[Response]]


class _RequestTooLarge(Exception):
    pass


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """Bind and listen now, so a port in use is an OSError for the caller, not for the serving thread."""
    host = host.strip("[]")  # `[::1]` as written in a listen address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=backlog, reuse_port=False)


class HttpServer:
    """Serves `handler` on host:port (TLS when `tls` is given) from one event loop on its own thread."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        tls: ssl.SSLContext | None = None,
        limits: ServerLimits | None = None,
        thread_name: str = "gpucost-http",
    ) -> None:
        self._handler = handler
        self._tls = tls
        self._limits = limits or ServerLimits()
        self._thread_name = thread_name
        self._socket = listening_socket(host, port, self._limits.backlog)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def start(self) -> None:
        """Serve from a daemon thread; returns once the loop accepts connections."""
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, join the thread; the port is free afterwards."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed on its own meanwhile
                loop.call_soon_threadsafe(stopping.set)
            self._thread.join(timeout)
        self._socket.close()

    # --- the loop's thread -------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_log_loop_exception)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # handed to start()'s caller, or logged once
            if not self._started.is_set():
                self._start_error = exc
            else:
                log.error("http server stopped: %r", exc)
        finally:
            self._started.set()
            with contextlib.suppress(RuntimeError):
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accepted, sock=self._socket, backlog=self._limits.backlog)
        self._started.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.wait(self._connections, timeout=2.0)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _Connection(self, reader, writer).run()
        except asyncio.CancelledError:
            # stop() cancels open connections; ending quietly keeps Python 3.11's stream callback from
            # reporting each cancelled task as an error.
            pass
        finally:
            self._connections.discard(task)


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's own reports (an accept failing for want of file descriptors): one line, no traceback."""
    del loop
    exception = context.get("exception")
    log.warning("http event loop: %s%s", context.get("message", "error"), f": {exception!r}" if exception else "")


class _Connection:
    """One client connection: TLS handshake, then requests until either side closes or a deadline passes."""

    def __init__(self, server: HttpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._handler = server._handler  # the connection is the server's own helper
        self._tls = server._tls
        self._limits = server._limits
        peer = writer.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._stream = PlainStream(reader, writer) if self._tls is None else TlsStream(reader, writer, self._tls)
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self._limits.max_header_bytes)
        self._served = 0
        # asyncio sets TCP_NODELAY only on sockets created with proto=IPPROTO_TCP, which ours (and its
        # accepted children) are not.  Without it the response waits behind the TLS session tickets for
        # the client's delayed ACK: 40 ms per scrape.
        raw = writer.get_extra_info("socket")
        if raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def run(self) -> None:
        outcome = "closed by the client"
        graceful = True
        try:
            if isinstance(self._stream, TlsStream):
                try:
                    async with asyncio.timeout(self._limits.tls_handshake_seconds):
                        await self._stream.handshake()
                except TimeoutError:
                    raise _HandshakeTimeout from None
            while await self._serve_one():
                pass
            outcome = "closed after the response" if self._h11.our_state is h11.MUST_CLOSE else outcome
        except _HandshakeTimeout:
            graceful = False
            outcome = "no TLS handshake before the deadline"
        except TimeoutError:
            graceful = False
            outcome = self._timeout_outcome()
        except h11.RemoteProtocolError as exc:
            graceful = False
            if self._stream.at_eof:
                outcome = "closed by the client in the middle of a request"
            else:
                outcome = f"bad request: {exc}"
                await self._reject(exc.error_status_hint, "bad request")
        except _RequestTooLarge:
            graceful = False
            outcome = "request body too large"
            await self._reject(413, "request body too large")
        except asyncio.CancelledError:
            graceful = False
            outcome = "server stopping"
            raise
        except (OSError, ssl.SSLError, h11.LocalProtocolError) as exc:
            graceful = False
            outcome = f"connection error: {exc}"
        finally:
            self._stream.close(graceful)
            log.debug("connection from %s ended after %d requests: %s", self._peer, self._served, outcome)

    def _timeout_outcome(self) -> str:
        if self._h11.our_state in (h11.DONE, h11.MUST_CLOSE):
            return "the client did not read the response before the deadline"
        if self._h11.their_state is h11.IDLE and not self._h11.trailing_data[0]:
            return "idle keep-alive connection timed out" if self._served else "no request before the deadline"
        return "request not complete before the deadline"

    async def _serve_one(self) -> bool:
        """Read one request, answer it; False when the connection is over."""
        request = await self._read_request()
        if request is None:
            return False
        response = await self._respond(request)
        await self._send(request, response)
        self._served += 1
        if self._h11.our_state is h11.MUST_CLOSE or self._h11.their_state is not h11.DONE:
            return False
        self._h11.start_next_cycle()
        return True

    async def _read_request(self) -> Request | None:
        loop = asyncio.get_running_loop()
        first = self._served == 0
        # A new connection gets the request deadline at once; a kept-alive one may idle longer first.
        wait = self._limits.request_seconds if first else self._limits.idle_seconds
        head: h11.Request | None = None
        body = bytearray()
        async with asyncio.timeout(wait) as window:
            begun = bool(self._h11.trailing_data[0])
            if begun and not first:
                window.reschedule(loop.time() + self._limits.request_seconds)
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    data = await self._stream.read()
                    if data and not begun and not first:
                        begun = True
                        window.reschedule(loop.time() + self._limits.request_seconds)
                    self._h11.receive_data(data)
                elif isinstance(event, h11.Request):
                    head = event
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > self._limits.max_body_bytes:
                        raise _RequestTooLarge
                elif isinstance(event, h11.EndOfMessage) and head is not None:
                    return _request(head, bytes(body), self._peer)
                elif isinstance(event, h11.ConnectionClosed):
                    return None

    async def _respond(self, request: Request) -> Response:
        try:
            return await self._handler(request)
        except Exception as exc:  # one failing request must not end the server
            log.error("http handler failed for %s %s from %s", request.method, request.path, self._peer,
                      exc_info=exc)
            return Response(500, b"internal error\n")

    async def _send(self, request: Request, response: Response) -> None:
        chunks = response.chunks()
        length = sum(len(chunk) for chunk in chunks)
        headers = [("content-type", response.content_type), ("content-length", str(length)), *response.headers]
        if self._h11.their_state is not h11.DONE:
            headers.append(("connection", "close"))  # the unread rest of the request makes the stream unusable
        out: list[bytes | memoryview] = [self._h11.send(h11.Response(
            status_code=response.status, headers=headers, reason=_reason(response.status)))]
        if request.method != "HEAD":
            for chunk in chunks:
                # h11 hands the buffer back untouched (no copy of a large body); its stub only says bytes.
                out.extend(self._h11.send_with_data_passthrough(h11.Data(data=cast(bytes, chunk))) or ())
        out.append(self._h11.send(h11.EndOfMessage()))
        self._stream.write(out)
        async with asyncio.timeout(self._limits.write_seconds):
            await self._stream.drain()

    async def _reject(self, status: int, text: str) -> None:
        """Answer a request that could not be read, when the protocol state and the client still allow it."""
        if self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE) or self._stream.at_eof:
            return
        body = f"{text}\n".encode()
        headers = [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body))),
                   ("connection", "close")]
        with contextlib.suppress(OSError, ssl.SSLError, h11.LocalProtocolError, TimeoutError):
            head = self._h11.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))
            self._stream.write((head, body))
            async with asyncio.timeout(1.0):
                await self._stream.drain()


class _HandshakeTimeout(Exception):
    pass


def _request(head: h11.Request, body: bytes, peer: str) -> Request:
    headers: dict[str, str] = {}
    for raw_name, raw_value in head.headers:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Request(head.method.decode("ascii"), head.target.decode("latin-1"), headers, body, peer)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
