"""The Prometheus HTTP API client against a scripted HTTP server on 127.0.0.1: what is retried, what is final.

Connection errors, timeouts, 5xx and 429 are retried with backoff (sleeps are
recorded, not slept); 4xx, malformed and oversized answers fail at once, each as
one `PrometheusApiError` naming the URL, the request and Prometheus's error.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from gpucost.promapi import Matrix, Point, PrometheusApiError, PrometheusClient, Sample, Series, Vector
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply
from gpucost_testing.servers import free_port

pytestmark = pytest.mark.integration

VECTOR_ANSWER = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {"team": "nlp"}, "value": [1700000000, "42.5"]}]},
}
BAD_DATA = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unclosed left parenthesis"}


@dataclass
class Scripted:
    """One scripted answer; `body` is JSON-encoded unless bytes."""

    status: int = 200
    body: object = field(default_factory=lambda: VECTOR_ANSWER)
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    """Before the status line: a server that does not answer."""
    trickle_seconds: float = 0.0
    """Between the body's bytes: a server that answers too slowly."""
    declare_length: bool = True


class ScriptedPrometheus:
    """Answers each GET with the next scripted answer (the last one repeats); `requests` are (path, query) pairs."""

    def __init__(self, script: Sequence[Scripted]) -> None:
        self.script = list(script)
        self._http = HttpFixture({("GET", "*"): self.answer}, name="scripted-prometheus")

    @property
    def url(self) -> str:
        return self._http.url

    @property
    def requests(self) -> list[tuple[str, list[tuple[str, str]]]]:
        return [(request.path, request.query) for request in self._http.requests]

    def answer(self, request: RecordedRequest) -> Reply:
        scripted = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        time.sleep(scripted.delay_seconds)
        body = scripted.body if isinstance(scripted.body, bytes) else json.dumps(scripted.body).encode()
        return Reply(scripted.status, body, "application/json", scripted.headers,
                     declare_length=scripted.declare_length, seconds_between_bytes=scripted.trickle_seconds)

    def __enter__(self) -> ScriptedPrometheus:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def serve(*script: Scripted) -> ScriptedPrometheus:
    return ScriptedPrometheus(script)


def client_for(url: str, sleeps: list[float], **kwargs: float) -> PrometheusClient:
    options: dict[str, float] = {"retries": 2, "backoff_seconds": 0.5, "timeout_seconds": 5.0, **kwargs}
    return PrometheusClient(
        url,
        timeout_seconds=options["timeout_seconds"],
        retries=int(options["retries"]),
        backoff_seconds=options["backoff_seconds"],
        max_backoff_seconds=options.get("max_backoff_seconds", 30.0),
        max_response_bytes=int(options.get("max_response_bytes", 1 << 20)),
        sleep=sleeps.append,
    )


