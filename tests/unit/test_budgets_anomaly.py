"""AWS Cost Anomaly Detection from budgets.yaml: spec validation, and plan/apply against botocore's Stubber
(moto does not implement the anomaly calls), with responses shaped like the real API's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from gpucost.budgets.aws_anomaly import AwsAnomalySync
from gpucost.budgets.spec import AnomalyDetection, BudgetFile, parse_budget_file
from gpucost.errors import ConfigError, SourceUnavailable

ACCOUNT = "123456789012"
SUBSCRIPTION_ARN = f"arn:aws:ce::{ACCOUNT}:anomalysubscription/2b8b7d1c-0f3a-4c9e-9d57-6f0b1f7d2a10"
CREATED = dt.datetime(2026, 10, 1, tzinfo=dt.UTC).strftime("%Y-%m-%d")


def monitor_arn(suffix: str) -> str:
    return f"arn:aws:ce::{ACCOUNT}:anomalymonitor/{suffix}"


def budget_file(**anomaly: Any) -> BudgetFile:
    document: dict[str, Any] = {
        "budgets": [
            {"name": "research-monthly", "scope": {"team": "research"}, "monthly_usd": 80000},
            {"name": "research-llama", "scope": {"team": "research", "model": "llama-70b"}, "monthly_usd": 50000},
            {"name": "platform-inference", "scope": {"team": "platform"}, "monthly_usd": 20000},
        ],
        "anomaly_detection": {
            "threshold_usd": 100,
            "frequency": "DAILY",
            "subscribers": ["finops@example.com", "alice@example.com"],
            **anomaly,
        },
    }
    return parse_budget_file(document, "budgets.yaml")


def team_monitor(team: str, suffix: str) -> dict[str, Any]:
    return {
        "MonitorArn": monitor_arn(suffix),
        "MonitorName": f"gpucost-team-{team}",
        "CreationDate": CREATED,
        "MonitorType": "CUSTOM",
        "MonitorSpecification": {"Tags": {"Key": "team", "Values": [team], "MatchOptions": ["EQUALS"]}},
    }


def subscription(threshold: str = "100", subscribers: tuple[str, ...] = ("finops@example.com", "alice@example.com"),
                 monitors: tuple[str, ...] = ("p-1", "r-1")) -> dict[str, Any]:
    return {
        "SubscriptionArn": SUBSCRIPTION_ARN,
        "AccountId": ACCOUNT,
        "SubscriptionName": "gpucost-anomalies",
        "MonitorArnList": [monitor_arn(m) for m in monitors],
        "Subscribers": [{"Address": a, "Type": "EMAIL", "Status": "CONFIRMED"} for a in subscribers],
        "Frequency": "DAILY",
        "ThresholdExpression": {"Dimensions": {"Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE", "Values": [threshold],
                                               "MatchOptions": ["GREATER_THAN_OR_EQUAL"]}},
    }


def threshold_expression(usd: str) -> dict[str, Any]:
    return {"Dimensions": {"Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE", "Values": [usd],
                           "MatchOptions": ["GREATER_THAN_OR_EQUAL"]}}


@pytest.fixture
def ce() -> Any:
    return boto3.client("ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def describe(stub: Stubber, monitors: list[dict[str, Any]], subscriptions: list[dict[str, Any]]) -> None:
    stub.add_response("get_anomaly_monitors", {"AnomalyMonitors": monitors}, {"MaxResults": 100})
    stub.add_response("get_anomaly_subscriptions", {"AnomalySubscriptions": subscriptions}, {"MaxResults": 100})


def no_sleep(_seconds: float) -> None:
    pass


def test_first_sync_creates_one_tag_monitor_per_team_then_the_subscription_over_them(ce: Any) -> None:
    stub = Stubber(ce)
    describe(stub, [], [])
    for team, suffix in (("platform", "p-1"), ("research", "r-1")):
        stub.add_response(
            "create_anomaly_monitor",
            {"MonitorArn": monitor_arn(suffix)},
            {"AnomalyMonitor": {"MonitorName": f"gpucost-team-{team}", "MonitorType": "CUSTOM",
                                "MonitorSpecification": {"Tags": {"Key": "team", "Values": [team],
                                                                  "MatchOptions": ["EQUALS"]}}}},
        )
    stub.add_response(
        "create_anomaly_subscription",
        {"SubscriptionArn": SUBSCRIPTION_ARN},
        {"AnomalySubscription": {
            "SubscriptionName": "gpucost-anomalies",
            "MonitorArnList": [monitor_arn("p-1"), monitor_arn("r-1")],
            "Subscribers": [{"Address": "finops@example.com", "Type": "EMAIL"},
                            {"Address": "alice@example.com", "Type": "EMAIL"}],
            "Frequency": "DAILY",
            "ThresholdExpression": threshold_expression("100"),
        }},
    )
    with stub:
        sync = AwsAnomalySync(ce)
        plan = sync.plan(budget_file())
        assert plan.render().splitlines() == [
            "create    aws anomaly monitor gpucost-team-platform: CUSTOM on tag team=platform",
            "create    aws anomaly monitor gpucost-team-research: CUSTOM on tag team=research",
            "create    aws anomaly subscription gpucost-anomalies: threshold 100 USD, DAILY, 2 subscribers",
        ]
        sync.apply(plan)
        stub.assert_no_pending_responses()


def test_second_sync_is_unchanged_and_writes_nothing(ce: Any) -> None:
    stub = Stubber(ce)
    foreign = {**team_monitor("search", "s-1"), "MonitorName": "finance-watch"}
    describe(stub, [team_monitor("platform", "p-1"), team_monitor("research", "r-1"), foreign], [subscription()])
    with stub:
        sync = AwsAnomalySync(ce)
        plan = sync.plan(budget_file())
        assert [str(c) for c in plan.changes] == [
            "unchanged aws anomaly monitor gpucost-team-platform",
            "unchanged aws anomaly monitor gpucost-team-research",
            "unchanged aws anomaly subscription gpucost-anomalies",
        ]
        sync.apply(plan)  # a write would find no stubbed response and fail
        stub.assert_no_pending_responses()


def test_changed_threshold_and_subscribers_update_the_subscription_and_a_dropped_team_is_orphaned(ce: Any) -> None:
    stub = Stubber(ce)
    current = subscription("50", ("finops@example.com",), ("p-1", "r-1", "o-1"))
    describe(stub, [team_monitor("platform", "p-1"), team_monitor("research", "r-1"), team_monitor("old", "o-1")],
             [current])
    stub.add_response(
        "update_anomaly_subscription",
        {"SubscriptionArn": SUBSCRIPTION_ARN},
        {
            "SubscriptionArn": SUBSCRIPTION_ARN,
            "MonitorArnList": [monitor_arn("p-1"), monitor_arn("r-1")],
            "Subscribers": [{"Address": "finops@example.com", "Type": "EMAIL"},
                            {"Address": "alice@example.com", "Type": "EMAIL"}],
            "Frequency": "DAILY",
            "ThresholdExpression": threshold_expression("250.5"),
        },
    )
    with stub:
        sync = AwsAnomalySync(ce)
        plan = sync.plan(budget_file(threshold_usd=250.5))
        assert [str(c) for c in plan.changes] == [
            "unchanged aws anomaly monitor gpucost-team-platform",
            "unchanged aws anomaly monitor gpucost-team-research",
            "orphaned  aws anomaly monitor gpucost-team-old: not asked for by the file; left in place",
            "update    aws anomaly subscription gpucost-anomalies: threshold 50 -> 250.5 USD; "
            "subscribers ['finops@example.com'] -> ['alice@example.com', 'finops@example.com']; monitors changed",
        ]
        sync.apply(plan)
        stub.assert_no_pending_responses()


def test_service_monitor_reuses_the_accounts_dimensional_one_and_is_unchanged(ce: Any) -> None:
    stub = Stubber(ce)
    existing = {"MonitorArn": monitor_arn("svc"), "MonitorName": "Default-Services-Monitor", "CreationDate": CREATED,
                "MonitorType": "DIMENSIONAL", "MonitorDimension": "SERVICE"}
    describe(stub, [existing], [subscription(monitors=("svc",))])
    with stub:
        plan = AwsAnomalySync(ce).plan(budget_file(monitor="service"))
        stub.assert_no_pending_responses()
    assert plan.by_action("unchanged") == ["monitor Default-Services-Monitor", "subscription gpucost-anomalies"]


def test_throttled_describe_is_retried_with_backoff(ce: Any) -> None:
    stub = Stubber(ce)
    for _ in range(2):
        stub.add_client_error("get_anomaly_monitors", "ThrottlingException", "Rate exceeded", 400,
                              expected_params={"MaxResults": 100})
    describe(stub, [team_monitor("platform", "p-1"), team_monitor("research", "r-1")], [subscription()])
    delays: list[float] = []
    with stub:
        plan = AwsAnomalySync(ce, base_delay=1.0, sleep=delays.append).plan(budget_file())
        stub.assert_no_pending_responses()
    assert len(plan.by_action("unchanged")) == 3
    assert len(delays) == 2 and 0.5 <= delays[0] <= 1.5 and 1.0 <= delays[1] <= 3.0


def test_persistent_throttling_or_access_denied_is_source_unavailable(ce: Any) -> None:
    stub = Stubber(ce)
    for _ in range(2):
        stub.add_client_error("get_anomaly_monitors", "ThrottlingException", "Rate exceeded", 400)
    stub.add_client_error("get_anomaly_monitors", "AccessDeniedException", "not allowed: ce:GetAnomalyMonitors", 400)
    with stub:
        sync = AwsAnomalySync(ce, attempts=2, sleep=no_sleep)
        with pytest.raises(SourceUnavailable, match=r"get_anomaly_monitors failed.*ThrottlingException"):
            sync.plan(budget_file())
        with pytest.raises(SourceUnavailable, match="AccessDeniedException"):
            sync.plan(budget_file())
        stub.assert_no_pending_responses()


def test_without_anomaly_detection_nothing_is_described() -> None:
    document = {"budgets": [{"name": "r", "scope": {"team": "r"}, "monthly_usd": 1}],
                "anomaly_detection": {"enabled": False, "threshold_usd": 100, "subscribers": ["a@example.com"]}}
    plan = AwsAnomalySync(object()).plan(parse_budget_file(document, "budgets.yaml"))
    assert plan.changes == () and plan.render() == "aws anomaly detection not enabled in the file"


def test_spec_defaults_to_daily_team_tag_monitors() -> None:
    settings = budget_file(frequency=None).anomaly_detection
    assert settings == AnomalyDetection("team_tag", 100.0, "DAILY", ("finops@example.com", "alice@example.com"))


@pytest.mark.parametrize(
    ("anomaly", "key_path", "problem"),
    [
        ({"threshold_usd": 0}, "anomaly_detection.threshold_usd", "must be greater than 0"),
        ({"frequency": "HOURLY"}, "anomaly_detection.frequency", "must be one of DAILY, WEEKLY, IMMEDIATE"),
        ({"monitor": "account"}, "anomaly_detection.monitor", "must be one of team_tag, service"),
        ({"subscribers": []}, "anomaly_detection.subscribers", "non-empty list"),
        ({"subscribers": ["not-an-email"]}, "anomaly_detection.subscribers[0]", "e-mail address with frequency DAILY"),
        ({"frequency": "IMMEDIATE"}, "anomaly_detection.subscribers[0]", "SNS topic ARN with frequency IMMEDIATE"),
        ({"enabled": "yes"}, "anomaly_detection.enabled", "must be true or false"),
        ({"threshold": 100}, "anomaly_detection.threshold", "unknown key"),
    ],
)
def test_invalid_anomaly_detection_names_file_key_and_value(anomaly: dict[str, Any], key_path: str,
                                                            problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        budget_file(**anomaly)
    assert raised.value.file == "budgets.yaml"
    assert raised.value.one_line().startswith(f"budgets.yaml: {key_path}: ")
    assert problem in raised.value.one_line()


def test_immediate_alerts_go_to_sns_topics() -> None:
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:cost-alerts"
    settings = budget_file(frequency="IMMEDIATE", subscribers=[topic]).anomaly_detection
    assert settings is not None and settings.subscribers == (topic,) and settings.frequency == "IMMEDIATE"
