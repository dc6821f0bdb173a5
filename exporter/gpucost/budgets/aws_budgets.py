"""AWS Budgets: plan and apply COST budgets mirroring budgets.yaml, and read their spend back.

Each gpucost budget becomes the AWS budget `gpucost-<name>`, a monthly COST
budget filtered by the cost-allocation tag of its scope, with an ACTUAL
notification per threshold and a FORECASTED one at 100 %.  AWS ORs the values
of `TagKeyValue`, so a team+model budget filters on the model tag alone (the
narrower tag); see docs/budgets.md.  Budgets named `gpucost-*` with no entry in
the file are reported as orphaned and never deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gpucost.budgets.plan import MANAGED_PREFIX, ORPHANED_DETAIL, Action, change_line, render_changes
from gpucost.budgets.spec import Budget, BudgetFile, Month
from gpucost.budgets.state import SidecarState
from gpucost.errors import SourceUnavailable

__all__ = [
    "AWS_BUDGET_PREFIX",
    "AwsBudgetChange",
    "AwsBudgetPlan",
    "AwsBudgetSync",
    "DesiredAwsBudget",
    "Notification",
    "desired_aws_budgets",
]

log = logging.getLogger(__name__)

AWS_BUDGET_PREFIX = MANAGED_PREFIX


@dataclass(frozen=True, slots=True, order=True)
class Notification:
    notification_type: str  # ACTUAL | FORECASTED
    threshold_percent: float

    def as_api(self) -> dict[str, Any]:
        return {
            "NotificationType": self.notification_type,
            "ComparisonOperator": "GREATER_THAN",
            "Threshold": self.threshold_percent,
            "ThresholdType": "PERCENTAGE",
        }


@dataclass(frozen=True, slots=True)
class DesiredAwsBudget:
    gpucost_name: str
    aws_name: str
    limit_usd: float
    tag_filters: tuple[str, ...]
    notifications: tuple[Notification, ...]
    owners: tuple[str, ...] = ()

    def as_api(self) -> dict[str, Any]:
        return {
            "BudgetName": self.aws_name,
            "BudgetLimit": {"Amount": _amount(self.limit_usd), "Unit": "USD"},
            "CostFilters": {"TagKeyValue": list(self.tag_filters)},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        }


@dataclass(frozen=True, slots=True)
class AwsBudgetChange:
    action: Action
    aws_name: str
    detail: str = ""
    desired: DesiredAwsBudget | None = None
    add_notifications: tuple[Notification, ...] = ()
    remove_notifications: tuple[Notification, ...] = ()
    budget_changed: bool = False

    def __str__(self) -> str:
        return change_line(self.action, "aws budget", self.aws_name, self.detail)


@dataclass(frozen=True, slots=True)
class AwsBudgetPlan:
    changes: tuple[AwsBudgetChange, ...] = field(default=())

    def by_action(self, action: Action) -> list[str]:
        return [change.aws_name for change in self.changes if change.action == action]

    def render(self) -> str:
        return render_changes(self.changes, "no AWS budgets in the file")


def desired_aws_budgets(budget_file: BudgetFile, month: Month) -> list[DesiredAwsBudget]:
    return [
        DesiredAwsBudget(
            gpucost_name=budget.name,
            aws_name=AWS_BUDGET_PREFIX + budget.name,
            limit_usd=amount,
            tag_filters=(_tag_filter(budget),),
            notifications=_notifications(budget),
            owners=budget.owners,
        )
        for budget, amount in budget_file.amounts_for(month)
    ]


def _tag_filter(budget: Budget) -> str:
    if budget.scope.model:
        return f"user:model${budget.scope.model}"
    return f"user:team${budget.scope.team}"


def _notifications(budget: Budget) -> tuple[Notification, ...]:
    actual = [Notification("ACTUAL", percent) for percent in budget.thresholds_percent]
    return (*actual, Notification("FORECASTED", 100.0))


def _amount(usd: float) -> str:
    return format(Decimal(str(round(usd, 2))).normalize(), "f")


class AwsBudgetSync:
    """Plan, apply and read back AWS budgets through a boto3 `budgets` client."""

    def __init__(
        self,
        client: Any,
        account_id: str,
        *,
        subscribers: Sequence[dict[str, str]] = (),
        state: SidecarState | None = None,
    ) -> None:
        self._client = client
        self._account_id = account_id
        self._extra_subscribers = list(subscribers)
        self._state = state

    def existing(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"AccountId": self._account_id, "MaxResults": 100}
        while True:
            answer = self._call("describe_budgets", **kwargs)
            for item in answer.get("Budgets", []):
                if str(item["BudgetName"]).startswith(AWS_BUDGET_PREFIX):
                    found[str(item["BudgetName"])] = item
            token = answer.get("NextToken")
            if not token:
                return found
            kwargs["NextToken"] = token

    def existing_notifications(self, aws_name: str) -> set[Notification]:
        answer = self._call(
            "describe_notifications_for_budget", AccountId=self._account_id, BudgetName=aws_name
        )
        return {
            Notification(str(item["NotificationType"]), float(item["Threshold"]))
            for item in answer.get("Notifications", [])
        }

    def plan(self, budget_file: BudgetFile, month: Month) -> AwsBudgetPlan:
        existing = self.existing()
        changes: list[AwsBudgetChange] = []
        desired_names: set[str] = set()
        for desired in desired_aws_budgets(budget_file, month):
            desired_names.add(desired.aws_name)
            current = existing.get(desired.aws_name)
            if current is None:
                changes.append(
                    AwsBudgetChange(
                        "create", desired.aws_name, f"limit {_amount(desired.limit_usd)} USD", desired
                    )
                )
                continue
            budget_differences = _budget_differences(current, desired)
            have = self.existing_notifications(desired.aws_name)
            # Without a subscriber AWS cannot hold a notification; owners or an SNS topic are needed.
            want = set(desired.notifications) if self._subscribers(desired.owners) else set()
            add = tuple(sorted(want - have))
            remove = tuple(sorted(have - want))
            differences = list(budget_differences)
            if add or remove:
                differences.append(f"notifications +{len(add)} -{len(remove)}")
            if differences:
                changes.append(
                    AwsBudgetChange(
                        "update",
                        desired.aws_name,
                        "; ".join(differences),
                        desired,
                        add,
                        remove,
                        budget_changed=bool(budget_differences),
                    )
                )
            else:
                changes.append(AwsBudgetChange("unchanged", desired.aws_name, desired=desired))
        for name in sorted(set(existing) - desired_names):
            changes.append(AwsBudgetChange("orphaned", name, ORPHANED_DETAIL))
        return AwsBudgetPlan(tuple(changes))

    def apply(self, plan: AwsBudgetPlan) -> None:
        for change in plan.changes:
            desired = change.desired
            if desired is None or change.action in ("unchanged", "orphaned"):
                continue
            if change.action == "create":
                self._create(desired)
            else:
                self._update(change, desired)
            log.info("aws budgets: %s", change)

    def _subscribers(self, budget_file_owners: Sequence[str]) -> list[dict[str, str]]:
        emails = [{"SubscriptionType": "EMAIL", "Address": owner} for owner in budget_file_owners]
        return (self._extra_subscribers + emails)[:10]

    def _create(self, desired: DesiredAwsBudget) -> None:
        subscribers = self._subscribers(desired.owners)
        kwargs: dict[str, Any] = {"AccountId": self._account_id, "Budget": desired.as_api()}
        if subscribers:
            kwargs["NotificationsWithSubscribers"] = [
                {"Notification": notification.as_api(), "Subscribers": subscribers}
                for notification in desired.notifications
            ]
        from botocore.exceptions import ClientError

        try:
            self._call("create_budget", **kwargs)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "DuplicateRecordException":
                raise
            log.info("aws budgets: %s already exists (created concurrently)", desired.aws_name)

    def _update(self, change: AwsBudgetChange, desired: DesiredAwsBudget) -> None:
        if change.budget_changed:
            self._call("update_budget", AccountId=self._account_id, NewBudget=desired.as_api())
        subscribers = self._subscribers(desired.owners)
        for notification in change.remove_notifications:
            self._call(
                "delete_notification",
                AccountId=self._account_id,
                BudgetName=desired.aws_name,
                Notification=notification.as_api(),
            )
        if not subscribers:
            return
        for notification in change.add_notifications:
            self._call(
                "create_notification",
                AccountId=self._account_id,
                BudgetName=desired.aws_name,
                Notification=notification.as_api(),
                Subscribers=subscribers,
            )

    def read_spend(self, budget_file: BudgetFile) -> dict[str, tuple[float, float]]:
        """Actual and forecast spend per gpucost budget, as AWS computes them; published to the state."""
        spend: dict[str, tuple[float, float]] = {}
        for name, item in self.existing().items():
            gpucost_name = name.removeprefix(AWS_BUDGET_PREFIX)
            if budget_file.by_name(gpucost_name) is None:
                continue
            calculated = item.get("CalculatedSpend", {})
            actual = float(calculated.get("ActualSpend", {}).get("Amount", 0.0))
            forecast = float(calculated.get("ForecastedSpend", {}).get("Amount", 0.0))
            spend[gpucost_name] = (actual, forecast)
            if self._state is not None:
                self._state.set_cloud_spend("aws", gpucost_name, "actual", actual)
                self._state.set_cloud_spend("aws", gpucost_name, "forecast", forecast)
        return spend

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("DuplicateRecordException",):
                raise
            raise SourceUnavailable(f"AWS Budgets {operation} failed: {err}") from err
        except BotoCoreError as err:
            raise SourceUnavailable(f"AWS Budgets {operation} failed: {err}") from err
        return answer


def _budget_differences(current: dict[str, Any], desired: DesiredAwsBudget) -> list[str]:
    differences: list[str] = []
    limit = current.get("BudgetLimit", {})
    if abs(float(limit.get("Amount", 0.0)) - desired.limit_usd) > 0.005:
        differences.append(f"limit {limit.get('Amount')} -> {_amount(desired.limit_usd)} USD")
    filters = sorted(current.get("CostFilters", {}).get("TagKeyValue", []))
    if filters != sorted(desired.tag_filters):
        differences.append(f"tag filter {filters} -> {list(desired.tag_filters)}")
    if current.get("TimeUnit") != "MONTHLY" or current.get("BudgetType") != "COST":
        differences.append("time unit/type -> MONTHLY COST")
    return differences
