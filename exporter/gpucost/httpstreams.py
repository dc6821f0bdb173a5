"""Byte streams under the HTTP server: plain TCP, or TLS done here over memory BIOs.

Why not asyncio's own TLS (`start_server(ssl=...)`, `start_tls`): it allocates a
256 KiB read buffer per connection the moment the TCP connection is accepted,
so 500 clients that open the TLS port and send nothing cost 150 MiB, against
an exporter budget of 64 MiB.  Here the `ssl.SSLObject` is created only when a
whole first TLS record (the ClientHello) has arrived: a connection that sends
nothing, or dribbles a few bytes, costs its few buffered bytes.  After the
handshake OpenSSL releases its buffers between records.

Someone speaking plain HTTP to the TLS port gets a one-line 400 saying so,
as Go's servers answer, instead of a bare reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence

__all__ = ["NotTlsError", "PlainStream", "TlsStream"]

READ_CHUNK = 64 * 1024
_TLS_HANDSHAKE_RECORD = 0x16
_TLS_RECORD_HEADER = 5
_MAX_TLS_RECORD = 5 + 16384 + 2048  # header + the largest (compressed/encrypted) record TLS allows
_PLAIN_HTTP_TO_TLS = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" \
                     b"Client sent an HTTP request to an HTTPS server.\n"


class NotTlsError(ConnectionError):
    """The client's first bytes are not a TLS handshake (often plain HTTP sent to the TLS port)."""


class PlainStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.at_eof = False

    async def read(self) -> bytes:
        """Some bytes from the client; b"" once it has closed its side."""
        data = await self._reader.read(READ_CHUNK)
        self.at_eof = not data
        return data

    def write(self, chunks: Sequence[bytes | memoryview]) -> None:
        self._writer.writelines(chunks)

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self, graceful: bool) -> None:
        if graceful:
            self._writer.transport.close()
        else:
            self._writer.transport.abort()  # no lingering on a client that stalled or misbehaved


class TlsStream(PlainStream):
    """TLS server side over a plain stream; `handshake()` first, then the PlainStream interface."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
        super().__init__(reader, writer)
        self._context = context
        # Created with the SSLObject, once a ClientHello is in: an accept burst stays cheap.
        self._incoming: ssl.MemoryBIO | None = None
        self._outgoing: ssl.MemoryBIO | None = None
        self._ssl: ssl.SSLObject | None = None

    async def handshake(self) -> None:
        """Complete the TLS handshake (the caller bounds it in time); raises OSError or ssl.SSLError."""
        first_record = await self._first_record()
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._incoming.write(first_record)
        tls = self._context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._ssl = tls
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = await super().read()
                if not data:
                    raise ConnectionResetError("closed by the client during the TLS handshake") from None
                self._incoming.write(data)
        self._flush()

    async def _first_record(self) -> bytes:
        """Raw bytes up to the end of the first TLS record, read without any TLS state allocated."""
        buffered = bytearray()
        needed = _TLS_RECORD_HEADER
        while len(buffered) < needed:
            data = await super().read()
            if not data:
                raise ConnectionResetError("closed by the client before a TLS handshake")
            buffered += data
            if buffered[0] != _TLS_HANDSHAKE_RECORD:
                if buffered[:1].isalpha():  # a request line: GET, HEAD, POST...
                    self._writer.write(_PLAIN_HTTP_TO_TLS)
                raise NotTlsError("not a TLS handshake (plain HTTP to the TLS port?)")
            if len(buffered) >= _TLS_RECORD_HEADER:
                needed = min(_TLS_RECORD_HEADER + int.from_bytes(buffered[3:5], "big"), _MAX_TLS_RECORD)
        return bytes(buffered)

    async def read(self) -> bytes:
        assert self._ssl is not None and self._incoming is not None, "handshake() first"
        while True:
            try:
                return self._ssl.read(READ_CHUNK)
            except ssl.SSLZeroReturnError:  # the client's close_notify
                self.at_eof = True
                return b""
            except ssl.SSLWantReadError:
                self._flush()  # the handshake's last words (session tickets) go out before waiting
                data = await super().read()
                if not data:
                    return b""  # a TCP close without close_notify: the end, for a request/response protocol
                self._incoming.write(data)

    def write(self, chunks: Sequence[bytes | memoryview]) -> None:
        assert self._ssl is not None, "handshake() first"
        for chunk in chunks:
            self._ssl.write(chunk)
        self._flush()

    def close(self, graceful: bool) -> None:
        if graceful and self._ssl is not None:
            with contextlib.suppress(ssl.SSLError, OSError):
                self._ssl.unwrap()  # queue our close_notify; the client's answer is not waited for
            self._flush()
        super().close(graceful)

    def _flush(self) -> None:
        if self._outgoing is None:
            return
        pending = self._outgoing.read()
        if pending:
            self._writer.write(pending)
