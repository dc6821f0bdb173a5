"""AWS Cost Anomaly Detection: plan and apply the monitors and subscription `anomaly_detection` asks for.

`monitor: team_tag` gives one CUSTOM monitor per team of the file, named
`gpucost-team-<team>`, on the `team` cost-allocation tag; `monitor: service`
uses the account's DIMENSIONAL SERVICE monitor (AWS allows one per account, so
an existing one of any name is reused) or creates `gpucost-services`.  One
subscription, `gpucost-anomalies`, covers them with an absolute-impact
threshold.  The plan describes first and creates only what is missing; the
subscription is updated when its threshold, frequency, subscribers or
monitors differ.  Monitors are never deleted: `gpucost-*` monitors the file no
longer asks for are reported orphaned.  Throttled calls are retried with backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from gpucost.budgets.plan import MANAGED_PREFIX, Action, change_line, render_changes
from gpucost.budgets.retry import call_with_backoff, is_throttling
from gpucost.budgets.spec import AnomalyDetection, BudgetFile
from gpucost.errors import SourceUnavailable

__all__ = [
    "ANOMALY_SUBSCRIPTION_NAME",
    "AnomalyChange",
    "AnomalyPlan",
    "AwsAnomalySync",
    "DesiredMonitor",
    "desired_monitors",
]

log = logging.getLogger(__name__)

ANOMALY_SUBSCRIPTION_NAME = "gpucost-anomalies"
MONITOR_PREFIX = MANAGED_PREFIX
SERVICE_MONITOR_NAME = "gpucost-services"
TEAM_TAG_KEY = "team"


@dataclass(frozen=True, slots=True)
class DesiredMonitor:
    name: str
    team: str = ""
    """The team of a CUSTOM tag monitor; empty for the DIMENSIONAL SERVICE monitor."""

    def as_api(self) -> dict[str, Any]:
        if not self.team:
            return {"MonitorName": self.name, "MonitorType": "DIMENSIONAL", "MonitorDimension": "SERVICE"}
        return {
            "MonitorName": self.name,
            "MonitorType": "CUSTOM",
            "MonitorSpecification": {
                "Tags": {"Key": TEAM_TAG_KEY, "Values": [self.team], "MatchOptions": ["EQUALS"]}
            },
        }

    def describe(self) -> str:
        return f"CUSTOM on tag {TEAM_TAG_KEY}={self.team}" if self.team else "DIMENSIONAL SERVICE"


@dataclass(frozen=True, slots=True)
class AnomalyChange:
    action: Action
    kind: Literal["monitor", "subscription"]
    name: str
    detail: str = ""
    monitor: DesiredMonitor | None = None
    arn: str = ""
    """The existing resource's ARN (unchanged/update/orphaned)."""

    def __str__(self) -> str:
        return change_line(self.action, f"aws anomaly {self.kind}", self.name, self.detail)


@dataclass(frozen=True, slots=True)
class AnomalyPlan:
    changes: tuple[AnomalyChange, ...] = field(default=())
    settings: AnomalyDetection | None = None

    def by_action(self, action: Action) -> list[str]:
        return [f"{c.kind} {c.name}" for c in self.changes if c.action == action]

    def render(self) -> str:
        return render_changes(self.changes, "aws anomaly detection not enabled in the file")


def desired_monitors(budget_file: BudgetFile) -> list[DesiredMonitor]:
    settings = budget_file.anomaly_detection
    if settings is None:
        return []
    if settings.monitor == "service":
        return [DesiredMonitor(SERVICE_MONITOR_NAME)]
    return [DesiredMonitor(f"{MONITOR_PREFIX}team-{team}", team) for team in budget_file.teams()]


def _usd(value: float) -> str:
    return format(Decimal(str(round(value, 2))).normalize(), "f")


def threshold_expression(threshold_usd: float) -> dict[str, Any]:
    """Total impact >= threshold, the form AWS recommends over the deprecated `Threshold`."""
    return {
        "Dimensions": {
            "Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
            "Values": [_usd(threshold_usd)],
            "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
        }
    }


def _subscribers(settings: AnomalyDetection) -> list[dict[str, str]]:
    kind = "SNS" if settings.frequency == "IMMEDIATE" else "EMAIL"
    return [{"Address": address, "Type": kind} for address in settings.subscribers]


def _current_threshold(subscription: dict[str, Any]) -> float | None:
    dimensions = subscription.get("ThresholdExpression", {}).get("Dimensions", {})
    if dimensions.get("Key") == "ANOMALY_TOTAL_IMPACT_ABSOLUTE" and dimensions.get("Values"):
        return float(dimensions["Values"][0])
    legacy = subscription.get("Threshold")
    return float(legacy) if legacy is not None else None


