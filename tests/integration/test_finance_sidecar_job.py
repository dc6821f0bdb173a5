"""The budget sidecar's finance export job against a real Prometheus holding a closed day.

Built from `gpucost-budgets serve` flags as the sidecar builds it, run by the sidecar's own job
wrapper: each closed day is exported once, the same rows `gpucost export` writes, the last success is
published, and a failing sink marks only this job down and is retried by the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpucost.budgets.cli import build_parser
from gpucost.budgets.collector import build_registry
from gpucost.budgets.service import Job, _run_guarded, build_jobs
from gpucost.budgets.settings import SidecarConfig, config_from_args
from gpucost.budgets.state import SidecarState
from gpucost.cli.admin import main as gpucost_main
from gpucost.contract import recorded
from gpucost_testing.fake_bigquery import FakeBigQuery
from tests.integration.finance_days import RecordedRate, backfilled_prometheus

pq = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.integration

DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
# 00:30 UTC the day after DAY: DAY is closed, the day after it is not.
AFTER_DAY = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0, 30), tzinfo=dt.UTC)
TABLE = "gpucost-test.finance.gpucost_cost"
RATES = [
    RecordedRate(recorded.name("namespace_workload_cost_rate"),
                 {"namespace": "research", "team": "research", "model": "llama-70b"}, lambda minute: 96.0),
    RecordedRate(recorded.name("namespace_workload_resource_cost_rate"),
                 {"namespace": "research", "team": "research", "model": "llama-70b", "resource": "cpu"},
                 lambda minute: 3.0),
]


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with backfilled_prometheus(tmp_path_factory.mktemp("finance-job"), RATES, DAY, DAY) as url:
        yield url


def _export_job(state: SidecarState, *flags: str) -> Job:
    config = config_from_args(build_parser().parse_args(["serve", "--web.listen-address=127.0.0.1:0", *flags]))
    assert isinstance(config, SidecarConfig)
    jobs = [job for job in build_jobs(config, state) if job.name == "finance export"]
    assert [(job.provider, job.feature) for job in jobs] == [("finance", "export")]
    return jobs[0]


def _day_file(out: Path, day: dt.date) -> Path:
    return out / f"gpucost-cost-{day}.parquet"


def test_the_job_exports_each_closed_day_once_as_gpucost_export_does(
    prometheus_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job_out, cli_out = tmp_path / "job", tmp_path / "cli"
    job_out.mkdir()
    cli_out.mkdir()
    state = SidecarState()
    job = _export_job(state, f"--prometheus.url={prometheus_url}", "--export.format=parquet",
                      f"--export.out={job_out}")
    with caplog.at_level(logging.INFO, logger="gpucost.finance.job"):
        _run_guarded(job, state, AFTER_DAY)
    assert [p.name for p in job_out.iterdir()] == [_day_file(job_out, DAY).name]
    assert gpucost_main(["export", f"--prometheus.url={prometheus_url}", f"--day={DAY}", f"--out={cli_out}"]) == 0
    assert pq.read_table(_day_file(job_out, DAY)).equals(pq.read_table(_day_file(cli_out, DAY)))
    assert f"finance export {DAY}: 2 rows, $2,376.00 -> {_day_file(job_out, DAY)}" in caplog.messages

    snapshot = state.snapshot()
    assert snapshot.provider_up[("finance", "export")] is True
    assert snapshot.finance_export_last_success == AFTER_DAY.timestamp()
    families = {family.name: family for family in build_registry(state).collect()}
    exported = families["gpucost_finance_export_last_success_timestamp_seconds"]
    assert [(sample.labels, sample.value) for sample in exported.samples] == [({}, AFTER_DAY.timestamp())]

    _day_file(job_out, DAY).unlink()  # a second run the same day finds nothing new to export
    _run_guarded(job, state, AFTER_DAY + dt.timedelta(hours=3))
    assert list(job_out.iterdir()) == []
    _run_guarded(job, state, AFTER_DAY + dt.timedelta(days=1))  # the next day has closed
    assert [p.name for p in job_out.iterdir()] == [_day_file(job_out, DAY + dt.timedelta(days=1)).name]


def test_a_failing_directory_marks_the_job_down_and_the_next_run_catches_up(
    prometheus_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    state = SidecarState()
    job = _export_job(state, f"--prometheus.url={prometheus_url}", "--export.format=parquet", f"--export.out={out}",
                      "--export.interval=1m")
    out.rmdir()  # the volume went away after the sidecar started
    _run_guarded(job, state, AFTER_DAY)
    assert state.snapshot().provider_up[("finance", "export")] is False
    assert state.snapshot().finance_export_last_success is None
    assert f"finance export failed: --export.out: is not a directory (got '{out}')" in caplog.messages

    out.mkdir()  # back, a day later: the missed day and the one that closed since, in order
    later = AFTER_DAY + dt.timedelta(days=1)
    _run_guarded(job, state, later)
    assert sorted(p.name for p in out.iterdir()) == [_day_file(out, DAY + dt.timedelta(days=n)).name for n in (0, 1)]
    assert state.snapshot().provider_up[("finance", "export")] is True
    assert state.snapshot().finance_export_last_success == later.timestamp()


def test_a_failed_load_job_leaves_the_partition_and_the_next_run_loads_it(prometheus_url: str) -> None:
    with FakeBigQuery() as fake:
        state = SidecarState()
        job = _export_job(state, f"--prometheus.url={prometheus_url}", "--export.format=bigquery",
                          f"--export.bigquery-table={TABLE}", f"--export.bigquery-endpoint={fake.url}")
        fake.fail_next_load("quotaExceeded")
        _run_guarded(job, state, AFTER_DAY)
        assert state.snapshot().provider_up[("finance", "export")] is False
        assert fake.partition(TABLE, DAY) == []

        _run_guarded(job, state, AFTER_DAY + dt.timedelta(minutes=10))
        assert state.snapshot().provider_up[("finance", "export")] is True
        rows = fake.partition(TABLE, DAY)
        assert sorted((row["x_Resource"], row["BilledCost"]) for row in rows) == [("cpu", 72.0), ("gpu", 2304.0)]
