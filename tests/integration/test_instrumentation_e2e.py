"""Inference and training attribution end to end, on the real simulated exporter.

One simulated node (`instrumentation_training_and_inference.yaml`, anchored to
the wall clock) runs a training Job pod and an inference pod.  A real
Prometheus scrapes, every second, the real `gpucost-exporter
--nvml.backend=simulated` and a real Starlette app served by uvicorn, wrapped
by `GpuCostMiddleware` (gpucost_testing/instrumented_ranker.py), whose `/metrics` target carries the inference pod's
`namespace` and `pod` (what the relabeling in docs/instrumentation.md yields).
A client thread keeps the app busy with business units `search` and `ads` at
70/30 share-seconds for the whole module.

Training: an MLflow run (real file store) over part of the training pod's life
gets `log_training_cost`, which must equal the exporter's own counters.

Inference: Prometheus evaluates `rules/gpucost.inference.rules.yaml` with every
expression byte for byte as committed (5m windows included); only the groups'
`interval` (1m and 5m in the file) is set to 2s in a temporary copy, so that
recorded series exist within seconds instead of after minutes.  The recorded
split is compared with the pod's measured cost and the app's share-seconds over
the *same* 5m window, evaluated at the same instant: less than five minutes of
data underestimates a 5m rate in absolute terms, but it does so identically for
the pod's cost and for its split, so the split and the sum are exact claims
about the rules; that the shares are 70/30 is checked on the app's own counters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
import uvicorn
import yaml
from prometheus_client import CollectorRegistry

from gpucost.instrument.mlflow import STATUS_TAG, log_training_cost
from gpucost_testing.instrumented_ranker import INFERENCE_MODEL, INFERENCE_MODEL_VERSION, Traffic, inference_app
from gpucost_testing.processes import free_port
from gpucost_testing.servers import (
    REPO_ROOT,
    ManagedProcess,
    prom_query,
    prom_scalar,
    start_exporter,
    start_prometheus,
    wait_for,
    write_prometheus_config,
)

pytestmark = pytest.mark.integration

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/instrumentation_training_and_inference.yaml"
INFERENCE_RULES = REPO_ROOT / "rules/gpucost.inference.rules.yaml"
RULE_INTERVAL = "2s"

TRAINING_NAMESPACE = "research"
TRAINING_JOB = "llama-ft"
TRAINING_POD = "llama-ft-7x2kq"
TRAINING_SECONDS = 25.0

INFERENCE_NAMESPACE = "search"
INFERENCE_POD = "ranker-7d9f8c6b5-x2k4q"
SEARCH_SHARE = 0.7  # the traffic's ROUND: 7 of every 10 requests
INFERENCE_DATA_SECONDS = 30.0  # of traffic in Prometheus before the split is read


# --- the node -----------------------------------------------------------------------


@dataclass
class Node:
    prometheus: ManagedProcess
    exporter: ManagedProcess
    registry: CollectorRegistry
    traffic: Traffic
    started: float

    def sleep_until(self, wall_time: float) -> None:
        time.sleep(max(0.0, wall_time - time.time()))


def inference_rules_every(interval: str, destination: Path) -> Path:
    """The committed inference rules with only each group's evaluation interval changed."""
    document = yaml.safe_load(INFERENCE_RULES.read_text())
    for group in document["groups"]:
        group["interval"] = interval
    destination.write_text(yaml.safe_dump(document, sort_keys=False))
    return destination


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    workdir = tmp_path_factory.mktemp("instrumentation-e2e")
    started = time.time()
    scenario = yaml.safe_load(SCENARIO.read_text())
    scenario["start_time"] = started
    scenario_file = workdir / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario))
    exporter = start_exporter(
        workdir,
        [
            "--nvml.backend=simulated",
            f"--simulate.scenario={scenario_file}",
            f"--state.file={workdir / 'state.json'}",
            "--sample.interval=1s",
        ],
    )

    registry = CollectorRegistry()
    app_port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            inference_app(registry),
            host="127.0.0.1",
            port=app_port,
            lifespan="off",
            ws="none",
            log_level="warning",
            access_log=False,
        )
    )
    server_thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    server_thread.start()
    traffic = Traffic(f"http://127.0.0.1:{app_port}")
    traffic_thread = threading.Thread(target=traffic.run, name="traffic", daemon=True)
    prometheus: ManagedProcess | None = None
    try:
        wait_for(lambda: server.started, timeout=20, what="uvicorn to listen")
        traffic_thread.start()
        app_job = {
            "job_name": "ranker",
            "scrape_interval": "1s",
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{app_port}"],
                    # what the kubernetes_sd relabeling in docs/instrumentation.md produces
                    "labels": {"namespace": INFERENCE_NAMESPACE, "pod": INFERENCE_POD},
                }
            ],
        }
        config = write_prometheus_config(
            workdir / "prometheus.yml",
            scrape_targets=[f"127.0.0.1:{exporter.port}"],
            scrape_interval="1s",
            evaluation_interval=RULE_INTERVAL,
            rule_files=[inference_rules_every(RULE_INTERVAL, workdir / "gpucost.inference.rules.yaml")],
            extra_scrape_configs=[app_job],
            target_labels={"node_instance_type": "p4d.24xlarge"},
        )
        prometheus = start_prometheus(workdir, config)
        prom = prometheus
        wait_for(
            lambda: (
                prom_query(prom, "count_over_time(gpucost_inference_gpu_share_seconds_total[1m]) >= 3")
                and prom_query(prom, "count_over_time(gpucost_gpu_info[1m]) >= 3")
            ),
            timeout=30,
            what="three scrapes of the exporter and of the app",
        )
        yield Node(prometheus, exporter, registry, traffic, started)
    finally:
        traffic.stop.set()
        if traffic_thread.is_alive():
            traffic_thread.join(timeout=10)
        server.should_exit = True
        server_thread.join(timeout=10)
        if prometheus is not None:
            prometheus.stop()
        exporter.stop()


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # file store: no server, no database
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    experiment_id = mlflow.create_experiment("gpucost-e2e")
    yield experiment_id
    mlflow.set_tracking_uri("")


