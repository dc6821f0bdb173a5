"""Dashboard 2, team budget: one team's month against its budgets, where the money goes, alerts firing."""

from __future__ import annotations

from gpucost.dashboards.common import (
    BUDGET_TIERS,
    CLUSTER,
    Board,
    Query,
    bar_gauge_panel,
    stat_panel,
    table_panel,
    timeseries_panel,
)

__all__ = ["UID", "build"]

UID = "gpucost-team-budget"
TEAM = f'{CLUSTER}, team="$team"'


def build() -> Board:
    board = Board(
        uid=UID,
        title="GPU cost: team budget",
        description="One team's month-to-date GPU spend against its budgets, its forecast, models and namespaces.",
        variables=("cluster", "team", "model", "namespace"),
        single_team=True,
    )
    board.row("Month against budget")
    board.add(
        stat_panel(
            "Month-to-date spend",
            "The team's GPU spend since 00:00 UTC on the 1st (team:gpucost_spend_usd:month_to_date).",
            "currencyUSD",
            [Query(f"sum(team:gpucost_spend_usd:month_to_date{{{TEAM}}})", instant=True)],
        ),
        w=5, h=4,
    )
    board.add(
        stat_panel(
            "Budget",
            "Sum of the team's monthly budgets (gpucost_budget_usd from the budgets sidecar, one value per budget).",
            "currencyUSD",
            [Query(f"sum(max by (budget) (gpucost_budget_usd{{{TEAM}}}))", instant=True)],
        ),
        w=5, h=4,
    )
    board.add(
        stat_panel(
            "Forecast at month end",
            "Month-to-date spend plus the current USD/h times the hours left in the month "
            "(team:gpucost_spend_usd:forecast_month_end); below it, the same with the 7-day average burn "
            "(team:gpucost_spend_usd:forecast_month_end_7d).",
            "currencyUSD",
            [
                Query(f"sum(team:gpucost_spend_usd:forecast_month_end{{{TEAM}}})", "current rate", instant=True),
                Query(f"sum(team:gpucost_spend_usd:forecast_month_end_7d{{{TEAM}}})", "7-day average", instant=True),
            ],
        ),
        w=6, h=4,
    )
    board.add(
        bar_gauge_panel(
            "Budget used",
            "Month-to-date spend in each budget's scope divided by the budget (budget:gpucost_budget_used:ratio). "
            "The colours are the alert tiers: 50 % yellow, 80 % orange, 100 % red, 125 % dark red.",
            "percentunit",
            [Query(f"budget:gpucost_budget_used:ratio{{{TEAM}}}", "{{budget}}", instant=True)],
            steps=BUDGET_TIERS,
            max_value=1.25,
        ),
        w=8, h=4,
    )
    board.add(
        timeseries_panel(
            "Spend, forecast and budget",
            "Per budget of the team: month-to-date spend in its scope (budget:gpucost_spend_usd:month_to_date), "
            "the forecast for month end (budget:gpucost_spend_usd:forecast_month_end) and the budget "
            "(gpucost_budget_usd).",
            "currencyUSD",
            [
                Query(f"budget:gpucost_spend_usd:month_to_date{{{TEAM}}}", "{{budget}} spent"),
                Query(f"budget:gpucost_spend_usd:forecast_month_end{{{TEAM}}}", "{{budget}} forecast"),
                Query(f"max by (budget) (gpucost_budget_usd{{{TEAM}}})", "{{budget}} budget"),
            ],
        ),
        w=12, h=9,
    )
    board.add(
        timeseries_panel(
            "Budget used, with alert bands",
            "budget:gpucost_budget_used:ratio over time against the bands of the GpuCostBudget50/80/100/125"
            "PercentUsed alerts; a line entering a band means that tier's alert fires after 1 minute.",
            "percentunit",
            [Query(f"budget:gpucost_budget_used:ratio{{{TEAM}}}", "{{budget}}")],
            steps=BUDGET_TIERS,
            bands=True,
        ),
        w=12, h=9,
    )
    board.row("Where the money goes")
    board.add(
        timeseries_panel(
            "Cost by model (USD/h)",
            "The team's attributed GPU cost per hour by model, stacked (team_model:gpucost_cost_usd_per_hour:rate5m).",
            "currencyUSD",
            [Query(f'sum by (model) (team_model:gpucost_cost_usd_per_hour:rate5m{{{TEAM}, model=~"$model"}})',
                   "{{model}}")],
            stacked=True,
        ),
        w=8, h=8,
    )
    board.add(
        bar_gauge_panel(
            "Month-to-date by model",
            "The team's month-to-date spend by model (team_model:gpucost_spend_usd:month_to_date).",
            "currencyUSD",
            [Query("sort_desc(sum by (model) (team_model:gpucost_spend_usd:month_to_date"
                   f'{{{TEAM}, model=~"$model"}}))', "{{model}}", instant=True)],
        ),
        w=4, h=8,
    )
    board.add(
        timeseries_panel(
            "Cost by namespace (USD/h)",
            "The team's attributed GPU cost per hour by namespace, stacked "
            "(namespace_team:gpucost_cost_usd_per_hour:rate5m).",
            "currencyUSD",
            [Query("sum by (namespace) (namespace_team:gpucost_cost_usd_per_hour:rate5m"
                   f'{{{TEAM}, namespace=~"$namespace"}})', "{{namespace}}")],
            stacked=True,
        ),
        w=8, h=8,
    )
    board.add(
        bar_gauge_panel(
            "Month-to-date by namespace",
            "The team's month-to-date spend by namespace (namespace_team:gpucost_spend_usd:month_to_date).",
            "currencyUSD",
            [Query("sort_desc(sum by (namespace) (namespace_team:gpucost_spend_usd:month_to_date"
                   f'{{{TEAM}, namespace=~"$namespace"}}))', "{{namespace}}", instant=True)],
        ),
        w=4, h=8,
    )
    board.add(
        bar_gauge_panel(
            "GPU efficiency by model",
            "Active cost / (active + idle) cost of the team's pods per model "
            "(team_model:gpucost_gpu_efficiency:ratio): the share of the money spent while the GPUs were busy. "
            "Red below 30 %, green above 60 %.",
            "percentunit",
            [Query(f'team_model:gpucost_gpu_efficiency:ratio{{{TEAM}, model=~"$model"}}', "{{model}}", instant=True)],
            steps=((None, "red"), (0.3, "orange"), (0.6, "green")),
            max_value=1,
        ),
        w=8, h=6,
    )
    board.row("Alerts and reconciliation")
    board.add(
        table_panel(
            "Budget alerts firing",
            "Budget tier alerts of the team that are firing now: ALERTS{alertname=~\"GpuCostBudget.*\", "
            "alertstate=\"firing\"}, one row per budget and threshold.",
            "none",
            [Query(f'ALERTS{{{TEAM}, alertname=~"GpuCostBudget.*", alertstate="firing"}}', instant=True, table=True)],
            hidden=("Time", "Value", "__name__", "alertstate"),
        ),
        w=12, h=6,
        empty_when_healthy="no budget alert of the team is firing",
    )
    board.add(
        timeseries_panel(
            "Reconciliation with the cloud bill",
            "Billed cost divided by gpucost's estimate, per provider and scope (gpucost_reconciliation_ratio from "
            "the budgets sidecar). 1 is exact; the alert GpuCostEstimateDrift fires outside 0.95..1.05 for 2 days.",
            "percentunit",
            [Query(f"gpucost_reconciliation_ratio{{{CLUSTER}}}", "{{provider}} {{scope}}")],
            steps=((None, "red"), (0.95, "green"), (1.05, "red")),
            bands=True,
        ),
        w=12, h=6,
        empty_when_healthy="the budgets sidecar has no billing export to reconcile against",
    )
    return board
