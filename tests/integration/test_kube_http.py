"""`kube_http` against a scripted HTTP server on 127.0.0.1: bytes as they arrive, bounded, never decompressed.

The scripted server answers each path with what a test asks for (a chunked body written
piece by piece, a gzip body, an error Status) and records the request headers.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from gpucost.errors import SourceUnavailable
from gpucost.sources.kube_http import READ_CHUNK_BYTES, ApiServerHttp, ApiStatusError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Script = Callable[[BaseHTTPRequestHandler], None]


class ScriptedServer:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.headers: list[dict[str, str]] = []
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.headers.append({key.lower(): value for key, value in self.headers.items()})
                owner.scripts[self.path.split("?", 1)[0]](self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def kubeconfig(self, path: Path) -> str:
        path.write_text(yaml.safe_dump({
            "clusters": [{"name": "c", "cluster": {"server": self.url}}],
            "users": [{"name": "u", "user": {"token": "scripted-token"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }))  # fmt: skip
        return str(path)


def send_chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()


def start_chunked(handler: BaseHTTPRequestHandler, status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    scripted.thread.start()
    yield scripted
    scripted.release.set()
    scripted.httpd.shutdown()
    scripted.httpd.server_close()


@pytest.fixture
def http(server: ScriptedServer, tmp_path: Path) -> Iterator[ApiServerHttp]:
    client = ApiServerHttp.connect(server.kubeconfig(tmp_path / "kubeconfig"), in_cluster=False)
    yield client
    client.close()


def test_a_large_body_arrives_in_pieces_no_larger_than_the_read_size_with_the_token_and_no_compression(
    server: ScriptedServer, http: ApiServerHttp
) -> None:
    body = b'{"items": "' + b"x" * (4 * READ_CHUNK_BYTES) + b'"}'

    def large(handler: BaseHTTPRequestHandler) -> None:
        start_chunked(handler)
        send_chunk(handler, body)  # one HTTP chunk four times the read size
        send_chunk(handler, b"")

    server.scripts["/api/v1/pods"] = large
    with http.get("/api/v1/pods", {"limit": "500"}, read_timeout=10) as streamed:
        pieces = list(streamed.chunks())
    assert b"".join(pieces) == body
    assert max(len(piece) for piece in pieces) <= READ_CHUNK_BYTES
    assert len(pieces) >= 5
    assert server.headers[0]["authorization"] == "Bearer scripted-token"
    assert server.headers[0]["accept-encoding"] == "identity"


def test_a_watch_event_is_handed_over_as_soon_as_it_arrives_not_when_a_piece_fills(
    server: ScriptedServer, http: ApiServerHttp
) -> None:
    def watch(handler: BaseHTTPRequestHandler) -> None:
        start_chunked(handler)
        send_chunk(handler, b'{"type":"ADDED","object":{}}\n')
        server.release.wait(20)  # the stream stays open, as a watch does
        send_chunk(handler, b"")

    server.scripts["/api/v1/pods"] = watch
    began = time.monotonic()
    with http.get("/api/v1/pods", {"watch": "true"}, read_timeout=30) as streamed:
        first = next(streamed.chunks())
        waited = time.monotonic() - began
        server.release.set()
    assert first == b'{"type":"ADDED","object":{}}\n'
    assert waited < 5.0


def test_shutdown_from_another_thread_ends_a_read_blocked_on_a_silent_watch(
    server: ScriptedServer, http: ApiServerHttp
) -> None:
    def silent(handler: BaseHTTPRequestHandler) -> None:
        start_chunked(handler)
        server.release.wait(30)

    server.scripts["/api/v1/pods"] = silent
    ended = threading.Event()

    def read_all() -> None:
        try:
            with http.get("/api/v1/pods", {"watch": "true"}, read_timeout=60) as streamed:
                holder.append(streamed)
                list(streamed.chunks())
        except Exception:  # the read is cut short: an error is the expected way out
            pass
        ended.set()

    holder: list[object] = []
    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while not holder and time.monotonic() < deadline:
        time.sleep(0.01)
    assert holder, "the watch never started"
    began = time.monotonic()
    holder[0].shutdown()  # type: ignore[attr-defined]
    assert ended.wait(5.0), "the blocked read did not end"
    assert time.monotonic() - began < 5.0


def test_a_compressed_body_is_refused_not_decompressed(server: ScriptedServer, http: ApiServerHttp) -> None:
    def gzipped(handler: BaseHTTPRequestHandler) -> None:
        payload = gzip.compress(b"{}" * 100_000)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    server.scripts["/api/v1/nodes/n"] = gzipped
    with pytest.raises(SourceUnavailable, match="gzip body"), http.get("/api/v1/nodes/n", {}, read_timeout=10):
        pass


def test_an_error_answer_carries_the_status_code_and_the_servers_message(
    server: ScriptedServer, http: ApiServerHttp
) -> None:
    def forbidden(handler: BaseHTTPRequestHandler) -> None:
        status = {"kind": "Status", "code": 403, "reason": "Forbidden",
                  "message": 'nodes "n" is forbidden: User "x" cannot get resource "nodes"'}
        payload = json.dumps(status).encode()
        handler.send_response(403)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    server.scripts["/api/v1/nodes/n"] = forbidden
    with pytest.raises(ApiStatusError) as caught, http.get("/api/v1/nodes/n", {}, read_timeout=10):
        pass
    assert (caught.value.status, caught.value.reason) == (403, "Forbidden")
    assert 'cannot get resource "nodes"' in caught.value.message


def test_an_unusable_kubeconfig_is_a_source_outage_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("current-context: c\ncontexts: []\nclusters: []\n")
    with pytest.raises(SourceUnavailable, match=str(path)):
        ApiServerHttp.connect(str(path), in_cluster=False)