# --- training -----------------------------------------------------------------------


def counter_increase(node: Node, expr: str, start: float, end: float) -> float:
    """The exporter's counter `expr` over [start, end], from the scrapes before each instant.

    Each scrape carries the exporter's own sample time; the counters' growth
    between the two samples is scaled to the exact length of the range.
    """
    sample_time = "gpucost_exporter_last_sample_timestamp_seconds"
    first, last = prom_scalar(node.prometheus, expr, at=start), prom_scalar(node.prometheus, expr, at=end)
    first_at = prom_scalar(node.prometheus, sample_time, at=start)
    last_at = prom_scalar(node.prometheus, sample_time, at=end)
    assert last_at - first_at > 0.8 * (end - start)
    return (last - first) * (end - start) / (last_at - first_at)


def test_mlflow_training_cost_equals_the_exporters_counters_for_the_pod(node: Node, tracking: str) -> None:
    with mlflow.start_run(experiment_id=tracking) as run:
        time.sleep(TRAINING_SECONDS)  # the training, on the pod's two GPUs
    info = mlflow.MlflowClient().get_run(run.info.run_id).info
    start, end = info.start_time / 1000, info.end_time / 1000
    node.sleep_until(end + 2)  # the scrape just before `end` is stored

    # start and end default to the run's own times
    cost = log_training_cost(
        run, prometheus_url=node.prometheus.base_url, namespace=TRAINING_NAMESPACE, job=TRAINING_JOB, epochs=5
    )

    assert cost is not None
    pod = f'namespace="{TRAINING_NAMESPACE}",pod="{TRAINING_POD}"'
    total = counter_increase(node, f"sum(gpucost_container_gpu_cost_usd_total{{{pod}}})", start, end)
    idle = counter_increase(node, f'sum(gpucost_container_gpu_cost_usd_total{{{pod},component="idle"}})', start, end)
    gpu_seconds = counter_increase(node, f"sum(gpucost_container_gpu_seconds_total{{{pod}}})", start, end)
    price = prom_scalar(node.prometheus, 'sum(gpucost_gpu_price_usd_per_hour{uuid=~"GPU-0.*|GPU-1.*"})', at=end)
    data = mlflow.MlflowClient().get_run(run.info.run_id).data
    print(f"training: logged {data.metrics} vs counters total={total} idle={idle} gpu_seconds={gpu_seconds}")

    assert data.metrics["training_cost_usd"] == pytest.approx(total, rel=0.005)
    assert data.metrics["training_cost_usd"] == pytest.approx(price * (end - start) / 3600, rel=0.005)
    assert data.metrics["idle_cost_usd"] == pytest.approx(idle, rel=0.005)
    assert data.metrics["gpu_hours"] == pytest.approx(gpu_seconds / 3600, rel=0.005)
    assert data.metrics["gpu_hours"] == pytest.approx(2 * (end - start) / 3600, rel=0.005)
    assert data.metrics["gpu_efficiency"] == pytest.approx((total - idle) / total, rel=0.005)
    # two GPUs held exclusively, busy 90 % and 60 %: three quarters of the cost is active
    assert data.metrics["gpu_efficiency"] == pytest.approx(0.75, rel=0.005)
    assert data.metrics["duration_minutes"] == pytest.approx((end - start) / 60, rel=1e-6)
    assert data.metrics["cost_per_epoch"] == pytest.approx(data.metrics["training_cost_usd"] / 5)
    assert data.params == {
        "instance_type": "p4d.24xlarge",
        "gpu_model": "NVIDIA A100-SXM4-80GB",
        "num_gpus": "2",
        "pricing": "on_demand",
    }
    assert data.tags["team"] == "research"
    assert data.tags["model"] == "llama-3-8b"
    assert data.tags[STATUS_TAG] == "ok"


