"""The rules of rules/gpucost.sidecar.rules.yaml: fixed-cost allocation and reconciliation drift.

They read the gpucost-budgets sidecar's series and the team cost rate under the options'
rate window. Tested by rules/tests/gpucost.sidecar.rules.test.yaml.
"""

from __future__ import annotations

from typing import Any

from gpucost.budgets import names as sidecar
from gpucost.rulegen.options import RuleOptions
from gpucost.rulegen.promql import record, series
from gpucost.rulegen.templating import alert

__all__ = ["SIDECAR_PREAMBLE", "sidecar_groups"]

SIDECAR_PREAMBLE = (
    "# Rules over the gpucost-budgets sidecar's series: fixed-cost allocation and reconciliation drift.\n"
)

Rule = dict[str, Any]


def _allocation_rules(options: RuleOptions) -> list[Rule]:
    team_rate = series("team_cost_rate", options)
    per_hour = series("name_allocation_fixed_cost_rate", options)
    return [
        # Each fixed cost in USD per hour of the current month.
        record(
            "name_allocation_fixed_cost_rate",
            options,
            f"sum by (name, allocation) ({sidecar.FIXED_COST_USD_PER_MONTH}) / scalar(24 * days_in_month())",
        ),
        # proportional: each team's share of the GPU spend rate.
        record(
            "team_fixed_cost_allocated",
            options,
            "(\n"
            f"  sum by (team) ({team_rate})\n"
            f"  / on () group_left () (sum({team_rate}) > 0)\n"
            ")\n"
            f'* on () group_left () sum({per_hour}{{allocation="proportional"}})\n',
            {"allocation": "proportional"},
        ),
        # even: the same amount for every team with GPU spend.
        record(
            "team_fixed_cost_allocated",
            options,
            f"count by (team) ({team_rate})\n"
            "* on () group_left () (\n"
            f'  sum({per_hour}{{allocation="even"}})\n'
            f"  / count(count by (team) ({team_rate}))\n"
            ")\n",
            {"allocation": "even"},
        ),
        # team:<name>: all of it to the named team.
        record(
            "team_fixed_cost_allocated",
            options,
            "sum by (team) (\n"
            "  label_replace(\n"
            f'    {per_hour}{{allocation=~"team:.+"}},\n'
            '    "team", "$1", "allocation", "team:(.+)"\n'
            "  )\n"
            ")\n",
            {"allocation": "named"},
        ),
    ]


def _drift_alert(options: RuleOptions) -> Rule:
    ratio = sidecar.RECONCILIATION_RATIO
    return alert(
        options,
        "GpuCostEstimateDrift",
        f"{ratio} < 0.95 or {ratio} > 1.05",
        "2d",
        {"severity": "warning", "audience": "platform"},
        "gpucost estimates for {{ $labels.scope }} drift from the {{ $labels.provider }} bill",
        "For 2 days the billed cost of {{ $labels.scope }} on {{ $labels.provider }} was "
        '{{ $value | printf "%.2f" }} times gpucost\'s estimate (expected 0.95 to 1.05). '
        "Prices, untagged resources or unpriced nodes are the usual causes.",
    )


def sidecar_groups(options: RuleOptions) -> list[dict[str, Any]]:
    return [
        {"name": "gpucost.sidecar.fixed_costs", "rules": _allocation_rules(options)},
        {"name": "gpucost.sidecar.reconciliation", "rules": [_drift_alert(options)]},
    ]
