"""The baseline exporter: the same series through stock prometheus_client classes and its HTTP server.

`build_registry(series)` puts every row in a fresh `CollectorRegistry` with
`Counter`/`Gauge` and labels, the way one would write the exporter with the
stock client.  Run as `python -m gpucost_bench.baseline_server ROWS_JSON PORT`
to serve it over HTTP from its own process, for a scrape-for-scrape comparison.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from gpucost.metrics.names import MetricSpec
from gpucost.metrics.series import Series

__all__ = ["build_registry", "main", "series_to_json"]


def _add(registry: CollectorRegistry, name: str, kind: str, help_text: str, labels: Sequence[str],
         rows: Sequence[tuple[Sequence[str], float]]) -> None:
    if kind == "counter":
        counter = Counter(name.removesuffix("_total"), help_text, list(labels), registry=registry)
        for values, value in rows:
            (counter.labels(*values) if labels else counter).inc(value)
        return
    gauge = Gauge(name, help_text, list(labels), registry=registry)
    for values, value in rows:
        (gauge.labels(*values) if labels else gauge).set(value)


def build_registry(series: Sequence[Series], workload_label_names: tuple[str, ...]) -> CollectorRegistry:
    registry = CollectorRegistry()
    for spec, rows in series:
        _add(registry, spec.name, spec.type, spec.help, spec.label_names(workload_label_names), rows)
    return registry


def series_to_json(series: Sequence[Series], workload_label_names: tuple[str, ...]) -> list[dict[str, Any]]:
    def entry(spec: MetricSpec, rows: Sequence[tuple[Sequence[str], float]]) -> dict[str, Any]:
        return {"name": spec.name, "type": spec.type, "help": spec.help,
                "labels": list(spec.label_names(workload_label_names)),
                "rows": [[list(values), value] for values, value in rows]}

    return [entry(spec, rows) for spec, rows in series]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    with open(args[0], encoding="utf-8") as handle:
        document = json.load(handle)
    registry = CollectorRegistry()
    for metric in document:
        _add(registry, metric["name"], metric["type"], metric["help"], metric["labels"],
             [(values, float(value)) for values, value in metric["rows"]])
    start_http_server(int(args[1]), addr="127.0.0.1", registry=registry)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(main())
