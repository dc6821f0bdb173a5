"""`gpucost export` against a real Prometheus holding two closed days of the recorded GPU cost series.

The recorded series `namespace_workload:gpucost_cost_usd_per_hour:rate5m` is backfilled
(`finance_days`: one sample a minute, 17 s after each minute mark as a rule group would record it)
for two closed UTC days and an hour either side; Parquet, CSV and BigQuery (a local REST
server speaking the jobs API, `gpucost_testing.fake_bigquery`) must agree with the cost the
samples describe and with `sum by (team, model)` of the recorded series within 0.1 %, a day
exported twice leaves one copy, and every bad input is one line, exit 2, no partial day.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpucost.cli.admin import main as gpucost_main
from gpucost.contract import recorded
from gpucost.finance.rows import COLUMNS
from gpucost_testing.fake_bigquery import FakeBigQuery
from gpucost_testing.servers import http_get_json
from tests.integration.finance_days import RecordedRate, backfilled_prometheus, day_start, expected_cost

pq = pytest.importorskip("pyarrow.parquet")
pacsv = pytest.importorskip("pyarrow.csv")

pytestmark = pytest.mark.integration

SERIES = recorded.name("namespace_workload_cost_rate")
TODAY = dt.datetime.now(dt.UTC).date()
DAYS = (TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=2))
TABLE = "gpucost-test.finance.gpucost_cost"


def _varying(base: float) -> Callable[[int], float]:
    """$/h that varies through the day, so a shifted or missed minute would show."""
    return lambda minute: base * (1.0 + 0.5 * math.sin(minute / 97.0))


RATES = [  # the last one starts at 13:00 of the first day
    RecordedRate(SERIES, {"namespace": "research", "team": "research", "model": "llama-70b", "component": "active",
                          "cost_center": "cc-1"}, _varying(96.0)),
    RecordedRate(SERIES, {"namespace": "research", "team": "research", "model": "llama-70b", "component": "idle",
                          "cost_center": "cc-1"}, _varying(7.5)),
    RecordedRate(SERIES, {"namespace": "search", "team": "search", "model": "ranker", "component": "active",
                          "business_unit": "ads", "model_version": "v3"}, _varying(12.0)),
    RecordedRate(SERIES, {"namespace": "assistants", "team": "assistants", "model": "chat-small",
                          "component": "active"}, _varying(4.25), starts_at=day_start(DAYS[0]) + 13 * 3600),
    RecordedRate(SERIES, {"namespace": "default", "component": "idle"}, _varying(1.5)),
]


def _expected(day: dt.date) -> dict[tuple[str, str], float]:
    """The day's cost by (team, model), from the samples themselves."""
    return expected_cost(RATES, DAYS[0], DAYS[1], day, lambda rate: (rate.labels.get("team", ""),
                                                                     rate.labels.get("model", "")))


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with backfilled_prometheus(tmp_path_factory.mktemp("finance-prom"), RATES, DAYS[0], DAYS[1]) as url:
        yield url


@pytest.fixture(scope="module")
def prometheus_sums(prometheus_url: str) -> dict[dt.date, dict[tuple[str, str], float]]:
    """`sum by (team, model)` of the recorded series' samples in each day, as Prometheus computes it."""
    sums: dict[dt.date, dict[tuple[str, str], float]] = {}
    for day in DAYS:
        end = day_start(day) + 86400
        query = f"sum by (team, model) (sum_over_time({SERIES}[1d])) / 60"
        answer = http_get_json(f"{prometheus_url}/api/v1/query", {"query": query, "time": str(end)})
        sums[day] = {(r["metric"].get("team", ""), r["metric"].get("model", "")): float(r["value"][1])
                     for r in answer["data"]["result"]}
    return sums


def _export(prometheus_url: str, *args: str) -> int:
    return gpucost_main(["export", f"--prometheus.url={prometheus_url}", *args])


def _by_team_model(teams: list[str], models: list[str], costs: list[float]) -> dict[tuple[str, str], float]:
    totals: dict[tuple[str, str], float] = {}
    for team, model, cost in zip(teams, models, costs, strict=True):
        totals[(team or "", model or "")] = totals.get((team or "", model or ""), 0.0) + cost
    return totals


def _assert_agree(
    got: dict[tuple[str, str], float], want: dict[tuple[str, str], float], rel: float = 1e-3
) -> None:
    """Within 0.1 % (the acceptance bound) by default."""
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=rel), key


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_day_files_agree_with_the_recorded_series_and_a_second_export_replaces_the_day(
    prometheus_url: str, prometheus_sums: dict[dt.date, dict[tuple[str, str], float]], tmp_path: Path,
    file_format: str, capsys: pytest.CaptureFixture[str],
) -> None:
    for _ in range(2):
        assert _export(prometheus_url, f"--from={DAYS[0]}", f"--to={DAYS[1]}", f"--format={file_format}",
                       f"--out={tmp_path}") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"gpucost-cost-{day}.{file_format}" for day in DAYS]
    assert capsys.readouterr().out.count(" rows, $") == 4
    for day in DAYS:
        path = tmp_path / f"gpucost-cost-{day}.{file_format}"
        table = pq.read_table(path) if file_format == "parquet" else pacsv.read_csv(path)
        assert table.column_names == [column.name for column in COLUMNS]
        got = _by_team_model(table.column("x_Team").to_pylist(), table.column("x_Model").to_pylist(),
                             table.column("BilledCost").to_pylist())
        _assert_agree(got, _expected(day), rel=1e-9)
        _assert_agree(got, prometheus_sums[day])
        assert len(table) == 4  # the two llama-70b components are one row; one row per other workload


