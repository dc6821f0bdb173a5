"""The budgets file's frozen values: months, scopes, budgets, fixed costs and the whole file.

`gpucost.budgets.spec` builds these from YAML and re-exports them, so callers import from there; this
module holds the values and the queries on them (overlaps, a team's budgets and channel), no parsing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BUDGET_RESOURCES",
    "DEFAULT_THRESHOLDS_PERCENT",
    "SCOPE_KEYS",
    "AnomalyDetection",
    "AnomalyFrequency",
    "AnomalyMonitorKind",
    "Budget",
    "BudgetFile",
    "BudgetResources",
    "BudgetScope",
    "EnforceMode",
    "FixedCost",
    "Month",
    "Overlap",
    "budgets_for_team",
    "default_team_channel",
    "find_overlaps",
    "scope_mapping",
    "threshold_label",
]

DEFAULT_THRESHOLDS_PERCENT: tuple[float, ...] = (50.0, 80.0, 100.0, 125.0)
EnforceMode = Literal["off", "quota"]
# What a budget's spend counts: the GPUs' cost (the default, as before issue #19) or the whole node's
# (GPU, CPU, memory, storage). The sidecar publishes it as the `resources` label of gpucost_budget_usd.
BudgetResources = Literal["gpu", "node"]
BUDGET_RESOURCES: tuple[BudgetResources, ...] = ("gpu", "node")
SCOPE_KEYS = ("team", "model", "namespace", "cost_center", "cluster")
AnomalyMonitorKind = Literal["team_tag", "service"]
AnomalyFrequency = Literal["DAILY", "WEEKLY", "IMMEDIATE"]


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month, `2026-01`."""

    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @classmethod
    def of(cls, moment: dt.date) -> Month:
        return cls(moment.year, moment.month)

    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """What a budget covers; unset dimensions are empty strings and match everything."""

    team: str
    model: str = ""
    namespace: str = ""
    cost_center: str = ""
    cluster: str = ""

    def label_values(self) -> tuple[str, str, str, str, str]:
        return (self.team, self.model, self.namespace, self.cost_center, self.cluster)

    def overlaps(self, other: BudgetScope) -> bool:
        """Two scopes overlap when some spend could fall in both: each dimension equal or unset on a side."""
        return all(
            not mine or not theirs or mine == theirs
            for mine, theirs in zip(self.label_values(), other.label_values(), strict=True)
        )

    def describe(self) -> str:
        return ",".join(
            f"{key}={value}" for key, value in zip(SCOPE_KEYS, self.label_values(), strict=True) if value
        )


@dataclass(frozen=True, slots=True)
class Budget:
    name: str
    scope: BudgetScope
    monthly_usd: float
    thresholds_percent: tuple[float, ...] = DEFAULT_THRESHOLDS_PERCENT
    slack_channel: str = ""
    owners: tuple[str, ...] = ()
    start_month: Month | None = None
    end_month: Month | None = None
    monthly_overrides: tuple[tuple[Month, float], ...] = ()
    enforce: EnforceMode = "off"
    hard_threshold_percent: float | None = None
    namespaces: tuple[str, ...] = ()
    resources: BudgetResources = "gpu"

    def active_in(self, month: Month) -> bool:
        if self.start_month is not None and month < self.start_month:
            return False
        return self.end_month is None or month <= self.end_month

    def amount_for(self, month: Month) -> float | None:
        """The budget in USD for `month`, or None when the budget does not cover it."""
        if not self.active_in(month):
            return None
        for override_month, amount in self.monthly_overrides:
            if override_month == month:
                return amount
        return self.monthly_usd

    def enforcement_threshold_percent(self) -> float:
        return (
            self.hard_threshold_percent
            if self.hard_threshold_percent is not None
            else self.thresholds_percent[-1]
        )

    def enforcement_namespaces(self) -> tuple[str, ...]:
        if self.namespaces:
            return self.namespaces
        return (self.scope.namespace,) if self.scope.namespace else ()


