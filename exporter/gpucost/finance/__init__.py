"""The finance export: closed UTC days of cost rows with FOCUS column names, to Parquet, CSV or BigQuery.

`rows` is the row model and schema (no I/O), `reader` maps Prometheus's recorded
series to rows, `files` and `bigquery` are the sinks (`sink` opens the one asked
for), `export` reads one day and replaces it in a sink, `cli` is `gpucost export`
and `job` the budget sidecar's daily export.  Only `rows` and `reader` import
nothing outside the core install; the sinks need the `finance` extra.
"""

from __future__ import annotations

__all__: list[str] = []
