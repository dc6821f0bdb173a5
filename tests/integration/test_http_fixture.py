"""The tests' HTTP server helper on a real socket: routing, recording, replies slow or streamed, a prompt stop."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from gpucost_testing.http_fixture import DropConnection, HttpFixture, RecordedRequest, Reply

pytestmark = pytest.mark.integration


def _hello(request: RecordedRequest) -> Reply:
    return Reply.text(200, f"hello {request.method} {request.path}\n")


def _fail(request: RecordedRequest) -> Reply:
    raise ValueError("scripted failure")


def _request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method=method, headers={"X-Test": "yes"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), bytes(response.read()), dict(response.headers.items())
    except urllib.error.HTTPError as err:
        return int(err.code), bytes(err.read()), dict(err.headers.items())


def test_routes_dispatch_by_method_and_path_with_any_as_a_wildcard() -> None:
    routes = {("GET", "/metrics"): _hello, ("POST", "*"): _hello, ("*", "/anything"): _hello}
    with HttpFixture(routes) as server:
        assert _request(server.url + "/metrics?x=1")[:2] == (200, b"hello GET /metrics\n")
        assert _request(server.url + "/api/chat.postMessage", "POST", b"{}")[:2] == (
            200, b"hello POST /api/chat.postMessage\n")
        assert _request(server.url + "/anything", "DELETE")[:2] == (200, b"hello DELETE /anything\n")
        status, _, headers = _request(server.url + "/metrics", "PUT", b"")
        assert (status, headers["Allow"]) == (405, "GET, POST")


def test_a_path_no_route_has_is_404_and_a_method_no_route_has_is_405() -> None:
    with HttpFixture({("GET", "/metrics"): _hello}) as server:
        assert _request(server.url + "/nope")[:2] == (404, b"not found\n")
        status, body, headers = _request(server.url + "/metrics", "POST", b"{}")
        assert (status, body, headers["Allow"]) == (405, b"method not allowed\n", "GET")


def test_head_is_answered_by_the_get_route_with_the_length_and_without_the_body() -> None:
    with HttpFixture({("GET", "/metrics"): _hello}) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("HEAD", "/metrics")
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b""
            assert response.getheader("Content-Length") == str(len(b"hello HEAD /metrics\n"))
            # The same connection still works: nothing stray was written after the head.
            connection.request("GET", "/metrics")
            assert connection.getresponse().read() == b"hello GET /metrics\n"
        finally:
            connection.close()


def test_every_request_is_recorded_with_method_target_headers_and_body_from_many_threads() -> None:
    with HttpFixture({("POST", "*"): lambda request: Reply.json(200, {"ok": True})}) as server:
        def post(index: int) -> None:
            assert _request(f"{server.url}/post/{index}?n={index}", "POST", json.dumps({"n": index}).encode())[0] == 200

        threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        recorded = server.wait_for_requests(20, timeout=5)
    assert sorted(r.json()["n"] for r in recorded) == list(range(20))
    for request in recorded:
        index = request.json()["n"]
        assert (request.method, request.path, request.query) == ("POST", f"/post/{index}", [("n", str(index))])
        assert request.header("x-test") == "yes" and request.headers["X-Test"] == "yes"


def test_wait_for_requests_fails_naming_what_did_arrive() -> None:
    with HttpFixture({("GET", "*"): _hello}, name="probe") as server:
        _request(server.url + "/one")
        with pytest.raises(AssertionError, match=r"probe: wanted 2 requests within 0.2s, got 1; .*'/one'"):
            server.wait_for_requests(2, timeout=0.2)


def test_keep_requests_bounds_the_recording_to_the_latest() -> None:
    with HttpFixture({("GET", "*"): _hello}, keep_requests=2) as server:
        for index in range(5):
            _request(f"{server.url}/{index}")
        assert [r.path for r in server.requests] == ["/3", "/4"]


def test_a_failing_handler_answers_500_naming_the_error_and_the_server_keeps_serving() -> None:
    with HttpFixture({("GET", "/fail"): _fail, ("GET", "/ok"): _hello}) as server:
        status, body, _ = _request(server.url + "/fail")
        assert status == 500 and b"ValueError('scripted failure')" in body
        assert _request(server.url + "/ok")[0] == 200


def test_a_reply_without_length_ends_with_the_connection() -> None:
    with HttpFixture({("GET", "*"): lambda request: Reply(200, b"x" * 1000, declare_length=False)}) as server:
        status, body, headers = _request(server.url + "/")
    assert (status, body) == (200, b"x" * 1000)
    assert "Content-Length" not in headers and headers["Connection"] == "close"


def test_a_trickled_body_arrives_slowly_and_whole() -> None:
    with HttpFixture({("GET", "*"): lambda request: Reply(200, b"0123456789", seconds_between_bytes=0.03)}) as server:
        started = time.monotonic()
        status, body, _ = _request(server.url + "/")
        elapsed = time.monotonic() - started
    assert (status, body) == (200, b"0123456789")
    assert elapsed >= 0.25, f"the body took {elapsed:.2f}s: it was not trickled"


def test_chunks_are_sent_as_they_are_produced() -> None:
    release = threading.Event()

    def stream() -> Iterator[bytes]:
        yield b'{"type":"ADDED"}\n'
        release.wait(5)  # the second event exists only once the client has read the first
        yield b'{"type":"MODIFIED"}\n'

    with HttpFixture({("GET", "/watch"): lambda request: Reply(200, chunks=stream())}) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("GET", "/watch")
            response = connection.getresponse()
            assert response.getheader("Transfer-Encoding") == "chunked"
            assert response.readline() == b'{"type":"ADDED"}\n'
            release.set()
            assert response.read() == b'{"type":"MODIFIED"}\n'
        finally:
            connection.close()


def test_drop_connection_cuts_a_stream_without_its_last_chunk() -> None:
    def stream() -> Iterator[bytes]:
        yield b'{"type":"ADDED"}\n'
        raise DropConnection

    def refuse(request: RecordedRequest) -> Reply:
        raise DropConnection

    with HttpFixture({("GET", "/watch"): lambda request: Reply(200, chunks=stream()),
                      ("GET", "/drop"): refuse}) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("GET", "/watch")
            response = connection.getresponse()
            assert response.readline() == b'{"type":"ADDED"}\n'
            with pytest.raises(http.client.IncompleteRead):
                response.read()
        finally:
            connection.close()
        with pytest.raises(http.client.RemoteDisconnected):
            urllib.request.urlopen(server.url + "/drop", timeout=5)
        assert [r.path for r in server.requests] == ["/watch", "/drop"]


def test_stop_closes_kept_alive_connections_at_once_and_frees_the_port() -> None:
    server = HttpFixture({("GET", "*"): _hello}).start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", "/")
        assert connection.getresponse().read() == b"hello GET /\n"  # the connection stays open, idle
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        assert connection.sock is not None and connection.sock.recv(1) == b"", "the idle connection was closed"
    finally:
        connection.close()
    assert server.url.startswith("http://127.0.0.1:")  # still known, for messages that name it
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
