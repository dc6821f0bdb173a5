"""The budget alerting rules of rules/gpucost.alerts.yaml: every tier in one rule, and the forecast.

One rule compares each budget's used ratio with each of that budget's own thresholds
(`gpucost_budget_threshold_ratio{budget, threshold="0.8"}`, published by the sidecar), so a
budget with `thresholds_percent: [5, 90]` fires at 5 % and at 90 %. The alert carries:

* `threshold`: the tier as a percent ("5", "80", "125"), what routes and the Slack template read;
* `tier`: the tier's rank among the budget's thresholds (0 = lowest), so Alertmanager can let
  the highest tier reached silence the lower ones with label matchers alone;
* `severity`: from the tier table (`gpucost.contract.tiers`), else warning under the budget and
  critical at or over it.
"""

from __future__ import annotations

from typing import Any

from gpucost.budgets import names as sidecar
from gpucost.contract.tiers import BUDGET_ALERT, BUDGET_TIERS, ratio_label
from gpucost.rulegen.options import RuleOptions
from gpucost.rulegen.promql import series
from gpucost.rulegen.templating import alert, go_quote, usd_from_query

__all__ = ["budget_alerts"]

Rule = dict[str, Any]

_KEY = "$labels.budget $labels.team"
_FIRST_VALUE_ROUNDED = '{{ . | first | value | printf "%.0f" }}{{ end }}'
_FIRST_MODEL = '{{ . | first | label "model" }}{{ end }}'
# The sidecar's ratio label ("0.8") as the percent the alert carries ("80"): humanizePercentage
# writes %.4g, the same text as `contract.tiers.percent_label`.
_PERCENT = '{{ $labels.threshold | humanizePercentage | reReplaceAll "%" "" }}'
# Under the budget: a ratio label that starts with 0 ("0.8") or is written with a negative
# exponent ("1e-05", the sidecar's %g of a tiny ratio).
_UNDER_BUDGET_RATIO = "^0|e-"
_SELECTOR = "{budget=%q,team=%q}"
# What the budget counts (budgets.yaml `resources`, the `resources` label of the sidecar's budget series): the
# whole node (GPU, CPU, memory, storage) or the GPUs. Read in the template, not carried as an alert label, so the
# alerts' labels stay the contract Alertmanager routes and inhibits by. A budget without the label is a GPU budget.
_NODE_BUDGET = f'{sidecar.BUDGET_USD}{{budget=%q,team=%q,resources="node"}}'
_SCOPE = f"{{{{ with printf {go_quote(_NODE_BUDGET)} {_KEY} | query }}}}whole-node{{{{ else }}}}GPU{{{{ end }}}}"


def _annotations(options: RuleOptions) -> dict[str, str]:
    spend = usd_from_query(f"{series('budget_spend_month_to_date', options)}{_SELECTOR}", _KEY)
    budget = usd_from_query(f"max by (budget, team) (gpucost_budget_usd{_SELECTOR})", _KEY)
    forecast = usd_from_query(f"{series('budget_forecast_month_end', options)}{_SELECTOR}", _KEY)
    used = f"floor(100 * {series('budget_used_ratio', options)}{_SELECTOR})"
    percent = f"{{{{ with printf {go_quote(used)} {_KEY} | query }}}}" + _FIRST_VALUE_ROUNDED
    top_query = f"{series('team_top_model_spend_month_to_date', options)}{{team=%q}}"
    top_model = f"{{{{ with printf {go_quote(top_query)} $labels.team | query }}}}" + _FIRST_MODEL
    return {
        "current_spend_usd": spend,
        "budget_usd": budget,
        "percent_used": percent,
        "forecast_usd": forecast,
        "top_model": top_model,
        "dashboard_url": f"{options.dashboard_url}?var-team={{{{ $labels.team }}}}",
    }


def _tier_rank() -> str:
    """Template text: how many of the budget's thresholds lie below this one."""
    query = f"count({sidecar.BUDGET_THRESHOLD_RATIO}{{budget=%q}} < %s) or vector(0)"
    return f"{{{{ with printf {go_quote(query)} $labels.budget $labels.threshold | query }}}}" + (
        "{{ . | first | value }}{{ end }}"
    )


def _severity() -> str:
    """Template text: the table's severity of a listed tier, else by the side of the budget."""
    branches = [
        f'eq $labels.threshold "{ratio_label(tier.percent)}" }}}}{tier.severity}' for tier in BUDGET_TIERS
    ]
    branches.append(f'match "{_UNDER_BUDGET_RATIO}" $labels.threshold }}}}warning')
    return "{{ if " + "{{ else if ".join(branches) + "{{ else }}critical{{ end }}"


def _threshold_alert(options: RuleOptions) -> Rule:
    notes = _annotations(options)
    expr = (
        "(\n"
        f"    {series('budget_used_ratio', options)}\n"
        "  >= on (budget) group_right (team)\n"
        f"    max by (budget, threshold) ({sidecar.BUDGET_THRESHOLD_RATIO})\n"
        ")\n"
        "+ on (budget, team) group_left (slack_channel)\n"
        f"  0 * max by (budget, team, slack_channel) ({sidecar.BUDGET_USD})\n"
    )
    return alert(
        options,
        BUDGET_ALERT,
        expr,
        options.budget_for,
        {"threshold": _PERCENT, "tier": _tier_rank(), "severity": _severity()},
        f"Team {{{{ $labels.team }}}} has used {_PERCENT}% of {_SCOPE} budget {{{{ $labels.budget }}}}",
        f"Month-to-date {_SCOPE} spend of team {{{{ $labels.team }}}} is ${notes['current_spend_usd']} of the "
        f"${notes['budget_usd']} budget {{{{ $labels.budget }}}} ({notes['percent_used']}% used). "
        f"At the current burn rate the month ends at ${notes['forecast_usd']}. "
        f"Top model: {notes['top_model']}.",
        notes,
    )


def _forecast_alert(options: RuleOptions) -> Rule:
    notes = _annotations(options)
    forecast = series("budget_forecast_month_end", options)
    return alert(
        options,
        "GpuCostForecastOverBudget",
        f"{forecast}\n  > on (budget, team)\nmax by (budget, team) ({sidecar.BUDGET_USD})\n",
        options.forecast_for,
        {"severity": "warning"},
        f"Team {{{{ $labels.team }}}} is on track to exceed {_SCOPE} budget {{{{ $labels.budget }}}}",
        f"At the current burn rate team {{{{ $labels.team }}}} ends the month at ${notes['forecast_usd']}, "
        f"over the ${notes['budget_usd']} budget {{{{ $labels.budget }}}}.",
        {key: notes[key] for key in ("forecast_usd", "budget_usd", "dashboard_url")},
    )


def budget_alerts(options: RuleOptions) -> list[Rule]:
    return [_threshold_alert(options), _forecast_alert(options)]
