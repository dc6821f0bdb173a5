"""`--finance-out DIR`: the demo's day as finance rows, written as Parquet when the demo stops.

The demo's data is today's, a UTC day still open, which `gpucost export` rightly
refuses.  The demo writes today's rows so far instead: the minute marks from UTC
midnight to the last complete minute, read with the product's own reader
(`gpucost.finance.reader.read_window`, the day query on a shorter range) from
the rules' series at the demo's rate window, and written with the product's
day file writer, so the file has exactly the columns `gpucost export` writes.
Its dollars are the demo's compressed ones (the node runs `speed` x faster).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from gpucost.errors import UserInputError
from gpucost.extras import MissingExtra
from gpucost.finance.files import write_day_file
from gpucost.finance.reader import read_window, sources_at
from gpucost.finance.rows import day_bounds
from gpucost.promapi import PrometheusClient

__all__ = ["FINANCE_FLAG", "PartialDay", "prepare_out_dir", "write_partial_day"]

FINANCE_FLAG = "--finance-out"


@dataclass(frozen=True, slots=True)
class PartialDay:
    start: dt.datetime
    end: dt.datetime
    rows: int
    cost_usd: float
    path: Path | None  # None: the day had no complete minute yet, nothing was written

    def summary(self) -> str:
        window = f"{self.start:%Y-%m-%d} {self.start:%H:%M}-{self.end:%H:%M} UTC"
        if self.path is None:
            return f"finance rows: partial day: {window} has no complete minute yet; nothing written"
        return (f"finance rows: partial day: {window} (today so far, to the last complete minute): "
                f"{self.rows} rows, ${self.cost_usd:,.2f} -> {self.path}")


def prepare_out_dir(out: Path) -> Path:
    """Checked before the demo starts, so a bad flag costs no startup: pyarrow importable, `out` a directory."""
    if importlib.util.find_spec("pyarrow") is None:
        raise MissingExtra(FINANCE_FLAG, "finance", ("pyarrow",))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(FINANCE_FLAG, "", str(out), f"cannot be created ({err.strerror or err})") from err
    return out


def write_partial_day(prometheus_url: str, rate_window: str, out: Path, now: dt.datetime) -> PartialDay:
    """Write today's rows so far to `out` (raises PrometheusApiError, UserInputError)."""
    end = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    start, _ = day_bounds(end.date())
    if end == start:  # just after midnight: the day has no minute mark of its own yet
        return PartialDay(start, end, 0, 0.0, None)
    client = PrometheusClient(prometheus_url, timeout_seconds=30)
    rows = read_window(client, start, end, list(sources_at(rate_window).values()))
    path = write_day_file(out, start.date(), rows, "parquet", flag=FINANCE_FLAG)
    return PartialDay(start, end, len(rows), sum(row.cost_usd for row in rows), path)
