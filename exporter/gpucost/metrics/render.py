"""Render a snapshot to the Prometheus text format (0.0.4), fast.

A scrape serves bytes rendered at most once per snapshot.  Rendering reuses
the escaped label string of every series it has seen before, so the cost per
sample is one dictionary lookup and one float format: well under the stock
`generate_latest` over the same series (see `make bench`).  No `_created`
series are emitted.
"""

from __future__ import annotations

import math
import threading

from gpucost.metrics.names import MetricSpec
from gpucost.metrics.series import snapshot_series
from gpucost.snapshot import ExporterSnapshot

__all__ = ["CONTENT_TYPE", "SnapshotRenderer", "escape_label_value", "format_value"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    value = float(value)  # ints arrive from some sources; Python 3.11 ints lack is_integer()
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    return repr(value)


class SnapshotRenderer:
    """Renders snapshots; caches per-series label strings and the last output."""

    def __init__(self) -> None:
        self._label_cache: dict[tuple[str, tuple[str, ...]], str] = {}
        self._headers: dict[tuple[str, tuple[str, ...]], str] = {}
        self._lock = threading.Lock()
        self._rendered_version = -1
        self._rendered = b""

    def render(self, snapshot: ExporterSnapshot) -> bytes:
        """Bytes for this snapshot; rendered once per snapshot version."""
        with self._lock:
            if snapshot.version != self._rendered_version:
                self._rendered = self._render(snapshot).encode("utf-8")
                self._rendered_version = snapshot.version
            return self._rendered

    def _header(self, spec: MetricSpec, label_names: tuple[str, ...]) -> str:
        key = (spec.name, label_names)
        header = self._headers.get(key)
        if header is None:
            kind = "gauge" if spec.type == "info" else spec.type
            header = f"# HELP {spec.name} {_escape_help(spec.help)}\n# TYPE {spec.name} {kind}\n"
            self._headers[key] = header
        return header

    def _series_prefix(self, name: str, label_names: tuple[str, ...], values: tuple[str, ...]) -> str:
        key = (name, values)
        prefix = self._label_cache.get(key)
        if prefix is None:
            if values:
                pairs = ",".join(
                    f'{label}="{escape_label_value(value)}"'
                    for label, value in zip(label_names, values, strict=True)
                )
                prefix = f"{name}{{{pairs}}} "
            else:
                prefix = f"{name} "
            self._label_cache[key] = prefix
        return prefix

    def _render(self, snapshot: ExporterSnapshot) -> str:
        workload = snapshot.workload_label_names
        parts: list[str] = []
        live_keys: set[tuple[str, tuple[str, ...]]] = set()
        for spec, rows in snapshot_series(snapshot):
            label_names = spec.label_names(workload)
            parts.append(self._header(spec, label_names))
            name = spec.name
            for values, value in rows:
                live_keys.add((name, values))
                parts.append(self._series_prefix(name, label_names, values))
                parts.append(format_value(value))
                parts.append("\n")
        if len(self._label_cache) > 2 * len(live_keys) + 1024:
            # Series of expired containers would otherwise stay cached forever.
            self._label_cache = {k: v for k, v in self._label_cache.items() if k in live_keys}
        return "".join(parts)