def test_5xx_answers_are_retried_with_doubling_backoff_until_one_succeeds(sleeps: list[float]) -> None:
    with serve(Scripted(503, {}), Scripted(502, b"bad gateway"), Scripted()) as prometheus:
        vector = client_for(prometheus.url, sleeps).query("sum by (team) (x)")
    assert vector == Vector((Sample({"team": "nlp"}, 42.5),))
    assert len(prometheus.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_429_waits_as_long_as_retry_after_asks_up_to_the_cap(sleeps: list[float]) -> None:
    with serve(Scripted(429, {}, {"Retry-After": "7"}), Scripted(429, {}, {"Retry-After": "120"}), Scripted()) as p:
        assert len(client_for(p.url, sleeps, max_backoff_seconds=60.0).query("up")) == 1
    assert sleeps == [7.0, 60.0]


def test_an_outage_that_outlasts_the_retries_names_url_query_tries_and_prometheus_error(sleeps: list[float]) -> None:
    timeout_answer = {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"}
    with serve(Scripted(503, timeout_answer)) as prometheus, pytest.raises(PrometheusApiError) as caught:
        client_for(prometheus.url, sleeps).query("up")
    assert str(caught.value) == (
        f"Prometheus at {prometheus.url}/api/v1/query (query 'up'): unavailable after 3 tries:"
        " HTTP 503 timeout: query timed out in expression evaluation"
    )
    assert (caught.value.transient, caught.value.status) == (True, 503)
    assert len(prometheus.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_a_rejected_query_is_not_retried_and_carries_prometheus_error(sleeps: list[float]) -> None:
    with serve(Scripted(400, BAD_DATA)) as prometheus, pytest.raises(PrometheusApiError) as caught:
        client_for(prometheus.url, sleeps).query("sum(")
    assert str(caught.value) == (
        f"Prometheus at {prometheus.url}/api/v1/query (query 'sum('): rejected with HTTP 400 bad_data:"
        " 1:5: parse error: unclosed left parenthesis"
    )
    assert (caught.value.transient, caught.value.status, caught.value.error_type) == (False, 400, "bad_data")
    assert len(prometheus.requests) == 1
    assert sleeps == []


def test_a_404_without_json_is_final_and_shows_the_body(sleeps: list[float]) -> None:
    not_json = r"malformed answer \(HTTP 404\): not JSON: b'404 page not found\\n'"
    with serve(Scripted(404, b"404 page not found\n")) as prometheus, pytest.raises(PrometheusApiError, match=not_json):
        client_for(prometheus.url, sleeps).alerts()
    assert len(prometheus.requests) == 1


def test_connection_refused_is_retried_then_reported_as_transient(sleeps: list[float]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusApiError) as caught:
        client_for(url, sleeps, retries=1).query("up")
    assert str(caught.value).startswith(
        f"Prometheus at {url}/api/v1/query (query 'up'): unavailable after 2 tries: ConnectionRefusedError:"
    )
    assert caught.value.transient
    assert sleeps == [0.5]


def test_a_server_that_does_not_answer_is_given_up_after_the_timeout(sleeps: list[float]) -> None:
    with serve(Scripted(delay_seconds=3.0)) as prometheus:
        started = time.monotonic()
        with pytest.raises(PrometheusApiError, match=r"unavailable after 1 tries: TimeoutError"):
            client_for(prometheus.url, sleeps, retries=0, timeout_seconds=0.3).query("up")
        assert time.monotonic() - started < 2.0


def test_a_body_that_trickles_in_is_cut_off_at_the_timeout(sleeps: list[float]) -> None:
    # 0.05 s per byte: no single read waits long, but the ~200-byte body would take ~10 s.
    with serve(Scripted(trickle_seconds=0.05)) as prometheus:
        started = time.monotonic()
        with pytest.raises(PrometheusApiError, match=r"unavailable after 1 tries: no complete answer within 0.5s"):
            client_for(prometheus.url, sleeps, retries=0, timeout_seconds=0.5).query("up")
        assert time.monotonic() - started < 2.0


def test_a_non_json_success_is_malformed_and_not_retried(sleeps: list[float]) -> None:
    with serve(Scripted(200, b"<html>login</html>")) as prometheus, pytest.raises(PrometheusApiError) as caught:
        client_for(prometheus.url, sleeps).query("up")
    assert str(caught.value) == (
        f"Prometheus at {prometheus.url}/api/v1/query (query 'up'): malformed answer (HTTP 200): not JSON:"
        " b'<html>login</html>'"
    )
    assert not caught.value.transient
    assert len(prometheus.requests) == 1


def test_a_sample_that_is_not_a_number_is_named_in_the_error(sleeps: list[float]) -> None:
    answer = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]}}
    with serve(Scripted(200, answer)) as prometheus, pytest.raises(PrometheusApiError) as caught:
        client_for(prometheus.url, sleeps).query("up")
    assert str(caught.value) == (
        f"Prometheus at {prometheus.url}/api/v1/query (query 'up'):"
        " malformed answer: data.result[0].value[1] is 'x', not a number"
    )


def test_query_insists_on_a_vector(sleeps: list[float]) -> None:
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}
    with serve(Scripted(200, scalar)) as prometheus, pytest.raises(PrometheusApiError) as caught:
        client_for(prometheus.url, sleeps).query("scalar(up)")
    assert str(caught.value).endswith("(query 'scalar(up)'): the answer is a scalar, not a vector")


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "read-until-close"])
def test_an_answer_over_the_size_cap_is_refused(sleeps: list[float], declare_length: bool) -> None:
    big = {"status": "success", "data": {"resultType": "vector", "result": [], "padding": "x" * 5000}}
    scripted = Scripted(200, big, declare_length=declare_length)
    with serve(scripted) as prometheus, pytest.raises(PrometheusApiError) as caught:
        client_for(prometheus.url, sleeps, max_response_bytes=4096).query("up")
    assert str(caught.value).endswith("(query 'up'): the answer is larger than the 4096 bytes allowed")
    assert len(prometheus.requests) == 1


def test_parameters_reach_prometheus_as_the_api_names_them(sleeps: list[float]) -> None:
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"team": "nlp"}, "values": [[100, "1"], [160, "2"]]}]}}
    values = {"status": "success", "data": ["nlp"]}
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with serve(Scripted(), Scripted(200, matrix), Scripted(200, values)) as prometheus:
        client = client_for(prometheus.url, sleeps)
        client.query("up", at=at)
        assert client.query_range("x", 100, 160.5, 60) == Matrix(
            (Series({"team": "nlp"}, (Point(100.0, 1.0), Point(160.0, 2.0))),)
        )
        assert client.label_values("team/x", match=["up", "x"], start=1.0) == ("nlp",)
    assert prometheus.requests == [
        ("/api/v1/query", [("query", "up"), ("time", f"{at.timestamp():.3f}")]),
        ("/api/v1/query_range", [("query", "x"), ("start", "100.000"), ("end", "160.500"), ("step", "60")]),
        ("/api/v1/label/team%2Fx/values", [("match[]", "up"), ("match[]", "x"), ("start", "1.000")]),
    ]
