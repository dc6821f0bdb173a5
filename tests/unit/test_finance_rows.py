"""The finance row model, the day query and the day files: sums kept, a day replaced whole."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.errors import UserInputError
from gpucost.finance import files
from gpucost.finance.reader import SETTLE, SOURCES, check_closed, check_resources, day_query, latest_closed_day
from gpucost.finance.rows import COLUMNS, COST_LABELS, CostRow, DayKey, cost_by_team, rows_from_samples
from gpucost_testing.servers import REPO_ROOT

pq = pytest.importorskip("pyarrow.parquet")
pacsv = pytest.importorskip("pyarrow.csv")

DAY = dt.date(2024, 2, 29)
label_values = st.sampled_from(["", "research", "search", "llama-70b", "a/b", 'quo"te', "ünï"])
labels = st.fixed_dictionaries({name: label_values for name in COST_LABELS}, optional={"pod": label_values})
costs = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
samples = st.lists(st.tuples(labels, costs), max_size=30)


@given(samples)
def test_rows_keep_the_total_and_every_teams_total(given_samples: list[tuple[dict[str, str], float]]) -> None:
    rows = rows_from_samples(DAY, "gpu", given_samples)
    assert math.isclose(sum(r.cost_usd for r in rows), sum(c for _, c in given_samples), rel_tol=1e-12, abs_tol=1e-9)
    for team in {sample_labels["team"] for sample_labels, _ in given_samples}:
        expected = sum(c for sample_labels, c in given_samples if sample_labels["team"] == team)
        got = sum(r.cost_usd for r in rows if r.key.team == team)
        assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-9)
        # What the reconciler's estimate adds up: the same rows, per team.
        assert math.isclose(cost_by_team(rows).get(team, 0.0), expected, rel_tol=1e-12, abs_tol=1e-9)


@given(samples)
def test_one_row_per_key_and_no_row_without_cost(given_samples: list[tuple[dict[str, str], float]]) -> None:
    rows = rows_from_samples(DAY, "gpu", given_samples)
    keys = [row.key for row in rows]
    assert len(keys) == len(set(keys))
    assert keys == sorted(keys)
    assert all(row.cost_usd > 0 for row in rows)


def test_series_that_differ_only_in_other_labels_add_up_to_one_row() -> None:
    workload = {"namespace": "research", "team": "research", "model": "llama-70b"}
    rows = rows_from_samples(DAY, "gpu", [({**workload, "component": "active"}, 30.0),
                                          ({**workload, "component": "idle"}, 12.5),
                                          ({**workload, "model": "other"}, float("nan"))])
    assert [(row.key.model, row.cost_usd) for row in rows] == [("llama-70b", 42.5)]


def test_a_record_has_every_column_in_order_with_focus_values() -> None:
    key = DayKey("gpu", namespace="search", team="search", model="ranker", business_unit="ads")
    record = CostRow(DAY, key, 12.25).record()
    assert list(record) == [column.name for column in COLUMNS]
    assert record["ChargePeriodStart"] == dt.datetime(2024, 2, 29, tzinfo=dt.UTC)
    assert record["ChargePeriodEnd"] == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert record["BillingPeriodStart"] == dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    assert record["BillingPeriodEnd"] == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert (record["BilledCost"], record["EffectiveCost"], record["BillingCurrency"]) == (12.25, 12.25, "USD")
    assert (record["ChargeCategory"], record["ServiceName"], record["ResourceType"]) == ("Usage", "gpucost", "GPU")
    assert json.loads(str(record["Tags"])) == {"namespace": "search", "team": "search", "model": "ranker",
                                               "business_unit": "ads"}
    assert (record["x_Team"], record["x_Model"], record["x_Resource"], record["x_CostCenter"]) == \
        ("search", "ranker", "gpu", "")


def test_the_day_query_reads_the_days_own_minute_marks_at_its_end() -> None:
    query = day_query(SOURCES["gpu"], DAY)
    end = int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp())
    assert f"[86399s:60s] @ {end})" in query
    assert query.startswith("sum by (namespace, team, model, model_version, business_unit, cost_center) (")
    assert "namespace_workload:gpucost_cost_usd_per_hour:rate5m" in query
    assert query.endswith("* 60 / 3600")


def test_cpu_memory_and_storage_read_the_per_resource_rate_with_a_resource_matcher() -> None:
    assert [source.resource for source in SOURCES.values()] == ["gpu", "cpu", "memory", "storage"]
    query = day_query(SOURCES["memory"], DAY)
    assert 'sum_over_time(namespace_workload_resource:gpucost_cost_usd_per_hour:rate5m{resource="memory"}[86399s' \
        in query
    assert "{" not in day_query(SOURCES["gpu"], DAY), "the GPU rate is its own series, read whole"


def test_a_day_is_closed_only_once_it_has_settled() -> None:
    end = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert check_closed(DAY, end + SETTLE) == DAY
    for now in (end - dt.timedelta(hours=1), end + SETTLE - dt.timedelta(seconds=1)):
        with pytest.raises(UserInputError, match=r"--day: is not a closed UTC day yet .*\(got '2024-02-29'\)"):
            check_closed(DAY, now)


def test_the_latest_closed_day_is_the_one_check_closed_accepts() -> None:
    end = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert latest_closed_day(end + SETTLE) == DAY
    assert latest_closed_day(end + SETTLE - dt.timedelta(seconds=1)) == DAY - dt.timedelta(days=1)
    assert latest_closed_day(end + dt.timedelta(hours=23)) == DAY


def test_an_unknown_resource_is_named() -> None:
    assert [s.resource for s in check_resources(["gpu", "gpu"])] == ["gpu"]
    with pytest.raises(UserInputError,
                       match=r"--resource: is not a resource gpucost records \(known: gpu, cpu, memory, storage\)"):
        check_resources(["gpu", "tpu"])


def _rows(costs_by_team: dict[str, float]) -> list[CostRow]:
    return rows_from_samples(DAY, "gpu", [({"team": team, "model": "m"}, c) for team, c in costs_by_team.items()])


cost_tables = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.floats(0.01, 1e5), max_size=4)


@settings(max_examples=25, deadline=None)
@given(first=cost_tables, second=cost_tables, file_format=st.sampled_from(["parquet", "csv"]))
def test_a_day_written_twice_holds_only_the_second_rows(
    first: dict[str, float], second: dict[str, float], file_format: files.FileFormat
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        files.write_day_file(out, DAY, _rows(first), file_format)
        written = files.write_day_file(out, DAY, _rows(second), file_format)
        assert sorted(p.name for p in out.iterdir()) == [f"gpucost-cost-2024-02-29.{file_format}"]
        table = pq.read_table(written) if file_format == "parquet" else pacsv.read_csv(written)
        assert sorted(zip(table.column("x_Team").to_pylist(), table.column("BilledCost").to_pylist(),
                          strict=True)) == sorted(second.items())


def test_a_failed_write_leaves_the_old_day_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = files.write_day_file(tmp_path, DAY, _rows({"a": 1.0}), "parquet").read_bytes()

    def half_written(table: object, stream: object, file_format: str) -> None:
        assert hasattr(stream, "write")
        stream.write(b"PAR1 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "_write", half_written)
    with pytest.raises(UserInputError, match=r"--out: cannot be written \(No space left on device\)"):
        files.write_day_file(tmp_path, DAY, _rows({"a": 2.0}), "parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["gpucost-cost-2024-02-29.parquet"]
    assert (tmp_path / "gpucost-cost-2024-02-29.parquet").read_bytes() == old


def test_the_parquet_schema_is_the_column_table(tmp_path: Path) -> None:
    written = files.write_day_file(tmp_path, DAY, _rows({"a": 1.0}), "parquet")
    schema = pq.read_schema(written)
    assert schema.names == [column.name for column in COLUMNS]
    assert str(schema.field("ChargePeriodStart").type) == "timestamp[us, tz=UTC]"


def test_docs_finance_lists_every_column_in_order() -> None:
    text = (REPO_ROOT / "docs/finance.md").read_text()
    documented = re.findall(r"^\| `(\w+)` \| (STRING|FLOAT64|TIMESTAMP) \|", text, flags=re.MULTILINE)
    kinds = {"string": "STRING", "float": "FLOAT64", "timestamp": "TIMESTAMP"}
    assert documented == [(column.name, kinds[column.kind]) for column in COLUMNS]
