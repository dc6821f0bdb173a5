"""Daily reconciliation vs a real Prometheus with a backfilled recorded cost rate: AWS Cost Explorer (moto server,
injected results) and GCP's billing export in BigQuery (FakeGcp), through the Reconciler, the serve jobs and the CLI."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from gpucost.budgets.aws_cost_explorer import CostExplorerSource
from gpucost.budgets.cli import build_parser
from gpucost.budgets.gcp_billing_export import BillingExportSource, parse_export_table
from gpucost.budgets.prometheus_api import PrometheusEstimateSource
from gpucost.budgets.reconcile import Reconciler
from gpucost.budgets.service import _run_guarded, build_jobs
from gpucost.budgets.settings import SidecarConfig, config_from_args
from gpucost.budgets.state import SidecarState
from gpucost.contract import recorded
from gpucost.errors import SourceUnavailable
from gpucost.promapi import PrometheusClient
from gpucost_testing.cost_explorer import cost_explorer_client
from gpucost_testing.servers import free_port
from tests.integration.finance_days import RecordedRate, backfilled_prometheus
from tests.support.fake_gcp import FakeGcp

pytestmark = pytest.mark.integration

DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
RATES = {"research": 100.0, "search": 40.0}  # USD per hour in the recorded GPU cost rate
SERIES = recorded.name("namespace_workload_cost_rate")  # what the finance rows, and so the estimate, read


def _constant(usd_per_hour: float) -> Callable[[int], float]:
    return lambda _minute: usd_per_hour


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The recorded rate per team, one sample a minute from an hour before the day to an hour after."""
    rates = [RecordedRate(SERIES, {"namespace": team, "team": team}, _constant(rate)) for team, rate in RATES.items()]
    with backfilled_prometheus(tmp_path_factory.mktemp("prom"), rates, DAY, DAY) as url:
        yield url


@pytest.fixture(scope="module")
def ce_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    billed = {"team$research": "2640.0", "team$search": "960.0", "team$": "50.0"}
    with cost_explorer_client(tmp_path_factory.mktemp("moto"), DAY, billed) as client:
        yield client


def test_estimate_is_the_days_finance_rows_per_team(prometheus_url: str) -> None:
    estimate = PrometheusEstimateSource(PrometheusClient(prometheus_url)).estimated_by_team(DAY)
    assert estimate == pytest.approx({"research": 2400.0, "search": 960.0}, rel=1e-6)


def test_reconciliation_publishes_ratio_and_delta_per_team_and_total(prometheus_url: str, ce_client: object) -> None:
    state = SidecarState()
    reconciler = Reconciler(
        CostExplorerSource(ce_client), PrometheusEstimateSource(PrometheusClient(prometheus_url)), state
    )
    end = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    results = {r.scope: r for r in reconciler.reconcile_day(DAY, end + dt.timedelta(hours=6))}
    assert results["team=research"].ratio == pytest.approx(1.1)
    assert results["team=research"].delta_usd == pytest.approx(240.0)
    assert results["team=search"].ratio == pytest.approx(1.0)
    assert results["all"].actual_usd == pytest.approx(3650.0)  # untagged spend counts only in the total
    assert not results["all"].final  # 6 h after the day's end is inside the 24 h billing lag
    assert DAY in reconciler.pending_days
    assert ("aws", "team=research") not in state.snapshot().calibration
    reconciler.reconcile_day(DAY, end + dt.timedelta(hours=30))
    assert DAY not in reconciler.pending_days
    assert state.snapshot().calibration[("aws", "team=research")] == pytest.approx(1.1)
    assert state.snapshot().provider_up[("aws", "reconciliation")] is True


def test_prometheus_down_marks_reconciliation_down_and_keeps_the_day_pending(ce_client: object) -> None:
    state = SidecarState()
    dead = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_seconds=1, retries=0)
    reconciler = Reconciler(CostExplorerSource(ce_client), PrometheusEstimateSource(dead), state)
    assert reconciler.reconcile_day(DAY, dt.datetime.now(dt.UTC)) == []
    assert state.snapshot().provider_up[("aws", "reconciliation")] is False
    assert DAY in reconciler.pending_days


# --- GCP: the billing export in BigQuery (FakeGcp speaks jobs.query / jobs.getQueryResults) ---------------------

