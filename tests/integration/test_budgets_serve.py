"""`gpucost-budgets serve` end to end as a subprocess: metrics, hot reload of a bad and a fixed file,
one failing provider beside a working one, and a prompt clean exit on SIGTERM."""

from __future__ import annotations

import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gpucost_testing.servers import ManagedProcess, free_port, wait_for
from tests.support.fake_gcp import FakeGcp

pytestmark = pytest.mark.integration

GOOD = """
budgets:
  - name: research-monthly
    scope: {team: research}
    monthly_usd: 80000
    slack_channel: "#research-finops"
    owners: [alice@example.com]
"""
BAD = GOOD.replace("monthly_usd: 80000", "monthly_usd: lots")
FIXED = (
    GOOD.replace("80000", "90000")
    + """
  - name: platform-inference
    scope: {team: platform, namespace: inference}
    monthly_usd: 20000
    thresholds_percent: [90, 110]
"""
)


def _metrics(proc: ManagedProcess) -> str:
    with urllib.request.urlopen(proc.base_url + "/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_serve_publishes_budgets_survives_a_bad_file_and_a_dead_provider_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(GOOD)
    dead = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    with FakeGcp() as gcp:
        argv = [
            sys.executable,
            "-m",
            "gpucost.budgets.cli",
            "serve",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--budgets.file={budgets}",
            "--reload.interval=1s",
            "--aws.enabled",
            "--aws.account-id=123456789012",
            "--gcp.billing-account=0123-4567",
            f"--gcp.api-endpoint={gcp.url}",
            f"--prometheus.url={dead}",
            "--dry-run",
        ]
        env = {
            "AWS_ENDPOINT_URL": dead,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "GPUCOST_GCP_ANONYMOUS": "1",
        }
        proc = ManagedProcess("gpucost-budgets", argv, tmp_path / "serve.log", port=port, env=env).start()
        with proc:
            proc.wait_http("/healthz", timeout=30)
            text = _metrics(proc)
            assert "gpucost_budgets_config_valid 1.0" in text
            assert (
                'gpucost_budget_usd{budget="research-monthly",cluster="",cost_center="",model="",namespace="",'
                'resources="gpu",slack_channel="#research-finops",team="research"} 80000.0'
            ) in text
            assert 'gpucost_budget_threshold_ratio{budget="research-monthly",threshold="1.25"} 1.25' in text
            assert (
                'gpucost_budget_info{budget="research-monthly",end_month="",enforce="off",hard_threshold="1.25",'
                'owners="alice@example.com",start_month="",team="research"} 1.0'
            ) in text

            # AWS is unreachable, GCP answers: each job fails alone.
            wait_for(
                lambda: 'gpucost_budgets_provider_up{feature="budgets",provider="aws"} 0.0' in _metrics(proc),
                timeout=40,
                what="aws budgets down",
            )
            wait_for(
                lambda: 'gpucost_budgets_provider_up{feature="budgets",provider="gcp"} 1.0' in _metrics(proc),
                timeout=40,
                what="gcp budgets up after the aws failure",
            )
            assert [r.method for r in gcp.requests] and not gcp.writes()  # --dry-run plans, never writes

            budgets.write_text(BAD)
            wait_for(lambda: "gpucost_budgets_config_valid 0.0" in _metrics(proc), timeout=10, what="invalid")
            text = _metrics(proc)
            assert 'budget="research-monthly"' in text and "80000.0" in text  # last good budgets still served
            rejected = [line for line in proc.log_text().splitlines() if "budgets file rejected" in line]
            assert len(rejected) == 1
            assert f"{budgets}: budgets[0].monthly_usd" in rejected[0] and "'lots'" in rejected[0]

            budgets.write_text(FIXED)
            wait_for(lambda: "gpucost_budgets_config_valid 1.0" in _metrics(proc), timeout=10, what="valid")
            text = _metrics(proc)
            assert 'slack_channel="#research-finops",team="research"} 90000.0' in text
            assert 'gpucost_budget_threshold_ratio{budget="platform-inference",threshold="0.9"} 0.9' in text

            started = time.monotonic()
            proc.signal(signal.SIGTERM)
            assert proc.process is not None
            assert proc.process.wait(timeout=10) == 0
            assert time.monotonic() - started < 5
