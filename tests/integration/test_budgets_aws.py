"""AWS Budgets sync against a real moto server (create, describe, unchanged, orphaned, spend read-back)
and botocore's Stubber for update (moto answers update_budget with HTTP 500)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from gpucost.budgets.aws_budgets import AwsBudgetSync
from gpucost.budgets.spec import Month, load_budget_file
from gpucost.budgets.state import SidecarState
from gpucost_testing.servers import start_moto_server

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "budgets"
ACCOUNT = "123456789012"
NOVEMBER = Month(2026, 11)
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_moto_server(tmp_path_factory.mktemp("moto")) as proc:
        yield proc.base_url


@pytest.fixture
def budgets_client(moto_url: str) -> Iterator[Any]:
    client = boto3.client(
        "budgets",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    yield client
    for budget in client.describe_budgets(AccountId=ACCOUNT).get("Budgets", []):
        client.delete_budget(AccountId=ACCOUNT, BudgetName=budget["BudgetName"])


def test_first_sync_creates_tagged_budgets_with_threshold_notifications(budgets_client: Any) -> None:
    budget_file = load_budget_file(FIXTURES / "valid.yaml")
    sync = AwsBudgetSync(budgets_client, ACCOUNT)
    plan = sync.plan(budget_file, NOVEMBER)
    assert plan.by_action("create") == [
        "gpucost-research-monthly",
        "gpucost-research-llama",
        "gpucost-platform-inference",
    ]
    assert budgets_client.describe_budgets(AccountId=ACCOUNT).get("Budgets", []) == []  # planning writes nothing
    sync.apply(plan)
    created = budgets_client.describe_budget(AccountId=ACCOUNT, BudgetName="gpucost-research-monthly")["Budget"]
    assert created["CostFilters"] == {"TagKeyValue": ["user:team$research"]}
    assert created["BudgetLimit"] == {"Amount": "80000", "Unit": "USD"}
    assert (created["TimeUnit"], created["BudgetType"]) == ("MONTHLY", "COST")
    llama = budgets_client.describe_budget(AccountId=ACCOUNT, BudgetName="gpucost-research-llama")["Budget"]
    assert llama["CostFilters"] == {"TagKeyValue": ["user:model$llama-70b"]}
    notifications = budgets_client.describe_notifications_for_budget(
        AccountId=ACCOUNT, BudgetName="gpucost-research-monthly"
    )["Notifications"]
    assert sorted((n["NotificationType"], n["Threshold"]) for n in notifications) == [
        ("ACTUAL", 50.0),
        ("ACTUAL", 80.0),
        ("ACTUAL", 100.0),
        ("ACTUAL", 125.0),
        ("FORECASTED", 100.0),
    ]


def test_second_sync_is_unchanged_and_foreign_gpucost_budgets_are_orphaned(budgets_client: Any) -> None:
    budget_file = load_budget_file(FIXTURES / "valid.yaml")
    sync = AwsBudgetSync(budgets_client, ACCOUNT)
    sync.apply(sync.plan(budget_file, NOVEMBER))
    budgets_client.create_budget(
        AccountId=ACCOUNT,
        Budget={
            "BudgetName": "gpucost-old-team",
            "BudgetLimit": {"Amount": "10", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        },
    )
    budgets_client.create_budget(
        AccountId=ACCOUNT,
        Budget={
            "BudgetName": "finance-manual",
            "BudgetLimit": {"Amount": "10", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        },
    )
    plan = sync.plan(budget_file, NOVEMBER)
    assert plan.by_action("unchanged") == [
        "gpucost-research-monthly",
        "gpucost-research-llama",
        "gpucost-platform-inference",
    ]
    assert plan.by_action("orphaned") == ["gpucost-old-team"]
    assert plan.by_action("create") == plan.by_action("update") == []
    sync.apply(plan)  # idempotent: nothing to write, orphan left in place
    names = {b["BudgetName"] for b in budgets_client.describe_budgets(AccountId=ACCOUNT)["Budgets"]}
    assert "gpucost-old-team" in names


def test_spend_is_read_back_and_published(budgets_client: Any) -> None:
    budgets_client.create_budget(
        AccountId=ACCOUNT,
        Budget={
            "BudgetName": "gpucost-research-monthly",
            "BudgetLimit": {"Amount": "80000", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
            "CalculatedSpend": {
                "ActualSpend": {"Amount": "41000.5", "Unit": "USD"},
                "ForecastedSpend": {"Amount": "83000", "Unit": "USD"},
            },
        },
    )
    state = SidecarState()
    spend = AwsBudgetSync(budgets_client, ACCOUNT, state=state).read_spend(load_budget_file(FIXTURES / "valid.yaml"))
    assert spend == {"research-monthly": (41000.5, 83000.0)}
    assert state.snapshot().cloud_spend[("aws", "research-monthly", "forecast")] == 83000.0


def test_update_sends_new_budget_and_notification_changes_as_the_real_api_expects() -> None:
    client = boto3.client("budgets", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    budget_file = load_budget_file(FIXTURES / "valid.yaml")
    stub = Stubber(client)
    current = {
        "BudgetName": "gpucost-research-monthly",
        "BudgetLimit": {"Amount": "60000", "Unit": "USD"},
        "CostFilters": {"TagKeyValue": ["user:team$research"]},
        "TimeUnit": "MONTHLY",
        "BudgetType": "COST",
    }
    stub.add_response("describe_budgets", {"Budgets": [current]}, {"AccountId": ACCOUNT, "MaxResults": 100})
    existing = [
        {
            "NotificationType": "ACTUAL",
            "ComparisonOperator": "GREATER_THAN",
            "Threshold": t,
            "ThresholdType": "PERCENTAGE",
        }
        for t in (50.0, 80.0, 100.0, 90.0)
    ]
    stub.add_response(
        "describe_notifications_for_budget",
        {"Notifications": existing},
        {"AccountId": ACCOUNT, "BudgetName": "gpucost-research-monthly"},
    )
    stub.add_response(
        "update_budget",
        {},
        {
            "AccountId": ACCOUNT,
            "NewBudget": {
                "BudgetName": "gpucost-research-monthly",
                "BudgetLimit": {"Amount": "80000", "Unit": "USD"},
                "CostFilters": {"TagKeyValue": ["user:team$research"]},
                "TimeUnit": "MONTHLY",
                "BudgetType": "COST",
            },
        },
    )
    stub.add_response(
        "delete_notification",
        {},
        {"AccountId": ACCOUNT, "BudgetName": "gpucost-research-monthly", "Notification": existing[3]},
    )
    subscribers = [{"SubscriptionType": "EMAIL", "Address": "alice@example.com"}]
    for kind, threshold in (("ACTUAL", 125.0), ("FORECASTED", 100.0)):
        stub.add_response(
            "create_notification",
            {},
            {
                "AccountId": ACCOUNT,
                "BudgetName": "gpucost-research-monthly",
                "Subscribers": subscribers,
                "Notification": {
                    "NotificationType": kind,
                    "ComparisonOperator": "GREATER_THAN",
                    "Threshold": threshold,
                    "ThresholdType": "PERCENTAGE",
                },
            },
        )
    only_research = type(budget_file)(budget_file.budgets[:1])
    with stub:
        sync = AwsBudgetSync(client, ACCOUNT)
        plan = sync.plan(only_research, NOVEMBER)
        assert [str(c) for c in plan.changes] == [
            "update    aws budget gpucost-research-monthly: limit 60000 -> 80000 USD; notifications +2 -1"
        ]
        sync.apply(plan)
        stub.assert_no_pending_responses()


def test_plan_cli_prints_the_plan_without_writing(moto_url: str, budgets_client: Any) -> None:
    env = {**os.environ, **AWS_ENV, "AWS_ENDPOINT_URL": moto_url, "AWS_MAX_ATTEMPTS": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpucost.budgets.cli",
            "plan",
            "--budgets.file",
            str(FIXTURES / "valid.yaml"),
            "--aws.enabled",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "create    aws budget gpucost-research-monthly: limit 80000 USD" in run.stdout
    assert budgets_client.describe_budgets(AccountId=ACCOUNT).get("Budgets", []) == []
