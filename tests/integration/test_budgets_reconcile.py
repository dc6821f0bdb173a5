"""Daily reconciliation: Cost Explorer (moto server, injected results) vs a real Prometheus with backfilled counters."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config

from gpucost.budgets.aws_cost_explorer import CostExplorerSource
from gpucost.budgets.prometheus_api import PrometheusClient, PrometheusEstimateSource
from gpucost.budgets.reconcile import Reconciler
from gpucost.budgets.state import SidecarState
from tests.support.servers import (
    free_port,
    require_binary,
    start_moto_server,
    start_prometheus,
    write_prometheus_config,
)

pytestmark = pytest.mark.integration

DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
RATES = {"research": 100.0, "search": 40.0}  # USD per hour in the counters


def _openmetrics(day: dt.date) -> str:
    start = int(dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC).timestamp()) - 3600
    lines = ["# TYPE gpucost_workload_gpu_cost_usd counter"]
    for team, rate in RATES.items():
        for step in range(0, 26 * 12 + 1):
            ts = start + step * 300
            lines.append(f'gpucost_workload_gpu_cost_usd_total{{team="{team}"}} {rate * step / 12:.6f} {ts}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("prom")
    source = workdir / "data.om"
    source.write_text(_openmetrics(DAY))
    subprocess.run(
        [require_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(workdir / "tsdb")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = write_prometheus_config(workdir / "prometheus.yml")
    with start_prometheus(workdir, config, retention="30d") as prometheus:
        yield prometheus.base_url


@pytest.fixture(scope="module")
def ce_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with start_moto_server(tmp_path_factory.mktemp("moto")) as proc:
        results = {
            "results": [
                {
                    "ResultsByTime": [
                        {
                            "TimePeriod": {"Start": DAY.isoformat(), "End": (DAY + dt.timedelta(days=1)).isoformat()},
                            "Total": {},
                            "Estimated": False,
                            "Groups": [
                                {
                                    "Keys": ["team$research"],
                                    "Metrics": {"UnblendedCost": {"Amount": "2640.0", "Unit": "USD"}},
                                },
                                {
                                    "Keys": ["team$search"],
                                    "Metrics": {"UnblendedCost": {"Amount": "960.0", "Unit": "USD"}},
                                },
                                {"Keys": ["team$"], "Metrics": {"UnblendedCost": {"Amount": "50.0", "Unit": "USD"}}},
                            ],
                        }
                    ]
                }
            ]
        }
        request = urllib.request.Request(
            proc.base_url + "/moto-api/static/ce/cost-and-usage-results",
            data=json.dumps(results).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()
        yield boto3.client(
            "ce",
            endpoint_url=proc.base_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )


def test_estimate_is_the_days_counter_increase_per_team(prometheus_url: str) -> None:
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
    dead = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=1, attempts=1)
    reconciler = Reconciler(CostExplorerSource(ce_client), PrometheusEstimateSource(dead), state)
    assert reconciler.reconcile_day(DAY, dt.datetime.now(dt.UTC)) == []
    assert state.snapshot().provider_up[("aws", "reconciliation")] is False
    assert DAY in reconciler.pending_days
