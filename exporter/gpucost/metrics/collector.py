"""A prometheus_client collector over the latest snapshot.

For users who embed gpucost in a registry of their own.  The exporter's HTTP
server serves the same rows through the faster `SnapshotRenderer`; a test
checks both expose identical samples.  `describe()` reads only the metric
table, so registering the collector does no I/O and never calls `collect()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gpucost.metrics.names import EXPORTER_METRICS, MetricSpec
from gpucost.metrics.series import Row, snapshot_series
from gpucost.snapshot import ExporterSnapshot

__all__ = ["SnapshotCollector"]


def _family(spec: MetricSpec, label_names: tuple[str, ...], rows: list[Row]) -> Metric:
    if spec.type == "counter":
        family: Metric = CounterMetricFamily(
            spec.name.removesuffix("_total"), spec.help, labels=label_names
        )
        for values, value in rows:
            family.add_metric(list(values), value)  # type: ignore[attr-defined]
        return family
    gauge = GaugeMetricFamily(spec.name, spec.help, labels=label_names)
    for values, value in rows:
        gauge.add_metric(list(values), value)
    return gauge


class SnapshotCollector(Collector):
    def __init__(self, snapshot_source: Callable[[], ExporterSnapshot], workload_label_names: tuple[str, ...]):
        self._snapshot_source = snapshot_source
        self._workload_label_names = workload_label_names

    def describe(self) -> Iterator[Metric]:
        for spec in EXPORTER_METRICS:
            yield _family(spec, spec.label_names(self._workload_label_names), [])

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot_source()
        for spec, rows in snapshot_series(snapshot):
            yield _family(spec, spec.label_names(snapshot.workload_label_names), rows)
