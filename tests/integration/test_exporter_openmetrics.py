"""OpenMetrics negotiation, checked from outside: curl-style requests and a real Prometheus 2.42.

Prometheus 2.42 has no `scrape_protocols` setting, but its Accept header
prefers OpenMetrics.  What it received shows in its metadata API: a `unit`
only an OpenMetrics `# UNIT` line can carry, and a counter family named
without `_total`.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from gpucost_testing.servers import (
    REPO_ROOT,
    http_get_json,
    prom_query,
    start_exporter,
    start_prometheus,
    wait_for,
    write_prometheus_config,
)

pytestmark = pytest.mark.integration

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Values that stay put while the simulated node runs, so two scrapes a second apart agree.
STATIC_METRICS = ("gpucost_gpu_price_usd_per_hour", "gpucost_gpu_info", "gpucost_gpu_memory_total_bytes",
                  "gpucost_exporter_build_info")


def _args(tmp_path: Path) -> list[str]:
    return ["--nvml.backend=simulated", f"--simulate.scenario={SCENARIO}", f"--state.file={tmp_path / 's.json'}",
            "--sample.interval=1s"]


def _get(url: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode()


def _static_values(families: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in families:
        for sample in family.samples:
            if sample.name in STATIC_METRICS:
                # Prometheus stores no empty label values: an empty label is an absent one.
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if v))
                values[(sample.name, labels)] = sample.value
    return values


def test_accept_openmetrics_gets_one_document_with_process_metrics_and_one_eof(tmp_path: Path) -> None:
    with start_exporter(tmp_path, _args(tmp_path)) as exporter:
        content_type, body = _get(exporter.base_url + "/metrics", "application/openmetrics-text")
        assert content_type == OPENMETRICS_CONTENT_TYPE
        assert body.endswith("\n# EOF\n")
        assert body.count("# EOF") == 1
        families = {family.name: family for family in parse_openmetrics(body)}
        assert families["process_cpu_seconds"].type == "counter"
        assert families["gpucost_gpu_energy_joules"].unit == "joules"
        assert families["gpucost_gpu_cost_usd"].type == "counter"
        assert len(families["gpucost_gpu_info"].samples) == 8

        content_type, text = _get(exporter.base_url + "/metrics")
        assert content_type == TEXT_CONTENT_TYPE
        assert "# EOF" not in text
        text_families = {family.name: family for family in parse_text(text)}
        assert "process_cpu_seconds" in text_families
        assert _static_values(text_families.values()) == _static_values(families.values())
        assert len(_static_values(families.values())) > 8


def test_a_real_prometheus_negotiates_openmetrics_and_stores_the_same_values(tmp_path: Path) -> None:
    with start_exporter(tmp_path, _args(tmp_path)) as exporter:
        target = exporter.base_url.removeprefix("http://")
        config = write_prometheus_config(tmp_path / "prometheus.yml", scrape_targets=[target], scrape_interval="1s")
        with start_prometheus(tmp_path, config) as prometheus:
            def energy_metadata() -> list[dict[str, Any]]:
                answer = http_get_json(prometheus.base_url + "/api/v1/targets/metadata",
                                       {"match_target": f'{{instance="{target}"}}'})
                return [entry for entry in answer["data"] if entry["metric"].startswith("gpucost_gpu_energy_joules")]

            metadata = wait_for(energy_metadata, timeout=30, interval=0.5, what="metadata of a scraped target")
            assert [(m["metric"], m["type"], m["unit"]) for m in metadata] == [
                ("gpucost_gpu_energy_joules", "counter", "joules")], "Prometheus was not served OpenMetrics"
            wait_for(lambda: len(prom_query(prometheus, "gpucost_gpu_price_usd_per_hour")) == 8, timeout=30,
                     what="the prices in Prometheus")
            stored = {}
            for name in STATIC_METRICS:
                for result in prom_query(prometheus, name):
                    labels = {k: v for k, v in result["metric"].items() if k not in ("__name__", "instance", "job")}
                    stored[(name, tuple(sorted(labels.items())))] = float(result["value"][1])
            _, text = _get(exporter.base_url + "/metrics")
            assert stored == _static_values(parse_text(text))
            assert len(prom_query(prometheus, "gpucost_gpu_cost_usd_total")) == 8
            up = prom_query(prometheus, f'up{{instance="{target}"}}')
            assert [float(r["value"][1]) for r in up] == [1.0]