# --- inference ----------------------------------------------------------------------


def by_labels(result: list[dict[str, Any]], *names: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(name, "") for name in names): float(r["value"][1]) for r in result}


def test_inference_pod_serving_two_business_units_70_30_is_charged_70_30_of_its_measured_cost(
    node: Node,
) -> None:
    prom = node.prometheus
    pod = f'namespace="{INFERENCE_NAMESPACE}",pod="{INFERENCE_POD}"'
    split_name = "namespace_pod_model_business_unit:gpucost_inference_cost_usd_per_hour:rate5m"
    pod_cost_name = "namespace_pod_component:gpucost_inference_pod_cost_usd_per_hour:rate5m"
    node.sleep_until(node.started + INFERENCE_DATA_SECONDS)
    wait_for(lambda: prom_query(prom, f"{split_name}{{{pod}}}"), timeout=20, what="the recorded split")
    split_at = prom_scalar(prom, f"max(timestamp({split_name}{{{pod}}}))")

    split = by_labels(
        prom_query(prom, f"{split_name}{{{pod}}}", at=split_at), "business_unit", "component", "model", "model_version"
    )
    pod_cost_at = prom_scalar(prom, f"max(timestamp({pod_cost_name}{{{pod}}}))", at=split_at)
    recorded_pod_cost = by_labels(prom_query(prom, f"{pod_cost_name}{{{pod}}}", at=split_at), "component")
    # the pod's measured cost: the exporter's counters over the rules' window at the same instant
    measured = by_labels(
        prom_query(
            prom,
            f"sum by (component) (rate(gpucost_container_gpu_cost_usd_total{{{pod}}}[5m])) * 3600",
            at=pod_cost_at,
        ),
        "component",
    )
    print(f"inference: split at {split_at - node.started:.1f}s {split}; pod cost {measured}")

    assert set(split) == {
        (business_unit, component, INFERENCE_MODEL, INFERENCE_MODEL_VERSION)
        for business_unit in ("search", "ads")
        for component in ("active", "idle")
    }
    assert recorded_pod_cost == pytest.approx(measured, rel=1e-9)
    # the shares the rules split by: the app's share-seconds over the same 5m window, at the
    # instant the share group evaluated.  Their rates are not exactly 70/30 over the first
    # seconds of data (each series' rate drops part of the count before its first scrape,
    # which depends on when that scrape fell), so the exact claim is against these rates.
    ratio_name = "namespace_pod_model_business_unit:gpucost_inference_share:ratio5m"
    ratio_at = prom_scalar(prom, f"max(timestamp({ratio_name}{{{pod}}}))", at=split_at)
    share_rates = by_labels(
        prom_query(
            prom,
            f"sum by (business_unit) (rate(gpucost_inference_gpu_share_seconds_total{{{pod}}}[5m]))",
            at=ratio_at,
        ),
        "business_unit",
    )
    expected_share = {bu: rate / sum(share_rates.values()) for (bu,), rate in share_rates.items()}
    assert expected_share["search"] == pytest.approx(SEARCH_SHARE, rel=0.03)
    for component in ("active", "idle"):
        pod_cost = measured[(component,)]
        assert pod_cost > 0
        search = split[("search", component, INFERENCE_MODEL, INFERENCE_MODEL_VERSION)]
        ads = split[("ads", component, INFERENCE_MODEL, INFERENCE_MODEL_VERSION)]
        assert search / pod_cost == pytest.approx(expected_share["search"], rel=1e-9), component
        assert ads / pod_cost == pytest.approx(expected_share["ads"], rel=1e-9), component
        assert search + ads == pytest.approx(pod_cost, rel=0.005), component

    # the day's $ (increase1d): the split integrated at every minute mark, so it appears at the
    # first minute mark after the split does; it is the same split in dollars, and it sums to
    # the pod's measured cost integrated over the same minute marks
    daily_name = "model_business_unit:gpucost_inference_cost_usd:increase1d"
    split_name = "model_business_unit:gpucost_inference_cost_usd_per_hour:rate5m"
    wait_for(
        lambda: prom_query(prom, f'{daily_name}{{model="{INFERENCE_MODEL}"}}'),
        timeout=75,
        what="the recorded daily split",
    )
    # Compare once the day holds three minute marks: at the first mark the pod can be a few seconds old, when
    # its 5-minute rate still moves fast, and the split recorded up to one evaluation before that mark can
    # differ from the rate at the mark by 10 %; two more marks of a steady pod dilute that to a few percent.
    split_marks = (f'count_over_time({split_name}{{model="{INFERENCE_MODEL}",business_unit="search",'
                   f'component="active"}}[1d:1m])')
    wait_for(lambda: prom_query(prom, f"{split_marks} >= 3"), timeout=200, what="the split at three minute marks")
    time.sleep(5)  # the daily rule evaluates every 2 s: its newest sample now includes the third mark
    daily_at = prom_scalar(prom, f'max(timestamp({daily_name}{{model="{INFERENCE_MODEL}"}}))')
    daily = by_labels(
        prom_query(prom, f'{daily_name}{{model="{INFERENCE_MODEL}"}}', at=daily_at), "business_unit", "component"
    )
    # The pod's cost integrated over the same minute marks as the daily rule: only the marks at which the
    # recorded split already existed. Over a young pod one mark more or less is an eighth of the total,
    # and whether the split was recorded before the first mark depends on when the evaluations fell.
    day_cost = by_labels(
        prom_query(
            prom,
            f"sum_over_time(((sum by (component) (rate(gpucost_container_gpu_cost_usd_total{{{pod}}}[5m])) * 3600)"
            f' and on (component) sum by (component) ({split_name}{{model="{INFERENCE_MODEL}"}}))[1d:1m]) / 60',
            at=daily_at,
        ),
        "component",
    )
    print(f"inference: daily at {daily_at - node.started:.1f}s {daily}; pod cost over the same marks {day_cost}")
    for component in ("active", "idle"):
        day_total = daily[("search", component)] + daily[("ads", component)]
        assert day_total > 0
        assert daily[("search", component)] / day_total == pytest.approx(SEARCH_SHARE, rel=0.03), component
        # the split was recorded up to one evaluation (2 s) before each mark, over a young pod
        assert day_total == pytest.approx(day_cost[(component,)], rel=0.1), component

    # what the app itself measured: 70/30 share-seconds, from equal-length requests sent 7:3
    assert not node.traffic.failures, node.traffic.failures
    shares = {
        business_unit: node.registry.get_sample_value(
            "gpucost_inference_gpu_share_seconds_total",
            {"model": INFERENCE_MODEL, "model_version": INFERENCE_MODEL_VERSION, "business_unit": business_unit},
        )
        or 0.0
        for business_unit in ("search", "ads")
    }
    assert shares["search"] / (shares["search"] + shares["ads"]) == pytest.approx(SEARCH_SHARE, rel=0.01)
    assert node.traffic.sent["search"] > 500