def test_rows_carry_the_workload_labels_as_tags_and_columns(prometheus_url: str, tmp_path: Path) -> None:
    assert _export(prometheus_url, f"--day={DAYS[1]}", f"--out={tmp_path}") == 0
    rows = pq.read_table(tmp_path / f"gpucost-cost-{DAYS[1]}.parquet").to_pylist()
    search = next(row for row in rows if row["x_Team"] == "search")
    assert json.loads(search["Tags"]) == {"business_unit": "ads", "model": "ranker", "model_version": "v3",
                                          "namespace": "search", "team": "search"}
    assert (search["x_BusinessUnit"], search["x_ModelVersion"], search["x_Resource"]) == ("ads", "v3", "gpu")
    assert search["ChargePeriodStart"] == dt.datetime.combine(DAYS[1], dt.time(0), tzinfo=dt.UTC)
    assert search["ResourceId"] == "gpu/search/search/ranker"


def test_bigquery_gets_one_partition_per_day_by_load_job_and_agrees_with_the_recorded_series(
    prometheus_url: str, prometheus_sums: dict[dt.date, dict[tuple[str, str], float]],
) -> None:
    with FakeBigQuery() as fake:
        for _ in range(2):
            assert _export(prometheus_url, f"--from={DAYS[0]}", f"--to={DAYS[1]}", "--format=bigquery",
                           f"--bigquery.table={TABLE}", f"--bigquery.endpoint={fake.url}") == 0
        for day in DAYS:
            rows = fake.partition(TABLE, day)
            got = _by_team_model([r["x_Team"] for r in rows], [r["x_Model"] for r in rows],
                                 [r["BilledCost"] for r in rows])
            _assert_agree(got, _expected(day), rel=1e-9)
            _assert_agree(got, prometheus_sums[day])
        assert sorted(fake.tables[TABLE].partitions) == [f"{day:%Y%m%d}" for day in DAYS]

        created = [r.json() for r in fake.requests_to("POST", r"/datasets/finance/tables$")]
        assert len(created) == 1, "the table is created once, then found"
        assert created[0]["timePartitioning"] == {"type": "DAY", "field": "ChargePeriodStart"}
        assert created[0]["clustering"] == {"fields": ["x_Team", "x_Model"]}
        assert [(f["name"], f["mode"]) for f in created[0]["schema"]["fields"]] == \
            [(column.name, "REQUIRED") for column in COLUMNS]

        assert len(fake.loads) == 4
        for (job, data), day in zip(fake.loads, [*DAYS, *DAYS], strict=True):
            load = job["configuration"]["load"]
            assert load["destinationTable"] == {"projectId": "gpucost-test", "datasetId": "finance",
                                                "tableId": f"gpucost_cost${day:%Y%m%d}"}
            assert load["writeDisposition"] == "WRITE_TRUNCATE"
            assert load["createDisposition"] == "CREATE_NEVER"
            assert load["sourceFormat"] == "NEWLINE_DELIMITED_JSON"
            assert load["timePartitioning"] == {"type": "DAY", "field": "ChargePeriodStart"}
            assert load["clustering"] == {"fields": ["x_Team", "x_Model"]}
            assert [f["name"] for f in load["schema"]["fields"]] == [column.name for column in COLUMNS]
            uploaded = [json.loads(line) for line in data.decode().splitlines()]
            assert {row["ChargePeriodStart"] for row in uploaded} == {f"{day}T00:00:00+00:00"}
        assert not fake.requests_to("POST", r"/insertAll$"), "no streaming inserts"