@dataclass(frozen=True, slots=True)
class FixedCost:
    """A cost outside the GPUs (licences, support) spread over teams by `allocation`."""

    name: str
    monthly_usd: float
    allocation: str  # "proportional", "even" or "team:<name>"


@dataclass(frozen=True, slots=True)
class Overlap:
    first: str
    second: str
    scope: str

    def __str__(self) -> str:
        return f"budgets {self.first!r} and {self.second!r} overlap ({self.scope}); spend counts in both"


@dataclass(frozen=True, slots=True)
class AnomalyDetection:
    """AWS Cost Anomaly Detection for the file's teams: monitors plus one subscription with a threshold."""

    monitor: AnomalyMonitorKind
    """`team_tag`: one CUSTOM monitor per team on the `team` cost-allocation tag; `service`: the DIMENSIONAL one."""
    threshold_usd: float
    """Alert when an anomaly's total impact is at least this many USD."""
    frequency: AnomalyFrequency
    subscribers: tuple[str, ...]
    """E-mail addresses (DAILY, WEEKLY) or SNS topic ARNs (IMMEDIATE)."""


@dataclass(frozen=True, slots=True)
class BudgetFile:
    budgets: tuple[Budget, ...]
    fixed_costs: tuple[FixedCost, ...] = ()
    overlaps: tuple[Overlap, ...] = field(default=())
    anomaly_detection: AnomalyDetection | None = None
    """None when absent or `enabled: false`."""

    def teams(self) -> tuple[str, ...]:
        return tuple(sorted({budget.scope.team for budget in self.budgets}))

    def amounts_for(self, month: Month) -> Iterator[tuple[Budget, float]]:
        """Each budget that covers `month`, with its USD amount for that month, in file order."""
        for budget in self.budgets:
            amount = budget.amount_for(month)
            if amount is not None:
                yield budget, amount

    def by_name(self, name: str) -> Budget | None:
        return next((budget for budget in self.budgets if budget.name == name), None)

    def team_channel(self, team: str) -> str:
        """Where a team's team-wide messages go: the first `slack_channel` among its budgets, else the default.

        Budget alerts in bot mode use each budget's own channel (the `slack_channel` label); this is the one
        channel for what is per team: the weekly digest and a webhook-mode receiver.
        """
        channels = (budget.slack_channel for budget in budgets_for_team(self, team) if budget.slack_channel)
        return next(channels, default_team_channel(team))


def default_team_channel(team: str) -> str:
    return f"#team-{team}-alerts"


def threshold_label(percent: float) -> str:
    """80 -> "0.8", 100 -> "1", 125 -> "1.25": the `threshold` label of the ratio metric."""
    return f"{round(percent / 100.0, 6):g}"


def find_overlaps(budgets: Sequence[Budget]) -> tuple[Overlap, ...]:
    found: list[Overlap] = []
    for index, first in enumerate(budgets):
        for second in budgets[index + 1 :]:
            if first.scope.overlaps(second.scope) and _periods_overlap(first, second):
                narrower = (
                    first.scope
                    if len(first.scope.describe()) >= len(second.scope.describe())
                    else second.scope
                )
                found.append(Overlap(first.name, second.name, narrower.describe()))
    return tuple(found)


def _periods_overlap(first: Budget, second: Budget) -> bool:
    start = max(first.start_month or Month(1, 1), second.start_month or Month(1, 1))
    end = min(first.end_month or Month(9999, 12), second.end_month or Month(9999, 12))
    return start <= end


def budgets_for_team(budget_file: BudgetFile, team: str) -> tuple[Budget, ...]:
    return tuple(budget for budget in budget_file.budgets if budget.scope.team == team)


def scope_mapping(scope: BudgetScope) -> Mapping[str, str]:
    return dict(zip(SCOPE_KEYS, scope.label_values(), strict=True))
