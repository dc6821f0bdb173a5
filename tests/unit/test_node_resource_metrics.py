"""Parsing the kubelet's /metrics/resource text and turning two readings into CPU cores used."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.errors import SourceUnavailable
from gpucost.model import ContainerRef
from gpucost.sources.kubelet_resource import ResourceMetricsReading, UsageTracker, parse_resource_metrics

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubelet"
TRAINER = ContainerRef("research", "llama-70b-train-worker-0", "trainer")
SERVER = ContainerRef("search", "ranker-7d9f8b6c5-x2x7q", "server")
SIDECAR = ContainerRef("search", "ranker-7d9f8b6c5-x2x7q", "istio-proxy")
WEB = ContainerRef("shop", "frontend-5c7f9d8b4-abcde", "web")
WORKER = ContainerRef("shop", "queue-worker-0", "worker")


def reading(name: str, read_at: float = 0.0) -> ResourceMetricsReading:
    return parse_resource_metrics((FIXTURES / name).read_text(encoding="utf-8"), read_at)


def test_a_reading_holds_each_containers_cpu_counter_and_working_set_with_the_kubelets_sample_time() -> None:
    first = reading("gpu_node_t0.prom", read_at=1746100001.5)
    assert set(first.containers) == {TRAINER, SERVER, SIDECAR}
    trainer = first.containers[TRAINER]
    assert trainer.cpu_seconds_total == 86400
    assert trainer.cpu_timestamp == pytest.approx(1746100000.0)
    assert trainer.memory_working_set_bytes == 2.147483648e11
    assert first.node_cpu_seconds_total == 95000
    assert first.node_memory_working_set_bytes == 2.5769803776e11
    assert first.read_at == 1746100001.5


def test_cpu_usage_is_the_rate_between_two_readings_by_the_kubelets_sample_times() -> None:
    tracker = UsageTracker()
    before = tracker.update(reading("gpu_node_t0.prom", 1746100001.0))
    assert before.containers[TRAINER].cpu_cores is None  # one reading is no rate
    after = tracker.update(reading("gpu_node_t1.prom", 1746100030.0))  # read late: the stats are still 15 s apart
    assert after.containers[TRAINER].cpu_cores == pytest.approx(12.0)
    assert after.containers[SERVER].cpu_cores == pytest.approx(1.5)
    assert after.containers[SIDECAR].cpu_cores == pytest.approx(0.05)
    assert after.node_cpu_cores == pytest.approx(14.0)
    assert after.containers[SERVER].memory_working_set_bytes == 1.7179869184e10


def test_a_reading_whose_stats_did_not_move_keeps_the_previous_rate() -> None:
    tracker = UsageTracker()
    tracker.update(reading("gpu_node_t0.prom"))
    tracker.update(reading("gpu_node_t1.prom"))
    again = tracker.update(reading("gpu_node_t1.prom"))
    assert again.containers[TRAINER].cpu_cores == pytest.approx(12.0)


def test_node_without_gpus_reads_the_same_and_a_restarted_containers_counter_starts_over() -> None:
    tracker = UsageTracker()
    tracker.update(reading("cpu_node_t0.prom"))
    usage = tracker.update(reading("cpu_node_t1.prom"))
    assert usage.containers[WEB].cpu_cores == pytest.approx(0.5)
    assert usage.containers[WORKER].cpu_cores is None  # 900 -> 3: restarted, no rate until the next reading
    assert usage.containers[WORKER].memory_working_set_bytes == 1.048576e8
    assert usage.node_cpu_cores == pytest.approx(0.8)


def test_a_container_gone_from_the_answer_is_forgotten() -> None:
    tracker = UsageTracker()
    tracker.update(reading("gpu_node_t0.prom"))
    tracker.update(reading("cpu_node_t0.prom"))
    usage = tracker.update(reading("gpu_node_t1.prom"))
    assert usage.containers[TRAINER].cpu_cores is None


def test_an_answer_without_the_node_counter_is_not_a_kubelet_answer() -> None:
    text = "# TYPE up gauge\nup 1\n"
    with pytest.raises(SourceUnavailable, match="no node_cpu_usage_seconds_total"):
        parse_resource_metrics(text, 0.0)


@pytest.mark.parametrize("text", ["<html><body>502 Bad Gateway</body></html>\n", "hello world\n", 'x{a="b" 1\n'])
def test_text_that_is_not_prometheus_is_source_unavailable(text: str) -> None:
    with pytest.raises(SourceUnavailable, match="not Prometheus text"):
        parse_resource_metrics(text, 0.0)


def test_samples_without_names_or_with_names_longer_than_kubernetes_allows_are_dropped_and_counted() -> None:
    long_pod = "p" * 254
    text = (
        "node_cpu_usage_seconds_total 1 1000\n"
        f'container_cpu_usage_seconds_total{{container="c",namespace="n",pod="{long_pod}"}} 1 1000\n'
        'container_cpu_usage_seconds_total{container="",namespace="n",pod="p"} 1 1000\n'
        'container_memory_working_set_bytes{container="c",namespace="n",pod="ok"} 5 1000\n'
    )
    parsed = parse_resource_metrics(text, 0.0)
    assert list(parsed.containers) == [ContainerRef("n", "ok", "c")]
    assert parsed.long_names_dropped == 2


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_either_parses_or_is_source_unavailable(text: str) -> None:
    with contextlib.suppress(SourceUnavailable):
        parse_resource_metrics("node_cpu_usage_seconds_total 1\n" + text, 0.0)
