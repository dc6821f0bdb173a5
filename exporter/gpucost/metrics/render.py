"""Render a snapshot to the Prometheus text format (0.0.4) or OpenMetrics 1.0.0, fast.

A scrape serves bytes rendered at most once per snapshot and format.
Rendering reuses the escaped label string of every series it has seen before,
so the cost per sample is one dictionary lookup and one float format: well
under the stock `generate_latest` over the same series (see `make bench`).  No
`_created` series are emitted.

The format follows the scraper's Accept header as prometheus_client's
`choose_encoder` does: OpenMetrics when it asks for
`application/openmetrics-text` (version 1.0.0 or unversioned), else text.
OpenMetrics differs in the metadata only: a counter's family is named without
`_total`, a `# UNIT` line names the unit the metric name ends with, HELP
escapes quotes, and the document ends with `# EOF`.
"""

from __future__ import annotations

import enum
import math
import threading

from gpucost.metrics.names import MetricSpec
from gpucost.metrics.series import snapshot_series
from gpucost.snapshot import ExporterSnapshot

__all__ = [
    "CONTENT_TYPE",
    "OPENMETRICS_EOF",
    "ExpositionFormat",
    "SnapshotRenderer",
    "choose_format",
    "escape_label_value",
    "format_value",
    "unit_of",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_EOF = b"# EOF\n"

# Base units as the naming convention puts them at the end of a name (before a counter's `_total`);
# longest first, so `_usd_per_hour` is not read as `_hour`.
_UNIT_SUFFIXES = ("usd_per_hour", "seconds", "joules", "bytes", "watts", "ratio", "usd")


class ExpositionFormat(enum.Enum):
    TEXT = "text/plain; version=0.0.4; charset=utf-8"
    OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    @property
    def content_type(self) -> str:
        return self.value


def choose_format(accept: str | None) -> ExpositionFormat:
    """The format a scraper with this Accept header gets (prometheus_client's `choose_encoder` rules)."""
    for media_range in (accept or "").split(","):
        media_type, *parameters = (part.strip() for part in media_range.split(";"))
        if media_type != "application/openmetrics-text":
            continue
        version = next((p.partition("=")[2] for p in parameters if p.partition("=")[0].strip() == "version"), "")
        if not version or _version_tuple(version) >= (1, 0, 0):
            return ExpositionFormat.OPENMETRICS
    return ExpositionFormat.TEXT


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.strip().split("."))
    except ValueError:
        return (0,)


def unit_of(family: str) -> str:
    """The OpenMetrics unit a family name ends with (`gpucost_gpu_energy_joules` -> `joules`), or ""."""
    for unit in _UNIT_SUFFIXES:
        if family.endswith("_" + unit):
            return unit
    return ""


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _openmetrics_header(spec: MetricSpec) -> str:
    kind: str = "gauge" if spec.type == "info" else spec.type
    family = spec.name
    if kind == "counter":
        if spec.name.endswith("_total"):
            family = spec.name.removesuffix("_total")
        else:
            kind = "unknown"  # OpenMetrics counter samples must end in _total; never claim what is not
    help_text = _escape_help(spec.help).replace('"', '\\"')
    header = f"# HELP {family} {help_text}\n# TYPE {family} {kind}\n"
    unit = unit_of(family)
    return header + (f"# UNIT {family} {unit}\n" if unit else "")


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
    """Renders snapshots; caches per-series label strings and the last output of each format."""

    def __init__(self) -> None:
        self._label_cache: dict[tuple[str, tuple[str, ...]], str] = {}
        self._headers: dict[tuple[ExpositionFormat, str], str] = {}
        self._lock = threading.Lock()
        # Per format: (snapshot version, bytes).  One cache each, so a Prometheus asking for
        # OpenMetrics and a curl asking for text do not re-render for each other.
        self._rendered: dict[ExpositionFormat, tuple[int, bytes]] = {}

    def render(self, snapshot: ExporterSnapshot, fmt: ExpositionFormat = ExpositionFormat.TEXT) -> bytes:
        """The whole exposition of this snapshot in `fmt`; rendered once per snapshot version and format.

        OpenMetrics output ends with `# EOF`; a server appending other families (process metrics)
        puts them before it (see `OPENMETRICS_EOF`).
        """
        with self._lock:
            cached = self._rendered.get(fmt)
            if cached is None or cached[0] != snapshot.version:
                text = self._render(snapshot, fmt)
                if fmt is ExpositionFormat.OPENMETRICS:
                    text += OPENMETRICS_EOF.decode()
                cached = (snapshot.version, text.encode("utf-8"))
                self._rendered[fmt] = cached
            return cached[1]

    def _header(self, spec: MetricSpec, fmt: ExpositionFormat) -> str:
        key = (fmt, spec.name)
        header = self._headers.get(key)
        if header is None:
            if fmt is ExpositionFormat.OPENMETRICS:
                header = _openmetrics_header(spec)
            else:
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

    def _render(self, snapshot: ExporterSnapshot, fmt: ExpositionFormat) -> str:
        workload = snapshot.workload_label_names
        parts: list[str] = []
        live_keys: set[tuple[str, tuple[str, ...]]] = set()
        for spec, rows in snapshot_series(snapshot):
            label_names = spec.label_names(workload)
            parts.append(self._header(spec, fmt))
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