GCP_TABLE = "finops-prod.billing.gcp_billing_export_v1_0123AB_4567CD_89EF01"
GCP_LABEL = "k8s-label/team"
GCP_ROWS: list[tuple[str | None, float | str | None]] = [("research", 3000.0), ("search", 1200.0), ("", 30.0)]


@pytest.fixture
def gcp() -> Iterator[FakeGcp]:
    with FakeGcp(page_size=2) as server:  # page size 2: the three rows need the second page
        server.set_billing_table(GCP_TABLE)
        server.set_billing_rows(DAY, GCP_ROWS)
        yield server


def _gcp_source(endpoint: str, **kwargs: Any) -> BillingExportSource:
    table = parse_export_table(GCP_TABLE)
    return BillingExportSource(
        table, label_key=GCP_LABEL, endpoint=endpoint, session_factory=requests.Session, **kwargs
    )


def _day_end() -> dt.datetime:
    return dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)


def test_gcp_billing_export_reconciles_per_team_over_paged_results(prometheus_url: str, gcp: FakeGcp) -> None:
    state = SidecarState()
    estimate = PrometheusEstimateSource(PrometheusClient(prometheus_url))
    reconciler = Reconciler(_gcp_source(gcp.url), estimate, state)
    results = {r.scope: r for r in reconciler.reconcile_day(DAY, _day_end() + dt.timedelta(hours=6))}
    assert {r.provider for r in results.values()} == {"gcp"}
    assert results["team=research"].ratio == pytest.approx(1.25)
    assert results["team=research"].delta_usd == pytest.approx(600.0)
    assert results["team=search"].ratio == pytest.approx(1.25)
    assert results["all"].actual_usd == pytest.approx(4230.0)  # the untagged row counts only in the total
    assert results["all"].estimated_usd == pytest.approx(3360.0)
    assert not results["all"].final and DAY in reconciler.pending_days  # inside the lag: re-checked later

    # The export has no "estimated" flag: past the lag the day is final.
    reconciler.reconcile_day(DAY, _day_end() + dt.timedelta(hours=30))
    assert DAY not in reconciler.pending_days
    snapshot = state.snapshot()
    assert snapshot.reconciliation[("gcp", "team=research")].final
    assert snapshot.calibration[("gcp", "team=research")] == pytest.approx(1.25)
    assert snapshot.provider_up[("gcp", "reconciliation")] is True

    calls = gcp.bigquery_requests()
    assert [(c.method, c.path) for c in calls[:2]] == [
        ("POST", "/bigquery/v2/projects/finops-prod/queries"),
        ("GET", calls[1].path),
    ]
    assert calls[1].path.startswith("/bigquery/v2/projects/finops-prod/queries/job_")
    assert calls[1].query["pageToken"] == "2" and calls[1].query["location"] == "US"
    body = calls[0].body
    assert body is not None and body["useLegacySql"] is False and body["parameterMode"] == "NAMED"
    parameters = {p["name"]: p["parameterValue"]["value"] for p in body["queryParameters"]}
    assert parameters == {
        "label_key": GCP_LABEL,
        "day_start": f"{DAY} 00:00:00+00:00",
        "day_end": f"{DAY + dt.timedelta(days=1)} 00:00:00+00:00",
    }
    assert all("$alt" not in c.query for c in calls)


def test_incomplete_job_is_polled_with_its_location_until_complete() -> None:
    with FakeGcp(page_size=10, bigquery_location="europe-west3") as fake:
        fake.set_billing_table(GCP_TABLE)
        fake.set_billing_rows(DAY, GCP_ROWS)
        fake.set_incomplete_polls(2)  # the jobs.query answer and the first poll say jobComplete: false
        actual = _gcp_source(fake.url, timeout_ms=5_000).actual_by_team(DAY)
        calls = fake.bigquery_requests()
    assert actual.by_team == {"research": 3000.0, "search": 1200.0, "": 30.0}
    assert actual.estimated_by_provider is False
    assert [c.method for c in calls] == ["POST", "GET", "GET"]
    assert all(c.query == {"timeoutMs": "5000", "location": "europe-west3"} for c in calls[1:])


