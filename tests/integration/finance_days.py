"""Closed days of recorded cost rates in a real Prometheus, for the finance export and the reconciler's tests.

Samples are backfilled with promtool, one a minute, 17 s after each minute mark as a rule
group would record them, from an hour before the first day to an hour after the last.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gpucost_testing.servers import require_binary, start_prometheus, write_prometheus_config

__all__ = ["RecordedRate", "backfilled_prometheus", "day_start", "expected_cost", "samples"]

RECORD_OFFSET_SECONDS = 17
K = TypeVar("K")


@dataclass(frozen=True)
class RecordedRate:
    """One series of a recorded $/h rate: its name, labels and $/h at each minute (counted from the first mark)."""

    series: str
    labels: dict[str, str]
    rate: Callable[[int], float]
    starts_at: int | None = None  # unix seconds of its first sample; None: from the first mark


def day_start(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC).timestamp())


def samples(rates: Iterable[RecordedRate], first: dt.date, last: dt.date) -> Iterator[tuple[RecordedRate, int, float]]:
    """(rate, unix seconds, $/h) for every minute from an hour before `first` to an hour after `last`."""
    first_mark = day_start(first) - 3600
    minutes = ((last - first).days + 1) * 24 * 60 + 2 * 60
    for rate in rates:
        for minute in range(minutes):
            mark = first_mark + 60 * minute
            if rate.starts_at is None or mark >= rate.starts_at:
                yield rate, mark + RECORD_OFFSET_SECONDS, rate.rate(minute)


def expected_cost(
    rates: Iterable[RecordedRate], first: dt.date, last: dt.date, day: dt.date, key: Callable[[RecordedRate], K]
) -> dict[K, float]:
    """The day's cost by `key`: every sample whose next minute mark falls in the day, times one minute."""
    start, end = day_start(day), day_start(day) + 86400
    totals: dict[K, float] = {}
    for rate, at, value in samples(rates, first, last):
        if start < at + 60 - RECORD_OFFSET_SECONDS <= end:
            totals[key(rate)] = totals.get(key(rate), 0.0) + value / 60
    return totals


def _openmetrics(rates: list[RecordedRate], first: dt.date, last: dt.date) -> str:
    """One family after the other (OpenMetrics does not let families interleave), each after its TYPE line."""
    lines: list[str] = []
    for series in dict.fromkeys(rate.series for rate in rates):
        lines.append(f"# TYPE {series} gauge")
        for rate, at, value in samples([rate for rate in rates if rate.series == series], first, last):
            rendered = ",".join(f'{name}="{v}"' for name, v in sorted(rate.labels.items()))
            lines.append(f"{series}{{{rendered}}} {value!r} {at}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@contextmanager
def backfilled_prometheus(workdir: Path, rates: list[RecordedRate], first: dt.date, last: dt.date) -> Iterator[str]:
    """A Prometheus holding `rates` over the days; yields its base URL."""
    source = workdir / "recorded.om"
    source.write_text(_openmetrics(rates, first, last))
    subprocess.run([require_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source),
                    str(workdir / "tsdb")], check=True, capture_output=True, timeout=300)
    with start_prometheus(workdir, write_prometheus_config(workdir / "prometheus.yml"), retention="30d") as prom:
        yield prom.base_url