def _one_line_exit_2(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_a_day_not_closed_is_refused_and_writes_nothing(
    prometheus_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_line_exit_2(capsys, _export(prometheus_url, f"--day={TODAY}", f"--out={tmp_path}"))
    tomorrow = TODAY + dt.timedelta(days=1)
    assert line.startswith(f"gpucost export: --day: is not a closed UTC day yet (it can be exported from {tomorrow}")
    code = _export(prometheus_url, f"--from={DAYS[0]}", f"--to={TODAY}", f"--out={tmp_path}")
    line = _one_line_exit_2(capsys, code)
    assert line.startswith("gpucost export: --to: is not a closed UTC day yet")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_resource_is_refused(
    prometheus_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _export(prometheus_url, f"--day={DAYS[0]}", "--resource=tpu", f"--out={tmp_path}")
    line = _one_line_exit_2(capsys, code)
    assert line == ("gpucost export: --resource: is not a resource gpucost records (known: gpu, cpu, memory, "
                    "storage) (got 'tpu')")
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_prometheus_leaves_the_days_file_as_it_was(
    prometheus_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _export(prometheus_url, f"--day={DAYS[0]}", f"--out={tmp_path}") == 0
    before = (tmp_path / f"gpucost-cost-{DAYS[0]}.parquet").read_bytes()
    capsys.readouterr()
    line = _one_line_exit_2(capsys, _export("http://127.0.0.1:9", f"--day={DAYS[0]}", f"--out={tmp_path}"))
    assert line.startswith("gpucost export: --prometheus.url http://127.0.0.1:9: the day was not read (unavailable")
    assert [p.name for p in tmp_path.iterdir()] == [f"gpucost-cost-{DAYS[0]}.parquet"]
    assert (tmp_path / f"gpucost-cost-{DAYS[0]}.parquet").read_bytes() == before


def test_an_output_that_is_not_a_directory_is_named(
    prometheus_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_line_exit_2(capsys, _export(prometheus_url, f"--day={DAYS[0]}", f"--out={tmp_path / 'missing'}"))
    assert line == f"gpucost export: --out: is not a directory (got '{tmp_path / 'missing'}')"


def test_a_directory_that_cannot_be_written_is_named(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # /proc refuses new files to every user, root included (a chmod would not stop root).
    line = _one_line_exit_2(capsys, _export(prometheus_url, f"--day={DAYS[0]}", "--out=/proc"))
    assert line.startswith("gpucost export: --out: cannot be written ("), line
    assert line.endswith("(got '/proc')"), line


def test_a_day_file_that_cannot_be_replaced_leaves_no_partial_file(
    prometheus_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The rename over the day's file fails (a directory holds its name): the written temporary file must go too.
    blocker = tmp_path / f"gpucost-cost-{DAYS[0]}.parquet"
    blocker.mkdir()
    (blocker / "kept").write_text("as it was")
    line = _one_line_exit_2(capsys, _export(prometheus_url, f"--day={DAYS[0]}", f"--out={tmp_path}"))
    assert line.startswith("gpucost export: --out: cannot be written ("), line
    assert [p.name for p in tmp_path.iterdir()] == [blocker.name]
    assert [p.name for p in blocker.iterdir()] == ["kept"]


def test_an_unreachable_bigquery_is_one_line(prometheus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = _export(prometheus_url, f"--day={DAYS[0]}", "--format=bigquery", f"--bigquery.table={TABLE}",
                   "--bigquery.endpoint=http://127.0.0.1:9", "--bigquery.timeout-seconds=2")
    line = _one_line_exit_2(capsys, code)
    assert line.startswith("gpucost export: --bigquery.endpoint http://127.0.0.1:9: the day was not loaded (")


def test_a_failed_load_job_leaves_the_partition_as_it_was(
    prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = (f"--day={DAYS[0]}", "--format=bigquery", f"--bigquery.table={TABLE}")
    with FakeBigQuery() as fake:
        assert _export(prometheus_url, *args, f"--bigquery.endpoint={fake.url}") == 0
        before = fake.partition(TABLE, DAYS[0])
        capsys.readouterr()
        fake.fail_next_load("quotaExceeded")
        line = _one_line_exit_2(capsys, _export(prometheus_url, *args, f"--bigquery.endpoint={fake.url}"))
        assert line.startswith(f"gpucost export: --bigquery.endpoint {fake.url}: the day was not loaded ("), line
        assert "injected failure: quotaExceeded" in line, line
        assert fake.partition(TABLE, DAYS[0]) == before
        assert len(fake.loads) == 2


def test_export_without_the_finance_extra_names_it(
    prometheus_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpucost import extras

    monkeypatch.setitem(extras.EXTRAS, "finance", ("pyarrow", "gpucost_no_such_module"))
    line = _one_line_exit_2(capsys, _export(prometheus_url, f"--day={DAYS[0]}"))
    assert line.endswith("needs the 'finance' extra (missing: gpucost_no_such_module): pip install 'gpucost[finance]'")


def test_a_day_too_large_for_a_multipart_upload_goes_by_resumable_upload(
    prometheus_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud.bigquery import client as bigquery_client

    monkeypatch.setattr(bigquery_client, "_MAX_MULTIPART_SIZE", 1)
    with FakeBigQuery() as fake:
        assert _export(prometheus_url, f"--day={DAYS[0]}", "--format=bigquery", f"--bigquery.table={TABLE}",
                       f"--bigquery.endpoint={fake.url}") == 0
        assert [r.query.get("uploadType") for r in fake.requests_to("POST", "^/upload/")] == ["resumable"]
        assert len(fake.requests_to("PUT", "^/upload/")) == 1
        job, _ = fake.loads[0]
        assert job["configuration"]["load"]["writeDisposition"] == "WRITE_TRUNCATE"
        assert len(fake.partition(TABLE, DAYS[0])) == 4