class AwsAnomalySync:
    """Plan and apply anomaly monitors and the subscription through a boto3 `ce` client."""

    def __init__(
        self, client: Any, *, attempts: int = 4, base_delay: float = 0.5, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._client = client
        self._attempts = attempts
        self._base_delay = base_delay
        self._sleep = sleep

    def monitors(self) -> list[dict[str, Any]]:
        return self._paged("get_anomaly_monitors", "AnomalyMonitors")

    def subscriptions(self) -> list[dict[str, Any]]:
        return self._paged("get_anomaly_subscriptions", "AnomalySubscriptions")

    def plan(self, budget_file: BudgetFile) -> AnomalyPlan:
        settings = budget_file.anomaly_detection
        if settings is None:
            return AnomalyPlan()
        existing = self.monitors()
        by_name = {str(m["MonitorName"]): m for m in existing}
        changes: list[AnomalyChange] = []
        arns: list[str] = []
        wanted = desired_monitors(budget_file)
        for desired in wanted:
            current = by_name.get(desired.name)
            if current is None and not desired.team:
                current = next(
                    (m for m in existing
                     if m.get("MonitorType") == "DIMENSIONAL" and m.get("MonitorDimension") == "SERVICE"),
                    None,
                )
            if current is None:
                changes.append(AnomalyChange("create", "monitor", desired.name, desired.describe(), desired))
                continue
            arns.append(str(current["MonitorArn"]))
            name = str(current["MonitorName"])
            changes.append(AnomalyChange("unchanged", "monitor", name, monitor=desired, arn=arns[-1]))
        wanted_names = {d.name for d in wanted}
        for name in sorted(by_name):
            kept = any(c.name == name for c in changes)
            if name.startswith(MONITOR_PREFIX) and name not in wanted_names and not kept:
                changes.append(AnomalyChange("orphaned", "monitor", name, "not asked for by the file; left in place",
                                             arn=str(by_name[name]["MonitorArn"])))
        changes.append(self._plan_subscription(settings, arns, creating=any(c.action == "create" for c in changes)))
        return AnomalyPlan(tuple(changes), settings)

    def _plan_subscription(self, settings: AnomalyDetection, arns: list[str], *, creating: bool) -> AnomalyChange:
        current = next(
            (s for s in self.subscriptions() if s.get("SubscriptionName") == ANOMALY_SUBSCRIPTION_NAME), None
        )
        if current is None:
            return AnomalyChange(
                "create", "subscription", ANOMALY_SUBSCRIPTION_NAME,
                f"threshold {_usd(settings.threshold_usd)} USD, {settings.frequency}, "
                f"{len(settings.subscribers)} subscribers",
            )
        differences: list[str] = []
        threshold = _current_threshold(current)
        if threshold is None or abs(threshold - settings.threshold_usd) > 0.005:
            shown = _usd(threshold) if threshold is not None else "none"
            differences.append(f"threshold {shown} -> {_usd(settings.threshold_usd)} USD")
        if current.get("Frequency") != settings.frequency:
            differences.append(f"frequency {current.get('Frequency')} -> {settings.frequency}")
        have = sorted((str(s.get("Type")), str(s.get("Address"))) for s in current.get("Subscribers", []))
        want = sorted((s["Type"], s["Address"]) for s in _subscribers(settings))
        if have != want:
            differences.append(f"subscribers {[a for _t, a in have]} -> {[a for _t, a in want]}")
        if creating or sorted(current.get("MonitorArnList", [])) != sorted(arns):
            differences.append("monitors changed")
        arn = str(current["SubscriptionArn"])
        if differences:
            return AnomalyChange("update", "subscription", ANOMALY_SUBSCRIPTION_NAME, "; ".join(differences), arn=arn)
        return AnomalyChange("unchanged", "subscription", ANOMALY_SUBSCRIPTION_NAME, arn=arn)

    def apply(self, plan: AnomalyPlan) -> None:
        settings = plan.settings
        if settings is None:
            return
        arns: list[str] = []
        for change in plan.changes:
            if change.kind != "monitor" or change.action == "orphaned":
                continue
            if change.action == "create" and change.monitor is not None:
                answer = self._call("create_anomaly_monitor", AnomalyMonitor=change.monitor.as_api())
                arns.append(str(answer["MonitorArn"]))
                log.info("aws anomaly detection: %s", change)
            else:
                arns.append(change.arn)
        for change in plan.changes:
            if change.kind != "subscription" or change.action == "unchanged":
                continue
            if change.action == "create":
                self._call("create_anomaly_subscription", AnomalySubscription={
                    "SubscriptionName": ANOMALY_SUBSCRIPTION_NAME,
                    "MonitorArnList": arns,
                    "Subscribers": _subscribers(settings),
                    "Frequency": settings.frequency,
                    "ThresholdExpression": threshold_expression(settings.threshold_usd),
                })
            else:
                self._call(
                    "update_anomaly_subscription",
                    SubscriptionArn=change.arn,
                    MonitorArnList=arns,
                    Subscribers=_subscribers(settings),
                    Frequency=settings.frequency,
                    ThresholdExpression=threshold_expression(settings.threshold_usd),
                )
            log.info("aws anomaly detection: %s", change)

    def _paged(self, operation: str, key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"MaxResults": 100}
        while True:
            answer = self._call(operation, **kwargs)
            found.extend(answer.get(key, []))
            token = answer.get("NextPageToken")
            if not token:
                return found
            kwargs["NextPageToken"] = token

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        def call() -> dict[str, Any]:
            answer: dict[str, Any] = getattr(self._client, operation)(**kwargs)
            return answer

        try:
            return call_with_backoff(
                call, retryable=is_throttling, what=f"Cost Explorer {operation}",
                attempts=self._attempts, base_delay=self._base_delay, sleep=self._sleep,
            )
        except (ClientError, BotoCoreError) as err:
            raise SourceUnavailable(f"AWS Cost Explorer {operation} failed: {err}") from err