def test_a_job_that_never_completes_fails_gcp_reconciliation_and_keeps_the_day_pending(
    prometheus_url: str, gcp: FakeGcp, caplog: pytest.LogCaptureFixture
) -> None:
    gcp.set_incomplete_polls(100)
    state = SidecarState()
    estimate = PrometheusEstimateSource(PrometheusClient(prometheus_url))
    reconciler = Reconciler(_gcp_source(gcp.url, max_polls=3), estimate, state)
    assert reconciler.reconcile_day(DAY, _day_end() + dt.timedelta(hours=30)) == []
    assert state.snapshot().provider_up[("gcp", "reconciliation")] is False
    assert DAY in reconciler.pending_days
    assert len(gcp.bigquery_requests()) == 4  # jobs.query, then 3 polls
    assert f"BigQuery jobs.getQueryResults on {GCP_TABLE} failed" in caplog.text
    assert "not complete after 3 polls" in caplog.text


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        (403, "Access Denied: Table finops-prod:billing.export: User does not have permission", "PERMISSION_DENIED"),
        (500, "An internal error occurred and the request could not be completed.", "INTERNAL"),
    ],
)
def test_a_bigquery_error_fails_gcp_alone_and_aws_still_reconciles(
    prometheus_url: str,
    ce_client: object,
    gcp: FakeGcp,
    caplog: pytest.LogCaptureFixture,
    code: int,
    message: str,
    status: str,
) -> None:
    state = SidecarState()
    estimate = PrometheusEstimateSource(PrometheusClient(prometheus_url))
    aws = Reconciler(CostExplorerSource(ce_client), estimate, state)
    gcp_reconciler = Reconciler(_gcp_source(gcp.url), estimate, state)
    now = _day_end() + dt.timedelta(hours=30)
    gcp.fail_bigquery(code, message)
    assert gcp_reconciler.reconcile_day(DAY, now) == []
    assert aws.reconcile_day(DAY, now)
    up = state.snapshot().provider_up
    assert up[("gcp", "reconciliation")] is False and up[("aws", "reconciliation")] is True
    assert f"BigQuery jobs.query on {GCP_TABLE} failed: HTTP {code} {status}: {message}" in caplog.text

    gcp.fail_bigquery(None)  # recovered: both clouds' results live side by side, keyed by provider
    assert gcp_reconciler.reconcile_day(DAY, now)
    snapshot = state.snapshot()
    assert snapshot.provider_up[("gcp", "reconciliation")] is True
    assert snapshot.reconciliation[("aws", "all")].actual_usd == pytest.approx(3650.0)
    assert snapshot.reconciliation[("gcp", "all")].actual_usd == pytest.approx(4230.0)


def test_unreachable_bigquery_and_a_malformed_answer_are_source_unavailable(gcp: FakeGcp) -> None:
    with pytest.raises(SourceUnavailable, match=rf"BigQuery jobs.query on {GCP_TABLE} failed: .*Connection"):
        _gcp_source(f"http://127.0.0.1:{free_port()}").actual_by_team(DAY)
    gcp.set_billing_rows(DAY, [("research", "lots")])
    with pytest.raises(
        SourceUnavailable,
        match=rf"BigQuery billing export {GCP_TABLE}: malformed answer: 'cost_usd' of row 1 is 'lots', not a number",
    ):
        _gcp_source(gcp.url).actual_by_team(DAY)
    with pytest.raises(SourceUnavailable, match=r"HTTP 404 NOT_FOUND: Not found: Table"):
        BillingExportSource(
            parse_export_table("finops-prod.billing.other"), endpoint=gcp.url, session_factory=requests.Session
        ).actual_by_team(DAY)


