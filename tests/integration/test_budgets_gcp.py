"""GCP: Cloud Billing budgets sync, Catalog price sync and the Pub/Sub spend push endpoint, against a local
REST server speaking the Budget and Catalog APIs to the real google-cloud clients (REST transport)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.budgets.collector import build_registry
from gpucost.budgets.gcp_budgets import GcpBudgetSync, make_budget_client
from gpucost.budgets.gcp_prices import COMPUTE_ENGINE_SERVICE, GcpPriceSource, make_catalog_client
from gpucost.budgets.price_sync import run_price_sync
from gpucost.budgets.server import GCP_PUSH_PATH, SidecarHttpServer
from gpucost.budgets.spec import Month, load_budget_file
from gpucost.budgets.state import SidecarState
from gpucost.errors import SourceUnavailable
from gpucost_testing.servers import free_port
from tests.support.fake_gcp import BASIS_CURRENT_SPEND, BASIS_FORECASTED_SPEND, CALENDAR_PERIOD_MONTH, FakeGcp

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "budgets"
ACCOUNT = "012345-6789AB-CDEF01"
TOPIC = "projects/finops/topics/gpucost-budgets"
NOVEMBER = Month(2026, 11)
DECEMBER = Month(2026, 12)
NOW = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)
ALL_NAMES = ["gpucost-research-monthly", "gpucost-research-llama", "gpucost-platform-inference"]


@pytest.fixture(scope="module")
def gcp() -> Iterator[FakeGcp]:
    with FakeGcp(page_size=2) as server:  # page size 2: three budgets need the pager's second page
        yield server


@pytest.fixture
def sync(gcp: FakeGcp) -> Iterator[GcpBudgetSync]:
    gcp.clear_budgets()
    yield GcpBudgetSync(make_budget_client(gcp.url, anonymous=True), ACCOUNT, pubsub_topic=TOPIC)
    gcp.clear_budgets()


def _rules(budget: dict[str, Any]) -> list[tuple[float, int]]:
    return sorted((r["thresholdPercent"], r.get("spendBasis", 0)) for r in budget["thresholdRules"])


def test_first_sync_creates_monthly_budgets_with_threshold_and_forecast_rules(
    gcp: FakeGcp, sync: GcpBudgetSync
) -> None:
    budget_file = load_budget_file(FIXTURES / "valid.yaml")
    plan = sync.plan(budget_file, NOVEMBER, ["ml-prod"])
    assert plan.by_action("create") == ALL_NAMES
    assert gcp.writes() == []  # planning writes nothing
    sync.apply(plan)
    research = gcp.budget_named(ACCOUNT, "gpucost-research-monthly")
    assert research["amount"] == {"specifiedAmount": {"currencyCode": "USD", "units": "80000"}}
    assert research["budgetFilter"] == {
        "projects": ["projects/ml-prod"],
        "labels": {"team": ["research"]},
        "calendarPeriod": CALENDAR_PERIOD_MONTH,
    }
    assert _rules(research) == [
        (0.5, BASIS_CURRENT_SPEND),
        (0.8, BASIS_CURRENT_SPEND),
        (1.0, BASIS_CURRENT_SPEND),
        (1.0, BASIS_FORECASTED_SPEND),
        (1.25, BASIS_CURRENT_SPEND),
    ]
    assert research["notificationsRule"] == {"pubsubTopic": TOPIC, "schemaVersion": "1.0"}
    # One label per budget: a team+model budget filters on the model label only.
    llama = gcp.budget_named(ACCOUNT, "gpucost-research-llama")
    assert llama["budgetFilter"]["labels"] == {"model": ["llama-70b"]}
    assert all(r.query["$alt"] == "json;enum-encoding=int" for r in gcp.requests)


def test_second_sync_is_unchanged_and_foreign_gpucost_budgets_are_orphaned_never_deleted(
    gcp: FakeGcp, sync: GcpBudgetSync
) -> None:
    budget_file = load_budget_file(FIXTURES / "valid.yaml")
    sync.apply(sync.plan(budget_file, NOVEMBER))
    for name in ("gpucost-old-team", "finance-manual"):
        gcp.put_budget(
            ACCOUNT,
            {"displayName": name, "amount": {"specifiedAmount": {"currencyCode": "USD", "units": "10"}}},
        )
    writes_before = len(gcp.writes())
    plan = sync.plan(budget_file, NOVEMBER)
    assert plan.by_action("unchanged") == ALL_NAMES
    assert plan.by_action("orphaned") == ["gpucost-old-team"]
    sync.apply(plan)
    assert len(gcp.writes()) == writes_before
    assert {b["displayName"] for b in gcp.budgets(ACCOUNT)} >= {"gpucost-old-team", "finance-manual"}


def test_month_override_and_edited_rules_are_patched_with_an_update_mask(gcp: FakeGcp, sync: GcpBudgetSync) -> None:
    budget_file = load_budget_file(FIXTURES / "valid.yaml")
    sync.apply(sync.plan(budget_file, NOVEMBER))
    research = gcp.budget_named(ACCOUNT, "gpucost-research-monthly")
    # Someone edits the budget in the console: drops the forecast rule and switches it to quarterly.
    research["thresholdRules"] = [r for r in research["thresholdRules"] if r["spendBasis"] == BASIS_CURRENT_SPEND]
    research["budgetFilter"]["calendarPeriod"] = 2  # QUARTER
    gcp.edit_budget(research)

    plan = sync.plan(budget_file, DECEMBER)  # December: research-llama has the 30000 override
    assert plan.by_action("update") == ["gpucost-research-monthly", "gpucost-research-llama"]
    assert [str(c) for c in plan.changes if c.display_name == "gpucost-research-llama"] == [
        "update    gcp budget gpucost-research-llama: amount 50000 -> 30000 USD"
    ]
    sync.apply(plan)
    patches = {r.path.rsplit("/", 1)[1]: r.query["updateMask"] for r in gcp.writes() if r.method == "PATCH"}
    assert sorted(patches.values()) == ["amount", "budgetFilter,thresholdRules"]
    assert gcp.budget_named(ACCOUNT, "gpucost-research-llama")["amount"]["specifiedAmount"]["units"] == "30000"
    fixed = gcp.budget_named(ACCOUNT, "gpucost-research-monthly")
    assert fixed["budgetFilter"]["calendarPeriod"] == CALENDAR_PERIOD_MONTH
    assert (1.0, BASIS_FORECASTED_SPEND) in _rules(fixed)
    assert sync.plan(budget_file, DECEMBER).by_action("unchanged") == ALL_NAMES


def test_unreachable_budget_api_is_a_source_unavailable_error() -> None:
    dead = GcpBudgetSync(make_budget_client(f"http://127.0.0.1:{free_port()}", anonymous=True), ACCOUNT)
    with pytest.raises(SourceUnavailable, match="list_budgets failed"):
        dead.plan(load_budget_file(FIXTURES / "valid.yaml"), NOVEMBER)


def test_plan_cli_prints_the_gcp_plan_without_writing(gcp: FakeGcp, sync: GcpBudgetSync) -> None:
    env = {**os.environ, "GPUCOST_GCP_ANONYMOUS": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpucost.budgets.cli",
            "plan",
            "--budgets.file",
            str(FIXTURES / "valid.yaml"),
            f"--gcp.billing-account={ACCOUNT}",
            f"--gcp.api-endpoint={gcp.url}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "create    gcp budget gpucost-research-monthly: amount 80000 USD" in run.stdout
    assert gcp.budgets(ACCOUNT) == []


def _sku(
    description: str, usage_type: str, usd: str, *, group: str = "GPU", region: str = "us-central1"
) -> dict[str, Any]:
    units, _, fraction = usd.partition(".")
    money: dict[str, Any] = {"currencyCode": "USD", "units": units}
    if fraction:
        money["nanos"] = int(fraction.ljust(9, "0"))
    return {
        "name": f"{COMPUTE_ENGINE_SERVICE}/skus/{abs(hash(description + usage_type)) % 10**8}",
        "description": description,
        "category": {
            "serviceDisplayName": "Compute Engine",
            "resourceFamily": "Compute",
            "resourceGroup": group,
            "usageType": usage_type,
        },
        "serviceRegions": [region],
        "pricingInfo": [
            {
                "pricingExpression": {
                    "usageUnit": "h",
                    "usageUnitDescription": "hour",
                    "tieredRates": [{"startUsageAmount": 0, "unitPrice": money}],
                }
            }
        ],
    }


CATALOG_SKUS = [
    _sku("Nvidia Tesla A100 GPU running in Americas", "OnDemand", "2.933908"),
    _sku("Spot Preemptible Nvidia Tesla A100 GPU running in Americas", "Preemptible", "0.88"),
    _sku("Nvidia Tesla A100 80GB GPU running in Americas", "OnDemand", "3.92"),
    _sku("Commitment v1: Nvidia Tesla A100 GPU in Americas for 1 Year", "Commit1Yr", "1.85"),
    _sku("Nvidia L4 GPU running in Americas", "OnDemand", "0.56"),
    _sku("Spot Preemptible Nvidia L4 GPU running in Americas", "Preemptible", "0.2"),
    _sku("Nvidia L4 GPU running in Belgium", "OnDemand", "0.62", region="europe-west1"),
    _sku("N2 Instance Core running in Americas", "OnDemand", "0.031611", group="N2Standard"),
]


def test_gcp_price_sync_writes_gpu_prices_per_machine_type_to_the_overrides_file(gcp: FakeGcp, tmp_path: Path) -> None:
    gcp.set_catalog(
        [{"name": COMPUTE_ENGINE_SERVICE, "serviceId": "6F81-5844-456A", "displayName": "Compute Engine"}],
        {"6F81-5844-456A": CATALOG_SKUS},
    )
    source = GcpPriceSource(make_catalog_client(gcp.url, anonymous=True), "us-central1", clock=lambda: NOW)
    overrides = tmp_path / "overrides.yaml"
    state = SidecarState()
    run_price_sync(overrides, {"gcp": source.entries}, state, NOW)
    document = yaml.safe_load(overrides.read_text())
    by_type = {entry["instance_type"]: entry for entry in document["prices"]}
    assert sorted(by_type) == [
        "a2-highgpu-1g",
        "a2-highgpu-8g",
        "a2-ultragpu-1g",
        "a2-ultragpu-8g",
        "g2-standard-4",
        "g2-standard-96",
    ]
    assert by_type["a2-highgpu-8g"]["on_demand_usd_per_hour"] == pytest.approx(8 * 2.933908)
    assert by_type["a2-highgpu-8g"]["spot_usd_per_hour"] == pytest.approx(8 * 0.88)
    assert by_type["g2-standard-4"] == {
        "cloud": "gcp",
        "region": "us-central1",
        "instance_type": "g2-standard-4",
        "on_demand_usd_per_hour": 0.56,
        "spot_usd_per_hour": 0.2,
        "gpu_model": "L4",
        "gpu_count": 1,
        "source": f"gcp-cloud-catalog:{COMPUTE_ENGINE_SERVICE}",
        "as_of": "2026-11-28T06:00:00Z",
    }
    assert "spot_usd_per_hour" not in by_type["a2-ultragpu-1g"]  # no spot SKU in the catalog
    assert state.snapshot().price_sync_last_success == {"gcp": NOW.timestamp()}
    sku_calls = [r for r in gcp.requests if r.path.endswith("/skus")]
    assert len(sku_calls) == 4 and all(r.query["currencyCode"] == "USD" for r in sku_calls)  # 8 SKUs, pages of 2


def _push(port: int, payload: dict[str, Any] | bytes) -> int:
    if isinstance(payload, bytes):
        body = payload
    else:
        data = base64.b64encode(json.dumps(payload).encode()).decode()
        body = json.dumps({"message": {"data": data, "messageId": "1", "attributes": {}}, "subscription": "s"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{GCP_PUSH_PATH}", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_pubsub_push_publishes_gcp_spend_and_rejects_garbage_without_retry() -> None:
    state = SidecarState()
    server = SidecarHttpServer(("127.0.0.1", 0), build_registry(state), state).start()
    try:
        notification = {
            "budgetDisplayName": "gpucost-research-monthly",
            "alertThresholdExceeded": 0.5,
            "costAmount": 41000.25,
            "costIntervalStart": "2026-11-01T07:00:00Z",
            "budgetAmount": 80000.0,
            "budgetAmountType": "SPECIFIED_AMOUNT",
            "currencyCode": "USD",
        }
        assert _push(server.port, notification) == 204
        assert _push(server.port, {**notification, "budgetDisplayName": "finance-manual", "costAmount": 9.0}) == 204
        assert _push(server.port, b'{"message": {"data": "not base64!"}}') == 400
        assert _push(server.port, {**notification, "currencyCode": "EUR"}) == 400
        metrics = _scrape(server.port)
        assert (
            'gpucost_cloud_budget_spend_usd{budget="research-monthly",kind="actual",provider="gcp"} 41000.25' in metrics
        )
        assert "finance-manual" not in metrics
        assert 'gpucost_budgets_provider_up{feature="budget_spend",provider="gcp"} 1.0' in metrics
        assert _push(server.port, {**notification, "costAmount": 52000.0}) == 204
        assert 'budget="research-monthly",kind="actual",provider="gcp"} 52000.0' in _scrape(server.port)
    finally:
        server.stop()
