"""log_training_cost against a real Prometheus scraping known cost counters, into a real MLflow file store."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from gpucost.instrument.mlflow import STATUS_TAG, log_training_cost, training_cost
from gpucost.instrument.training_cli import add_parser, run
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply
from gpucost_testing.servers import free_port, prom_query, start_prometheus, wait_for, write_prometheus_config

pytestmark = pytest.mark.integration

ACTIVE_USD_PER_HOUR = 3.0
IDLE_USD_PER_HOUR = 1.5
GPUS = 2
EPOCH_ZERO = time.time()


def exposition(now: float) -> str:
    """Two GPUs of pod llama-ft-0-8zq4m: counters linear in wall time at known $/h."""
    hours = (now - EPOCH_ZERO) / 3600
    lines = [
        "# TYPE gpucost_container_gpu_cost_usd_total counter",
        "# TYPE gpucost_container_gpu_seconds_total counter",
    ]
    for gpu in range(GPUS):
        base = f'namespace="research",pod="llama-ft-0-8zq4m",container="trainer",uuid="GPU-{gpu}"'
        workload = 'team="nlp",model="llama-3-8b"'
        for component, price in (("active", ACTIVE_USD_PER_HOUR), ("idle", IDLE_USD_PER_HOUR)):
            lines.append(
                f'gpucost_container_gpu_cost_usd_total{{{base},component="{component}",{workload}}} '
                f"{price * hours!r}"
            )
        lines.append(f"gpucost_container_gpu_seconds_total{{{base},{workload}}} {hours * 3600!r}")
        lines.append(f'gpucost_gpu_info{{uuid="GPU-{gpu}",gpu="{gpu}",gpu_model="NVIDIA A100-SXM4-80GB"}} 1')
        lines.append(f'gpucost_gpu_price_usd_per_hour{{uuid="GPU-{gpu}",pricing="on_demand"}} 4.5')
    # a pod of another job in the namespace, not part of the run
    lines.append(
        'gpucost_container_gpu_cost_usd_total{namespace="research",pod="other-0",container="x",'
        f'uuid="GPU-9",component="active"}} {100 * hours!r}'
    )
    return "\n".join(lines) + "\n"


def scrape(request: RecordedRequest) -> Reply:
    return Reply(200, exposition(time.time()).encode(), "text/plain; version=0.0.4")


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # file store: no server, no database
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    experiment_id = mlflow.create_experiment("gpucost-test")
    yield experiment_id
    mlflow.set_tracking_uri("")


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("prometheus")
    server = HttpFixture({("GET", "/metrics"): scrape}, name="cost-exposition").start()
    config = write_prometheus_config(
        tmp_path / "prometheus.yml",
        scrape_targets=[server.target],
        scrape_interval="1s",
        target_labels={"node_instance_type": "p4d.24xlarge"},
    )
    prometheus = start_prometheus(tmp_path, config)
    try:
        wait_for(
            lambda: prom_query(prometheus, "count_over_time(gpucost_gpu_info[1m]) >= 2"),
            timeout=20,
            what="two scrapes",
        )
        yield prometheus.base_url
    finally:
        prometheus.stop()
        server.stop()


def test_logged_training_cost_equals_the_counter_increase_over_the_run(
    tracking: str, prometheus_url: str
) -> None:
    with (
        mlflow.start_run(experiment_id=tracking) as run,
        training_cost(run, prometheus_url=prometheus_url, namespace="research", job="llama-ft", epochs=4),
    ):
        started = time.time()
        time.sleep(10)
        ended = time.time()
    # the context manager took its own clock readings around the same block
    expected_hours = (ended - started) / 3600
    expected_total = GPUS * (ACTIVE_USD_PER_HOUR + IDLE_USD_PER_HOUR) * expected_hours
    data = mlflow.MlflowClient().get_run(run.info.run_id).data

    assert data.metrics["training_cost_usd"] == pytest.approx(expected_total, rel=0.005)
    expected_idle = GPUS * IDLE_USD_PER_HOUR * expected_hours
    assert data.metrics["idle_cost_usd"] == pytest.approx(expected_idle, rel=0.005)
    assert data.metrics["gpu_hours"] == pytest.approx(GPUS * expected_hours, rel=0.005)
    assert data.metrics["duration_minutes"] == pytest.approx((ended - started) / 60, rel=0.005)
    assert data.metrics["cost_per_epoch"] == pytest.approx(data.metrics["training_cost_usd"] / 4)
    assert data.metrics["gpu_efficiency"] == pytest.approx(2 / 3, rel=0.005)
    assert data.params == {
        "instance_type": "p4d.24xlarge",
        "gpu_model": "NVIDIA A100-SXM4-80GB",
        "num_gpus": "2",
        "pricing": "on_demand",
    }
    assert data.tags["team"] == "nlp"
    assert data.tags["model"] == "llama-3-8b"
    assert data.tags[STATUS_TAG] == "ok"


def test_prometheus_down_tags_the_run_unavailable_without_raising(tracking: str) -> None:
    with mlflow.start_run(experiment_id=tracking) as run:
        cost = log_training_cost(
            run,
            prometheus_url=f"http://127.0.0.1:{free_port()}",
            namespace="research",
            pod_regex="llama-ft-.*",
            start=time.time() - 60,
            end=time.time(),
            retries=2,
            backoff_seconds=0.01,
        )
    assert cost is None
    data = mlflow.MlflowClient().get_run(run.info.run_id).data
    assert data.tags[STATUS_TAG] == "unavailable"
    assert "training_cost_usd" not in data.metrics


def test_cli_prints_the_cost_of_a_job_from_its_first_to_its_last_sample(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="gpucost")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["training-cost", "--job", "research/llama-ft", "--prometheus", prometheus_url])
    assert run(args) == 0
    printed = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    minutes = float(printed["duration_minutes"])
    assert minutes > 0
    expected = GPUS * (ACTIVE_USD_PER_HOUR + IDLE_USD_PER_HOUR) * minutes / 60
    assert float(printed["training_cost_usd"]) == pytest.approx(expected, rel=0.01)
    assert printed["num_gpus"] == "2"


def test_cli_rejects_a_job_without_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="gpucost")
    add_parser(parser.add_subparsers())
    assert run(parser.parse_args(["training-cost", "--job", "llama-ft"])) == 2
    assert "NAMESPACE/NAME" in capsys.readouterr().err
