"""The renderer's OpenMetrics 1.0.0 output, and which format an Accept header gets.

The oracles are prometheus_client's: its OpenMetrics parser reads the whole
output, and its `choose_encoder` decides the format for every Accept header.
"""

from __future__ import annotations

import pytest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from gpucost.metrics.names import EXPORTER_METRICS
from gpucost.metrics.render import ExpositionFormat, SnapshotRenderer, choose_format
from tests.unit.test_metrics_contract import _snapshot

OPENMETRICS = ExpositionFormat.OPENMETRICS
TEXT = ExpositionFormat.TEXT

PROMETHEUS_2_42_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def _samples(families: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in families:  # type: ignore[attr-defined]
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_openmetrics_output_parses_whole_and_ends_with_one_eof() -> None:
    text = SnapshotRenderer().render(_snapshot(), OPENMETRICS).decode()
    assert text.endswith("\n# EOF\n")
    assert text.count("# EOF") == 1
    families = list(parse_openmetrics(text))
    assert {family.name for family in families} >= {"gpucost_gpu_cost_usd", "gpucost_gpu_info"}


def test_openmetrics_and_text_carry_the_same_samples() -> None:
    snapshot = _snapshot()
    renderer = SnapshotRenderer()
    openmetrics = _samples(parse_openmetrics(renderer.render(snapshot, OPENMETRICS).decode()))
    text = _samples(parse_text(renderer.render(snapshot, TEXT).decode()))
    assert openmetrics == text
    assert ("gpucost_gpu_cost_usd_total", (("uuid", "GPU-a"),)) in openmetrics


def test_counters_name_the_family_without_total_and_units_come_from_the_name() -> None:
    text = SnapshotRenderer().render(_snapshot(), OPENMETRICS).decode()
    assert "# TYPE gpucost_gpu_cost_usd counter\n" in text
    assert "# UNIT gpucost_gpu_cost_usd usd\n" in text
    assert "# HELP gpucost_gpu_cost_usd " in text
    assert "# UNIT gpucost_gpu_energy_joules joules\n" in text
    assert "# UNIT gpucost_container_gpu_seconds seconds\n" in text
    assert "# UNIT gpucost_gpu_memory_used_bytes bytes\n" in text
    assert "# UNIT gpucost_exporter_last_sample_timestamp_seconds seconds\n" in text
    assert "# UNIT gpucost_gpu_price_usd_per_hour usd_per_hour\n" in text
    assert "# UNIT gpucost_gpu_info" not in text
    units = {family.name: family.unit for family in parse_openmetrics(text)}
    for spec in EXPORTER_METRICS:
        family = spec.name.removesuffix("_total") if spec.type == "counter" else spec.name
        assert family in units, family
        if units[family]:
            assert family.endswith("_" + units[family])


def test_the_text_format_is_unchanged_by_openmetrics() -> None:
    text = SnapshotRenderer().render(_snapshot(), TEXT).decode()
    assert "# TYPE gpucost_gpu_cost_usd_total counter\n" in text
    assert "# UNIT" not in text and "# EOF" not in text
    assert SnapshotRenderer().render(_snapshot()) == text.encode()


def test_each_format_is_rendered_once_per_snapshot() -> None:
    renderer = SnapshotRenderer()
    snapshot = _snapshot(3)
    text, openmetrics = renderer.render(snapshot, TEXT), renderer.render(snapshot, OPENMETRICS)
    # Alternating scrapers (a Prometheus and a curl) must not evict each other's cached bytes.
    for _ in range(3):
        assert renderer.render(snapshot, TEXT) is text
        assert renderer.render(snapshot, OPENMETRICS) is openmetrics
    assert renderer.render(_snapshot(4), OPENMETRICS) is not openmetrics


@pytest.mark.parametrize("accept", [
    PROMETHEUS_2_42_ACCEPT,
    "application/openmetrics-text",
    "application/openmetrics-text; version=1.0.0",
    "text/plain;version=0.0.4;q=0.5, application/openmetrics-text;version=1.0.0",
    "application/openmetrics-text;version=0.0.1",
    "text/plain;version=0.0.4",
    "text/plain",
    "*/*",
    "",
    "application/json",
])
def test_the_format_follows_prometheus_client_choose_encoder(accept: str) -> None:
    _, expected = choose_encoder(accept)
    chosen = choose_format(accept)
    assert chosen.content_type.split(";")[0] == expected.split(";")[0], accept
    assert chosen is (OPENMETRICS if expected.startswith("application/openmetrics-text") else TEXT)
