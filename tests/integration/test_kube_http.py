"""`kube_http` against a scripted HTTP server on 127.0.0.1: bytes as they arrive, bounded, never decompressed.

The scripted server (an HttpFixture) answers each path with what a test asks for (a chunked
body written piece by piece, a gzip body, an error Status) and records the requests.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import yaml

from gpucost.errors import SourceUnavailable
from gpucost.sources.kube_http import READ_CHUNK_BYTES, ApiServerHttp, ApiStatusError
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply, Route

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class ScriptedServer:
    """Answers each GET path with the Reply its script makes; `release` ends the streams a script holds open."""

    def __init__(self) -> None:
        self.scripts: dict[str, Route] = {}
        self.release = threading.Event()
        self.http = HttpFixture({("GET", "*"): self._answer}, name="scripted-apiserver")

    def _answer(self, request: RecordedRequest) -> Reply:
        return self.scripts[request.path](request)

    @property
    def url(self) -> str:
        return self.http.url

    def kubeconfig(self, path: Path) -> str:
        path.write_text(yaml.safe_dump({
            "clusters": [{"name": "c", "cluster": {"server": self.url}}],
            "users": [{"name": "u", "user": {"token": "scripted-token"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }))  # fmt: skip
        return str(path)


def chunked(chunks: Iterable[bytes]) -> Reply:
    return Reply(200, content_type="application/json", chunks=chunks)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    with scripted.http:
        yield scripted
        scripted.release.set()


@pytest.fixture
def http(server: ScriptedServer, tmp_path: Path) -> Iterator[ApiServerHttp]:
    client = ApiServerHttp.connect(server.kubeconfig(tmp_path / "kubeconfig"), in_cluster=False)
    yield client
    client.close()


def test_a_large_body_arrives_in_pieces_no_larger_than_the_read_size_with_the_token_and_no_compression(
    server: ScriptedServer, http: ApiServerHttp
) -> None:
    body = b'{"items": "' + b"x" * (4 * READ_CHUNK_BYTES) + b'"}'

    server.scripts["/api/v1/pods"] = lambda _: chunked([body])  # one HTTP chunk four times the read size
    with http.get("/api/v1/pods", {"limit": "500"}, read_timeout=10) as streamed:
        pieces = list(streamed.chunks())
    assert b"".join(pieces) == body
    assert max(len(piece) for piece in pieces) <= READ_CHUNK_BYTES
    assert len(pieces) >= 5
    [request] = server.http.requests
    assert request.header("Authorization") == "Bearer scripted-token"
    assert request.header("Accept-Encoding") == "identity"


def test_a_watch_event_is_handed_over_as_soon_as_it_arrives_not_when_a_piece_fills(
    server: ScriptedServer, http: ApiServerHttp
) -> None:
    def watch() -> Iterator[bytes]:
        yield b'{"type":"ADDED","object":{}}\n'
        server.release.wait(20)  # the stream stays open, as a watch does

    server.scripts["/api/v1/pods"] = lambda _: chunked(watch())
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
    def silent() -> Iterator[bytes]:
        server.release.wait(30)  # headers sent, then nothing
        yield from ()

    server.scripts["/api/v1/pods"] = lambda _: chunked(silent())
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
    payload = gzip.compress(b"{}" * 100_000)
    server.scripts["/api/v1/nodes/n"] = lambda _: Reply(200, payload, "application/json", {"Content-Encoding": "gzip"})
    with pytest.raises(SourceUnavailable, match="gzip body"), http.get("/api/v1/nodes/n", {}, read_timeout=10):
        pass


def test_an_error_answer_carries_the_status_code_and_the_servers_message(
    server: ScriptedServer, http: ApiServerHttp
) -> None:
    status = {"kind": "Status", "code": 403, "reason": "Forbidden",
              "message": 'nodes "n" is forbidden: User "x" cannot get resource "nodes"'}
    server.scripts["/api/v1/nodes/n"] = lambda _: Reply.json(403, status)
    with pytest.raises(ApiStatusError) as caught, http.get("/api/v1/nodes/n", {}, read_timeout=10):
        pass
    assert (caught.value.status, caught.value.reason) == (403, "Forbidden")
    assert 'cannot get resource "nodes"' in caught.value.message


def test_an_unusable_kubeconfig_is_a_source_outage_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("current-context: c\ncontexts: []\nclusters: []\n")
    with pytest.raises(SourceUnavailable, match=str(path)):
        ApiServerHttp.connect(str(path), in_cluster=False)
