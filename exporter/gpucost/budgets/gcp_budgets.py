"""GCP Cloud Billing budgets: plan and apply budgets mirroring budgets.yaml.

Each gpucost budget becomes the Cloud Billing budget with display name
`gpucost-<name>`: a monthly specified amount in USD, filtered by one label
(the Budget API allows a single label key with a single value, so a
team+model budget filters on `model`) and optionally by projects, with a
CURRENT_SPEND rule per threshold plus a FORECASTED_SPEND rule at 100 %.
The Budget API returns no spend; see `gcp_spend` for how spend is read.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gpucost.budgets.plan import MANAGED_PREFIX, ORPHANED_DETAIL, Action, change_line, render_changes
from gpucost.budgets.spec import Budget, BudgetFile, Month
from gpucost.errors import SourceUnavailable

__all__ = [
    "GCP_BUDGET_PREFIX",
    "DesiredGcpBudget",
    "GcpBudgetChange",
    "GcpBudgetPlan",
    "GcpBudgetSync",
    "ThresholdRule",
    "desired_gcp_budgets",
    "gcp_call_errors",
    "gcp_rest_client_options",
    "make_budget_client",
]

log = logging.getLogger(__name__)

GCP_BUDGET_PREFIX = MANAGED_PREFIX


@dataclass(frozen=True, slots=True, order=True)
class ThresholdRule:
    ratio: float
    basis: Literal["CURRENT_SPEND", "FORECASTED_SPEND"]


@dataclass(frozen=True, slots=True)
class DesiredGcpBudget:
    gpucost_name: str
    display_name: str
    amount_usd: float
    label: tuple[str, str]
    projects: tuple[str, ...]
    rules: tuple[ThresholdRule, ...]


@dataclass(frozen=True, slots=True)
class GcpBudgetChange:
    action: Action
    display_name: str
    detail: str = ""
    desired: DesiredGcpBudget | None = None
    resource_name: str = ""
    update_paths: tuple[str, ...] = ()

    def __str__(self) -> str:
        return change_line(self.action, "gcp budget", self.display_name, self.detail)


@dataclass(frozen=True, slots=True)
class GcpBudgetPlan:
    changes: tuple[GcpBudgetChange, ...] = field(default=())

    def by_action(self, action: Action) -> list[str]:
        return [change.display_name for change in self.changes if change.action == action]

    def render(self) -> str:
        return render_changes(self.changes, "no GCP budgets in the file")


def gcp_call_errors() -> tuple[type[BaseException], ...]:
    """What a google-cloud REST call raises when the API cannot be reached or refuses.

    API errors are `GoogleAPIError`; a refused or dropped connection surfaces from the
    REST transport as a `requests` exception, and token refresh failures as google-auth's.
    """
    import requests
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    return (exceptions.GoogleAPIError, requests.RequestException, auth_exceptions.GoogleAuthError)


def make_budget_client(
    api_endpoint: str | None = None, anonymous: bool = False, credentials: Any = None
) -> Any:
    """A REST BudgetServiceClient; credentials from Application Default Credentials unless `anonymous`."""
    from google.cloud.billing import budgets_v1

    return budgets_v1.BudgetServiceClient(**gcp_rest_client_options(api_endpoint, anonymous, credentials))


def gcp_rest_client_options(api_endpoint: str | None, anonymous: bool, credentials: Any) -> dict[str, Any]:
    """Keyword arguments of a google-cloud REST client: transport, endpoint and credentials.

    Without `credentials` or `anonymous` the client finds Application Default Credentials itself.
    """
    options: dict[str, Any] = {"transport": "rest"}
    if api_endpoint:
        options["client_options"] = {"api_endpoint": api_endpoint}
    if anonymous:
        from google.auth.credentials import AnonymousCredentials

        options["credentials"] = AnonymousCredentials()  # type: ignore[no-untyped-call]  # google-auth lacks annotations here
    elif credentials is not None:  # a key file (--gcp.credentials-file) instead of the ADC chain
        options["credentials"] = credentials
    return options


def desired_gcp_budgets(
    budget_file: BudgetFile, month: Month, projects: Sequence[str] = ()
) -> list[DesiredGcpBudget]:
    project_names = tuple(sorted(f"projects/{p.removeprefix('projects/')}" for p in projects))
    return [
        DesiredGcpBudget(
            gpucost_name=budget.name,
            display_name=GCP_BUDGET_PREFIX + budget.name,
            amount_usd=amount,
            label=_label(budget),
            projects=project_names,
            rules=_rules(budget),
        )
        for budget, amount in budget_file.amounts_for(month)
    ]


def _label(budget: Budget) -> tuple[str, str]:
    return ("model", budget.scope.model) if budget.scope.model else ("team", budget.scope.team)


def _rules(budget: Budget) -> tuple[ThresholdRule, ...]:
    current = [
        ThresholdRule(round(percent / 100.0, 6), "CURRENT_SPEND") for percent in budget.thresholds_percent
    ]
    return tuple(sorted([*current, ThresholdRule(1.0, "FORECASTED_SPEND")]))


class GcpBudgetSync:
    def __init__(self, client: Any, billing_account: str, *, pubsub_topic: str = "") -> None:
        self._client = client
        self._parent = f"billingAccounts/{billing_account.removeprefix('billingAccounts/')}"
        self._pubsub_topic = pubsub_topic

    def existing(self) -> dict[str, Any]:
        try:
            budgets = list(self._client.list_budgets(parent=self._parent))
        except gcp_call_errors() as err:
            raise SourceUnavailable(f"GCP Budget API list_budgets failed: {err}") from err
        return {str(b.display_name): b for b in budgets if str(b.display_name).startswith(GCP_BUDGET_PREFIX)}

    def plan(self, budget_file: BudgetFile, month: Month, projects: Sequence[str] = ()) -> GcpBudgetPlan:
        existing = self.existing()
        changes: list[GcpBudgetChange] = []
        wanted: set[str] = set()
        for desired in desired_gcp_budgets(budget_file, month, projects):
            wanted.add(desired.display_name)
            current = existing.get(desired.display_name)
            if current is None:
                changes.append(
                    GcpBudgetChange(
                        "create", desired.display_name, f"amount {desired.amount_usd:g} USD", desired
                    )
                )
                continue
            paths, details = _differences(current, desired, self._pubsub_topic)
            action: Action = "update" if paths else "unchanged"
            changes.append(
                GcpBudgetChange(
                    action, desired.display_name, "; ".join(details), desired, str(current.name), tuple(paths)
                )
            )
        for name in sorted(set(existing) - wanted):
            changes.append(GcpBudgetChange("orphaned", name, ORPHANED_DETAIL))
        return GcpBudgetPlan(tuple(changes))

    def apply(self, plan: GcpBudgetPlan) -> None:
        from google.protobuf import field_mask_pb2

        for change in plan.changes:
            desired = change.desired
            if desired is None or change.action not in ("create", "update"):
                continue
            message = self._to_message(desired)
            try:
                if change.action == "create":
                    self._client.create_budget(parent=self._parent, budget=message)
                else:
                    message.name = change.resource_name
                    mask = field_mask_pb2.FieldMask(paths=list(change.update_paths))
                    self._client.update_budget(budget=message, update_mask=mask)
            except gcp_call_errors() as err:
                raise SourceUnavailable(
                    f"GCP Budget API {change.action} {change.display_name} failed: {err}"
                ) from err
            log.info("gcp budgets: %s", change)

    def _to_message(self, desired: DesiredGcpBudget) -> Any:
        from google.cloud.billing import budgets_v1

        units = math.floor(desired.amount_usd)
        nanos = round((desired.amount_usd - units) * 1e9)
        budget = budgets_v1.Budget(
            display_name=desired.display_name,
            amount=budgets_v1.BudgetAmount(
                specified_amount={"currency_code": "USD", "units": units, "nanos": nanos}
            ),
            budget_filter=budgets_v1.Filter(
                labels={desired.label[0]: [desired.label[1]]},
                projects=list(desired.projects),
                calendar_period=budgets_v1.CalendarPeriod.MONTH,
            ),
            threshold_rules=[
                budgets_v1.ThresholdRule(
                    threshold_percent=rule.ratio, spend_basis=budgets_v1.ThresholdRule.Basis[rule.basis]
                )
                for rule in desired.rules
            ],
        )
        if self._pubsub_topic:
            budget.notifications_rule = budgets_v1.NotificationsRule(
                pubsub_topic=self._pubsub_topic, schema_version="1.0"
            )
        return budget


def _differences(current: Any, desired: DesiredGcpBudget, pubsub_topic: str) -> tuple[list[str], list[str]]:
    paths: list[str] = []
    details: list[str] = []
    money = current.amount.specified_amount
    amount = float(money.units) + float(money.nanos) / 1e9
    if abs(amount - desired.amount_usd) > 0.005:
        paths.append("amount")
        details.append(f"amount {amount:g} -> {desired.amount_usd:g} USD")
    labels = {str(key): sorted(str(v) for v in value) for key, value in current.budget_filter.labels.items()}
    projects = sorted(str(p) for p in current.budget_filter.projects)
    # A budget edited to another period (quarter, year, custom) would compare amounts of different periods.
    monthly = _enum_name(current.budget_filter.calendar_period) == "MONTH"
    if labels != {desired.label[0]: [desired.label[1]]} or projects != list(desired.projects) or not monthly:
        paths.append("budget_filter")
        details.append(f"filter {labels} {projects} -> {dict([desired.label])} {list(desired.projects)}")
    rules = sorted(
        ThresholdRule(round(float(rule.threshold_percent), 6), _basis_name(rule.spend_basis))
        for rule in current.threshold_rules
    )
    if rules != list(desired.rules):
        paths.append("threshold_rules")
        details.append(f"threshold rules {len(rules)} -> {len(desired.rules)}")
    if pubsub_topic and str(current.notifications_rule.pubsub_topic) != pubsub_topic:
        paths.append("notifications_rule")
        details.append(f"pubsub topic -> {pubsub_topic}")
    return paths, details


def _enum_name(value: Any) -> str:
    return str(getattr(value, "name", value))


def _basis_name(basis: Any) -> Literal["CURRENT_SPEND", "FORECASTED_SPEND"]:
    name = _enum_name(basis)
    return "FORECASTED_SPEND" if name == "FORECASTED_SPEND" else "CURRENT_SPEND"
