"""Read a closed UTC day's cost per workload and resource from Prometheus's recorded series.

Method (docs/finance.md): each resource's cost comes from a recorded $/h series
that carries the workload labels, e.g. `namespace_workload:gpucost_cost_usd_per_hour:rate5m`
for GPUs.  The day's cost is that rate read at every minute mark of the day and
added up, $/h times 1/60 h per mark:

    sum by (namespace, team, ...) (sum_over_time(SERIES[86399s:1m] @ END)) / 60

* Exact day boundary: the subquery's steps sit on whole minutes, and the range
  `[86399s]` ending at the day's end holds the marks 00:01 ... 24:00 of that day,
  1,440 of them, under Prometheus 2's closed and 3's left-open ranges alike
  (`[1d]` would give Prometheus 2 the previous day's 24:00 mark too).  Each mark
  belongs to exactly one day, so consecutive days add up to the whole.
* Counter resets are handled where the rate is recorded: `rate()` counts a drop
  as a restart from zero.  A 5-minute average read every minute counts each
  minute's cost five times with weight 1/5, so the day's sum is the day's cost
  shifted by half the window (2.5 minutes) - the same for every day.
* Lookback: a mark reads the latest recorded sample up to 5 minutes old, so the
  rule group's interval may be anything up to 5 minutes; a series that stops
  being recorded goes stale and stops counting at once.
* The day is read only once closed and settled (`SETTLE` after midnight UTC): the
  rule evaluation for 24:00 must have happened.
* `read_window` reads part of a day the same way, the minute marks in
  (start, end]: the demo writes today's rows so far with it.

`SOURCES` maps each resource to its recorded series: GPUs to the GPU cost rate,
CPU, memory and storage (whole-node cost, docs/node-cost.md) to the per-resource
cost rate with a `resource` matcher.  That family repeats the GPU cost as
`resource="gpu"`; it is not read, so a GPU is never counted twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from gpucost.contract import recorded
from gpucost.errors import UserInputError
from gpucost.finance.rows import COST_LABELS, CostRow, day_bounds, rows_from_samples
from gpucost.model import NODE_RESOURCES
from gpucost.promapi import PrometheusClient

__all__ = [
    "SETTLE",
    "SOURCES",
    "ResourceSource",
    "check_closed",
    "check_resources",
    "day_query",
    "days_between",
    "latest_closed_day",
    "read_day",
    "read_window",
    "sources_at",
    "window_query",
]

SETTLE = dt.timedelta(minutes=10)
"""How long after midnight UTC a day counts as closed: the 5-minute lookback plus a rule evaluation."""
STEP_SECONDS = 60


@dataclass(frozen=True, slots=True)
class ResourceSource:
    """Where one resource's cost is recorded: a $/h series with the workload labels, and an optional matcher."""

    resource: str
    series: str
    matchers: str = ""
    """PromQL label matchers without braces, e.g. `resource="cpu"` for a family that holds several resources."""

    def selector(self) -> str:
        return f"{self.series}{{{self.matchers}}}" if self.matchers else self.series


GPU_RATE_KEY = "namespace_workload_cost_rate"
RESOURCE_RATE_KEY = "namespace_workload_resource_cost_rate"



def sources_at(rate_window: str) -> dict[str, ResourceSource]:
    """Each resource's recorded series under the rules' rate window (the committed rules: 5m)."""
    return {
        "gpu": ResourceSource("gpu", recorded.name(GPU_RATE_KEY, rate_window)),
        **{
            name: ResourceSource(name, recorded.name(RESOURCE_RATE_KEY, rate_window), f'resource="{name}"')
            for name in NODE_RESOURCES
        },
    }


SOURCES: dict[str, ResourceSource] = sources_at(recorded.DEFAULT_RATE_WINDOW)


def window_query(source: ResourceSource, start: dt.datetime, end: dt.datetime) -> str:
    """The PromQL that answers one resource's cost per workload for the minute marks in (start, end], in USD.

    The range is one second short of end - start, so the mark at `start` belongs to the window before.
    """
    seconds = int((end - start).total_seconds())
    labels = ", ".join(COST_LABELS)
    return (f"sum by ({labels}) (sum_over_time({source.selector()}[{seconds - 1}s:{STEP_SECONDS}s] "
            f"@ {int(end.timestamp())})) * {STEP_SECONDS} / 3600")


def day_query(source: ResourceSource, day: dt.date) -> str:
    """The PromQL that answers one resource's cost per workload for `day`, in USD."""
    return window_query(source, *day_bounds(day))


def check_resources(names: Sequence[str], flag: str = "--resource") -> tuple[ResourceSource, ...]:
    unknown = [name for name in names if name not in SOURCES]
    if unknown:
        raise UserInputError(flag, "", unknown[0], f"is not a resource gpucost records (known: {', '.join(SOURCES)})")
    return tuple(SOURCES[name] for name in dict.fromkeys(names))


def check_closed(day: dt.date, now: dt.datetime, flag: str = "--day") -> dt.date:
    """`day` if it ended at least `SETTLE` ago (UTC), else a one-line error naming the flag."""
    _, end = day_bounds(day)
    if now < end + SETTLE:
        raise UserInputError(
            flag, "", day.isoformat(),
            f"is not a closed UTC day yet (it can be exported from {(end + SETTLE).strftime('%Y-%m-%d %H:%M')} UTC)",
        )
    return day


def latest_closed_day(now: dt.datetime) -> dt.date:
    """The most recent UTC day that `check_closed` accepts at `now`."""
    return (now.astimezone(dt.UTC) - SETTLE).date() - dt.timedelta(days=1)


def read_day(
    client: PrometheusClient, day: dt.date, sources: Sequence[ResourceSource]
) -> list[CostRow]:
    """Every row of `day`, all resources; one query per resource (raises PrometheusApiError)."""
    return _read_rows(client, day, sources, *day_bounds(day))


def read_window(
    client: PrometheusClient, start: dt.datetime, end: dt.datetime, sources: Sequence[ResourceSource]
) -> list[CostRow]:
    """The rows of part of one UTC day, (start, end] on whole minutes; rows carry `start`'s day.

    For a day still open (the demo's today); a closed day is `read_day`.  Raises ValueError for a
    window that is empty, off the minute or crosses midnight, PrometheusApiError as `read_day`.
    """
    day = start.astimezone(dt.UTC).date()
    day_start, day_end = day_bounds(day)
    if not start < end <= day_end or start < day_start:
        raise ValueError(f"the window {start.isoformat()} .. {end.isoformat()} is not within one UTC day")
    if start.timestamp() % STEP_SECONDS or end.timestamp() % STEP_SECONDS:
        raise ValueError(f"the window {start.isoformat()} .. {end.isoformat()} is not on whole minutes")
    return _read_rows(client, day, sources, start, end)


def _read_rows(
    client: PrometheusClient, day: dt.date, sources: Sequence[ResourceSource], start: dt.datetime, end: dt.datetime
) -> list[CostRow]:
    rows: list[CostRow] = []
    for source in sources:
        rows.extend(rows_from_samples(day, source.resource, client.query(window_query(source, start, end))))
    return rows


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=offset) for offset in range((last - first).days + 1)]