def test_serve_runs_one_reconciliation_job_per_cloud_each_failing_alone(
    prometheus_url: str, ce_client: Any, gcp: FakeGcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUCOST_GCP_ANONYMOUS", "1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", ce_client.meta.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    args = build_parser().parse_args(
        [
            "serve",
            "--aws.enabled",
            "--aws.account-id=123456789012",
            f"--gcp.billing-export-table={GCP_TABLE}",
            f"--gcp.billing-export-label={GCP_LABEL}",
            f"--gcp.bigquery-endpoint={gcp.url}",
            f"--prometheus.url={prometheus_url}",
        ]
    )
    state = SidecarState()
    config = config_from_args(args)
    assert isinstance(config, SidecarConfig)
    jobs = {job.name: job for job in build_jobs(config, state)}
    assert (jobs["gcp reconciliation"].provider, jobs["gcp reconciliation"].feature) == ("gcp", "reconciliation")
    now = _day_end() + dt.timedelta(hours=7)  # "yesterday" is DAY
    gcp.fail_bigquery(500)
    for name in ("aws reconciliation", "gcp reconciliation"):
        _run_guarded(jobs[name], state, now)
    up = state.snapshot().provider_up
    assert up[("aws", "reconciliation")] is True
    assert up[("gcp", "reconciliation")] is False  # the job's failure is not overwritten by "the job ran"
    gcp.fail_bigquery(None)  # the next run recovers
    _run_guarded(jobs["gcp reconciliation"], state, now)
    assert state.snapshot().provider_up[("gcp", "reconciliation")] is True
    assert state.snapshot().reconciliation[("gcp", "team=research")].ratio == pytest.approx(1.25)


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpucost.budgets.cli", "reconcile", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "GPUCOST_GCP_ANONYMOUS": "1", **(env or {})},
        check=False,
        timeout=60,
    )


def test_reconcile_cli_prints_one_line_per_gcp_scope(prometheus_url: str, gcp: FakeGcp) -> None:
    run = _cli(
        f"--date={DAY}",
        f"--gcp.billing-export-table={GCP_TABLE}",
        f"--gcp.billing-export-label={GCP_LABEL}",
        f"--gcp.bigquery-endpoint={gcp.url}",
        f"--prometheus.url={prometheus_url}",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"{DAY} gcp team=research: billed 3000.00 USD, estimated 2400.00 USD, ratio 1.250, delta +600.00 USD",
        f"{DAY} gcp team=search: billed 1200.00 USD, estimated 960.00 USD, ratio 1.250, delta +240.00 USD",
        f"{DAY} gcp all: billed 4230.00 USD, estimated 3360.00 USD, ratio 1.259, delta +870.00 USD",
    ]


def test_reconcile_cli_prints_aws_and_fails_when_gcp_fails(prometheus_url: str, ce_client: Any, gcp: FakeGcp) -> None:
    gcp.fail_bigquery(403, "Access Denied: BigQuery BigQuery: Permission denied while getting Drive credentials.")
    run = _cli(
        f"--date={DAY}",
        "--aws.enabled",
        f"--gcp.billing-export-table={GCP_TABLE}",
        f"--gcp.bigquery-endpoint={gcp.url}",
        f"--prometheus.url={prometheus_url}",
        env={
            "AWS_ENDPOINT_URL": ce_client.meta.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        },
    )
    assert run.returncode == 1, run.stderr
    assert [line.split(":")[0] for line in run.stdout.splitlines()] == [
        f"{DAY} aws team=research",
        f"{DAY} aws team=search",
        f"{DAY} aws all",
    ]
    assert "HTTP 403 PERMISSION_DENIED: Access Denied" in run.stderr
    assert run.stderr.splitlines()[-1] == f"gpucost-budgets: reconciliation of gcp for {DAY} failed; see the log"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["--gcp.billing-export-table=finops-prod.billing"],
            "gpucost-budgets: --gcp.billing-export-table: must be PROJECT.DATASET.TABLE (letters, digits, '_' and "
            "'-'; the billing export table) (got 'finops-prod.billing')",
        ),
        (
            [f"--gcp.billing-export-table={GCP_TABLE}", "--gcp.bigquery-project=Finops Jobs"],
            "gpucost-budgets: --gcp.bigquery-project: must be a GCP project id (lower-case letters, digits and '-') "
            "(got 'Finops Jobs')",
        ),
        (
            [],
            "gpucost-budgets: <input>: --aws.enabled/--gcp.billing-export-table: enable at least one cloud to "
            "reconcile (got None)",
        ),
    ],
)
def test_reconcile_cli_bad_flags_exit_2_with_one_line(argv: list[str], line: str) -> None:
    run = _cli(f"--date={DAY}", "--prometheus.url=http://127.0.0.1:9", *argv)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [line]
    assert run.stdout == ""
