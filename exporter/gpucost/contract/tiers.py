"""The budget-tier table: what each default tier of a budget says and how often it repeats.

A budget may list any thresholds (`thresholds_percent: [5, 90]`); one alert rule serves them
all and carries the tier in its `threshold` label as a percent ("5", "80", "125"). A tier in
this table keeps the seed's wording (📊 50 %, ⚠️ 80 %, 🚨 100 %); any other percent gets the
generic form of its side of the budget (`custom_tier`). The rules, the Alertmanager routes
and inhibition, the Slack template's tier texts, the dashboards' bands and the budget
defaults are generated from or checked against this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BUDGET_ALERT",
    "BUDGET_TIERS",
    "DEFAULT_THRESHOLDS_PERCENT",
    "MAX_THRESHOLDS_PER_BUDGET",
    "BudgetTier",
    "custom_tier",
    "percent_label",
    "ratio_label",
    "tier_for",
]

# The one alert rule of every budget tier; the tier is its `threshold` label.
BUDGET_ALERT = "GpuCostBudgetThresholdReached"
# Inhibition ranks a budget's tiers (`tier` label 0..n-1); Alertmanager needs a rule per rank.
MAX_THRESHOLDS_PER_BUDGET = 10

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class BudgetTier:
    percent: float
    severity: Severity
    emoji: str
    colour: str
    # Slack text of a firing message; `{top_model}` becomes " for <model>" when the rule has one.
    advice: str
    repeat_interval: str
    # The dashboards' band for the tier: Grafana colour and its name in panel descriptions
    # (`colour` above is Slack's attachment colour, which Grafana does not know).
    band_colour: str = "orange"
    band_words: str = "orange"

    @property
    def label(self) -> str:
        return percent_label(self.percent)

    @property
    def over_budget(self) -> bool:
        """At or over the budget: the message says when spend drops back under (send_resolved)."""
        return self.percent >= 100


BUDGET_TIERS: tuple[BudgetTier, ...] = (
    BudgetTier(50, "info", "📊", "good", "Half of this month's budget is used.", "24h", "#EAB839", "yellow"),
    BudgetTier(80, "warning", "⚠️", "warning", "Review inference costs{top_model}.", "12h", "orange", "orange"),
    BudgetTier(100, "critical", "🚨", "danger", "Budget exceeded. Immediate action required.", "4h", "red", "red"),
    BudgetTier(125, "critical", "🚨", "danger", "Budget exceeded by more than 25%. Immediate action required.", "4h",
               "dark-red", "dark red"),
)

DEFAULT_THRESHOLDS_PERCENT: tuple[float, ...] = tuple(float(tier.percent) for tier in BUDGET_TIERS)

# The generic forms of a percent the table does not list, under and at/over the budget.
_UNDER_BUDGET = BudgetTier(0, "warning", "⚠️", "warning", "{percent}% of this month's budget is used.", "12h")
_OVER_BUDGET = BudgetTier(
    100, "critical", "🚨", "danger", "Spend is past {percent}% of budget. Immediate action required.", "4h",
    "red", "red",
)


def percent_label(percent: float) -> str:
    """80.0 -> "80", 12.5 -> "12.5": the alert's `threshold` label.

    The same text Prometheus's `humanizePercentage` writes for the ratio (`%.4g`), which is how
    the rule turns the sidecar's ratio label into this one.
    """
    return f"{percent:.4g}"


def ratio_label(percent: float) -> str:
    """80 -> "0.8", 125 -> "1.25": the `threshold` label of `gpucost_budget_threshold_ratio`."""
    return f"{round(percent / 100.0, 6):g}"


def custom_tier(percent: float) -> BudgetTier:
    """The generic tier of a percent the table does not list."""
    template = _OVER_BUDGET if percent >= 100 else _UNDER_BUDGET
    return BudgetTier(
        percent,
        template.severity,
        template.emoji,
        template.colour,
        template.advice.replace("{percent}", percent_label(percent)),
        template.repeat_interval,
        template.band_colour,
        template.band_words,
    )


def tier_for(percent: float) -> BudgetTier:
    """The table's tier for a percent, else its generic form."""
    for tier in BUDGET_TIERS:
        if tier.percent == percent:
            return tier
    return custom_tier(percent)
