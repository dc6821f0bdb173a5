"""PromQL building blocks shared by the recording and alerting rules."""

from __future__ import annotations

from typing import Any

from gpucost.contract import recorded
from gpucost.rulegen.options import RuleOptions

__all__ = [
    "budget_join",
    "by",
    "month_index_at_end",
    "month_index_of_step_start",
    "num",
    "record",
    "seconds_left_in_month",
    "series",
]


def num(value: float) -> str:
    return f"{value:g}"


def by(*labels: str) -> str:
    return ", ".join(labels)


def series(key: str, options: RuleOptions) -> str:
    """A recorded series' name under the options' rate window, from the contract table."""
    return recorded.name(key, options)


def record(key: str, options: RuleOptions, expr: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A recording rule whose name comes from the recorded-series table."""
    rule: dict[str, Any] = {"record": series(key, options), "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule


def month_index_of_step_start() -> str:
    # The month of (step - 1s): a step at 00:00 on the 1st integrates the last
    # window of the previous month, so it belongs to the previous month.
    return "(year(vector(time() - 1)) * 12 + month(vector(time() - 1)))"


def month_index_at_end() -> str:
    # `@ end()` pins the inner subquery to the rule's evaluation time although it is
    # evaluated at every step of the outer 31d subquery (Prometheus 2.42 and VictoriaMetrics).
    return "scalar(last_over_time((year() * 12 + month())[1m:1m] @ end()))"


def seconds_left_in_month() -> str:
    return "(scalar((days_in_month() - day_of_month() + 1) * 86400) - time() % 86400)"


def budget_join(kind: str, options: RuleOptions) -> str:
    """Spend per budget: team scope, plus model and/or namespace when the budget carries them.

    `kind` is the key suffix of the scoped series: `spend_month_to_date` or `forecast_month_end`.
    A budget with `resources="node"` reads the whole-node series of the same scope
    (`team_whole_node_spend_month_to_date`); any other, or one without the label (a sidecar from
    before the label), the GPU series.
    """
    budget = "gpucost_budget_usd"
    scopes = (
        ('model="", namespace=""', ("budget", "team"), ("team",), "team"),
        ('model!="", namespace=""', ("budget", "team", "model"), ("team", "model"), "team_model"),
        ('model="", namespace!=""', ("budget", "team", "namespace"), ("namespace", "team"), "namespace_team"),
        ('model!="", namespace!=""', ("budget", "team", "model", "namespace"), ("namespace", "team", "model"),
         "namespace_team_model"),
    )
    resources = (('resources!="node"', ""), ('resources="node"', "whole_node_"))
    parts = [
        f"    0 * max by ({by(*keep)}) ({budget}{{{selector}, {matcher}}})\n"
        f"      + on ({by(*on)}) group_left () {series(f'{level}_{flavour}{kind}', options)}"
        for matcher, flavour in resources
        for selector, keep, on, level in scopes
    ]
    parts.append(f"    0 * max by (budget, team) ({budget})")
    return "max by (budget, team) (\n" + "\n  or\n".join(parts) + "\n)\n"
