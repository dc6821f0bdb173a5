"""The Prometheus HTTP API client against a real Prometheus: every call the product and the tests make.

Prometheus evaluates one recording rule (`vector(1)`) and one alert that always
fires, every second; no scrape target is needed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gpucost.promapi import Matrix, PrometheusApiError, PrometheusClient, Sample, Scalar, String, Vector
from gpucost_testing.servers import require_binary, start_prometheus, wait_for, write_prometheus_config

pytestmark = pytest.mark.integration

RECORDED = "gpucost_promapi_test:one"
RULES = {
    "groups": [
        {
            "name": "promapi-test",
            "interval": "1s",
            "rules": [
                {"record": RECORDED, "expr": "vector(1)", "labels": {"team": "nlp"}},
                {"alert": "PromapiTestAlwaysFiring", "expr": "vector(1)", "labels": {"severity": "info"},
                 "annotations": {"summary": "always"}},
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusClient]:
    require_binary("prometheus")
    workdir: Path = tmp_path_factory.mktemp("promapi")
    rules = workdir / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    config = write_prometheus_config(workdir / "prometheus.yml", rule_files=[rules], evaluation_interval="1s")
    with start_prometheus(workdir, config) as process:
        client = PrometheusClient(process.base_url, timeout_seconds=10, retries=1, backoff_seconds=0.2)

        def evaluated_three_times() -> bool:
            raw = client.query_matrix(f"{RECORDED}[1m]")
            return bool(raw.series) and len(raw.series[0].points) >= 3

        wait_for(evaluated_three_times, timeout=30, what="three evaluations of the recording rule")
        yield client


def test_instant_query_returns_the_recorded_vector(prometheus: PrometheusClient) -> None:
    assert prometheus.query(RECORDED) == Vector((Sample({"__name__": RECORDED, "team": "nlp"}, 1.0),))
    labels, value = next(iter(prometheus.query(f"sum by (team) ({RECORDED}) * 2.5")))
    assert (labels, value) == ({"team": "nlp"}, 2.5)


def test_instant_query_at_a_time_before_any_data_is_empty(prometheus: PrometheusClient) -> None:
    assert prometheus.query(RECORDED, at=time.time() - 3600) == Vector(())


def test_scalar_and_string_results(prometheus: PrometheusClient) -> None:
    at = time.time()
    scalar = prometheus.instant("scalar(vector(0.25))", at)
    assert isinstance(scalar, Scalar)
    assert scalar.value == 0.25 and abs(scalar.at - at) < 1e-3
    answer = prometheus.instant('"hello"', at)
    assert isinstance(answer, String) and answer.value == "hello"


def test_range_selector_and_range_query_return_matrices(prometheus: PrometheusClient) -> None:
    raw = prometheus.query_matrix(f"{RECORDED}[1m]")
    assert len(raw) == 1 and len(raw.series[0].points) >= 3
    assert {point.value for point in raw.series[0].points} == {1.0}
    now = time.time()
    stepped = prometheus.query_range(RECORDED, now - 2, now, step_seconds=1)
    assert isinstance(stepped, Matrix)
    assert [point.at for point in stepped.series[0].points] == pytest.approx([now - 2, now - 1, now], abs=1e-3)


def test_series_and_label_values(prometheus: PrometheusClient) -> None:
    assert prometheus.series([RECORDED]) == ({"__name__": RECORDED, "team": "nlp"},)
    assert RECORDED in prometheus.label_values("__name__")
    assert prometheus.label_values("team", match=[RECORDED]) == ("nlp",)


def test_rules_and_alerts(prometheus: PrometheusClient) -> None:
    (group,) = prometheus.rule_groups()
    assert (group.name, group.interval_seconds) == ("promapi-test", 1.0)
    assert [(rule.name, rule.kind, rule.health) for rule in group.rules] == [
        (RECORDED, "recording", "ok"),
        ("PromapiTestAlwaysFiring", "alerting", "ok"),
    ]
    alert = wait_for(lambda: [a for a in prometheus.alerts() if a.state == "firing"], timeout=10, what="firing")[0]
    assert alert.labels == {"alertname": "PromapiTestAlwaysFiring", "severity": "info"}
    assert alert.annotations == {"summary": "always"}


def test_a_bad_query_is_rejected_once_with_prometheus_own_words(prometheus: PrometheusClient) -> None:
    with pytest.raises(PrometheusApiError) as caught:
        prometheus.query("sum(")
    error = caught.value
    assert (error.status, error.error_type, error.transient) == (400, "bad_data", False)
    assert str(error).startswith(
        f"Prometheus at {prometheus.base_url}/api/v1/query (query 'sum('): rejected with HTTP 400 bad_data: "
    )
    assert "parse error" in str(error)


def test_a_range_selector_is_not_a_vector(prometheus: PrometheusClient) -> None:
    with pytest.raises(PrometheusApiError, match=r"the answer is a matrix, not a vector$"):
        prometheus.query(f"{RECORDED}[1m]")
