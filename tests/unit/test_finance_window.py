"""Part of a UTC day read like a whole one: `read_window` shares the day's query, minute marks (start, end]."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pytest

from gpucost.finance.reader import SOURCES, day_query, read_window, sources_at, window_query

MIDNIGHT = dt.datetime(2024, 2, 29, tzinfo=dt.UTC)
COST_LABELS = {"namespace": "research", "team": "research", "model": "llama-70b"}


class RecordingClient:
    """Answers every query with one sample and keeps the queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query(self, expr: str) -> list[tuple[Mapping[str, str], float]]:
        self.queries.append(expr)
        return [(COST_LABELS, 1.5)]


def test_a_whole_day_window_is_the_day_query() -> None:
    for source in SOURCES.values():
        assert window_query(source, MIDNIGHT, MIDNIGHT + dt.timedelta(days=1)) == day_query(source, MIDNIGHT.date())


def test_a_window_reads_its_own_minute_marks_at_its_end() -> None:
    end = MIDNIGHT + dt.timedelta(hours=10, minutes=7)
    query = window_query(SOURCES["cpu"], MIDNIGHT, end)
    # 607 minutes: the marks 00:01 ... 10:07, the range one second short of the window.
    assert f'{{resource="cpu"}}[36419s:60s] @ {int(end.timestamp())})' in query


def test_read_window_gives_rows_of_the_windows_day_for_each_resource() -> None:
    client = RecordingClient()
    end = MIDNIGHT + dt.timedelta(minutes=3)
    rows = read_window(client, MIDNIGHT, end, list(SOURCES.values()))  # type: ignore[arg-type]
    assert client.queries == [window_query(source, MIDNIGHT, end) for source in SOURCES.values()]
    assert [(row.day, row.key.resource, row.key.team, row.cost_usd) for row in rows] == [
        (MIDNIGHT.date(), resource, "research", 1.5) for resource in SOURCES
    ]


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (MIDNIGHT, MIDNIGHT, "not within one UTC day"),
        (MIDNIGHT + dt.timedelta(hours=1), MIDNIGHT, "not within one UTC day"),
        (MIDNIGHT, MIDNIGHT + dt.timedelta(days=1, minutes=1), "not within one UTC day"),
        (MIDNIGHT, MIDNIGHT + dt.timedelta(minutes=1, seconds=30), "not on whole minutes"),
        (MIDNIGHT + dt.timedelta(seconds=1), MIDNIGHT + dt.timedelta(minutes=2), "not on whole minutes"),
    ],
)
def test_read_window_refuses_a_window_that_is_not_whole_minutes_of_one_day(
    start: dt.datetime, end: dt.datetime, problem: str
) -> None:
    client = RecordingClient()
    with pytest.raises(ValueError, match=problem):
        read_window(client, start, end, list(SOURCES.values()))  # type: ignore[arg-type]
    assert client.queries == []


def test_sources_follow_the_rules_rate_window() -> None:
    demo = sources_at("30s")
    assert demo["gpu"].selector() == "namespace_workload:gpucost_cost_usd_per_hour:rate30s"
    memory = demo["memory"].selector()
    assert memory == 'namespace_workload_resource:gpucost_cost_usd_per_hour:rate30s{resource="memory"}'
    assert sources_at("5m") == SOURCES
