"""Dashboard 2, team budget: one team's month against its budgets, where the money goes, alerts firing."""

from __future__ import annotations

from gpucost.contract.tiers import BUDGET_ALERT
from gpucost.dashboards.common import (
    CLUSTER,
    Board,
    Query,
    bar_gauge_panel,
    cost_rate_by,
    month_to_date_by,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from gpucost.dashboards.tables import (
    BUDGET_BANDS,
    BUDGET_GAUGE_MAX,
    DEFAULT_RATE_WINDOW,
    budget_band_words,
    budget_tier_percents,
)

__all__ = ["UID", "build"]

UID = "gpucost-team-budget"
TEAM = f'{CLUSTER}, team="$team"'
MODELS = f'{TEAM}, model=~"$model"'
NAMESPACES = f'{TEAM}, namespace=~"$namespace"'


def build(rate_window: str = DEFAULT_RATE_WINDOW) -> Board:
    board = Board(
        uid=UID,
        title="GPU cost: team budget",
        description="One team's month-to-date GPU spend against its budgets, its forecast, models and namespaces; "
        "a budget with resources: node counts the whole node.",
        variables=("cluster", "team", "model", "namespace"),
        single_team=True,
        rate_window=rate_window,
    )
    rec = board.recorded
    board.row("Month against budget")
    board.add(
        stat_panel(
            "Month-to-date spend",
            f"The team's GPU spend since 00:00 UTC on the 1st ({rec('team_spend_month_to_date')}).",
            "currencyUSD",
            [Query(f"sum({rec.select('team_spend_month_to_date', TEAM)})", instant=True)],
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
            f"({rec('team_forecast_month_end')}); below it, the same with the 7-day average burn "
            f"({rec('team_forecast_month_end_7d')}).",
            "currencyUSD",
            [
                Query(f"sum({rec.select('team_forecast_month_end', TEAM)})", "current rate", instant=True),
                Query(f"sum({rec.select('team_forecast_month_end_7d', TEAM)})", "7-day average", instant=True),
            ],
        ),
        w=6, h=4,
    )
    board.add(
        bar_gauge_panel(
            "Budget used",
            f"Month-to-date spend in each budget's scope divided by the budget ({rec('budget_used_ratio')}). "
            f"The colours are the alert tiers: {budget_band_words()}.",
            "percentunit",
            [Query(rec.select("budget_used_ratio", TEAM), "{{budget}}", instant=True)],
            steps=BUDGET_BANDS,
            max_value=BUDGET_GAUGE_MAX,
        ),
        w=8, h=4,
    )
    board.add(
        timeseries_panel(
            "Spend, forecast and budget",
            f"Per budget of the team: month-to-date spend in its scope ({rec('budget_spend_month_to_date')}), "
            f"the forecast for month end ({rec('budget_forecast_month_end')}) and the budget "
            "(gpucost_budget_usd).",
            "currencyUSD",
            [
                Query(rec.select("budget_spend_month_to_date", TEAM), "{{budget}} spent"),
                Query(rec.select("budget_forecast_month_end", TEAM), "{{budget}} forecast"),
                Query(f"max by (budget) (gpucost_budget_usd{{{TEAM}}})", "{{budget}} budget"),
            ],
        ),
        w=12, h=9,
    )
    board.add(
        timeseries_panel(
            "Budget used, with alert bands",
            f"{rec('budget_used_ratio')} over time against the bands of the {BUDGET_ALERT} alert at "
            f"{budget_tier_percents()} %; a line entering a band means that tier's alert fires after 1 minute.",
            "percentunit",
            [Query(rec.select("budget_used_ratio", TEAM), "{{budget}}")],
            steps=BUDGET_BANDS,
            bands=True,
        ),
        w=12, h=9,
    )
    board.add(
        table_panel(
            "Budgets and what they count",
            "Each budget of the team with its monthly amount and what its spend counts (budgets.yaml `resources`, "
            "the resources label of gpucost_budget_usd): gpu = the GPUs' cost, node = the whole node's (GPU, CPU, "
            "memory, storage).",
            "currencyUSD",
            [
                Query(
                    f'max by (budget, resources) (label_replace(gpucost_budget_usd{{{TEAM}}}, "resources", "gpu", '
                    '"resources", ""))',
                    instant=True, table=True,
                )
            ],
            renames={"Value": "USD per month", "resources": "counts"},
        ),
        w=24, h=5,
    )
    board.row("Where the money goes")
    board.add(
        cost_rate_by(
            "model",
            rec.select("team_model_cost_rate", MODELS),
            f"The team's attributed GPU cost per hour by model, stacked ({rec('team_model_cost_rate')}).",
        ),
        w=8, h=8,
    )
    board.add(
        month_to_date_by(
            "model",
            rec.select("team_model_spend_month_to_date", MODELS),
            f"The team's month-to-date spend by model ({rec('team_model_spend_month_to_date')}).",
        ),
        w=4, h=8,
    )
    board.add(
        cost_rate_by(
            "namespace",
            rec.select("namespace_team_cost_rate", NAMESPACES),
            "The team's attributed GPU cost per hour by namespace, stacked "
            f"({rec('namespace_team_cost_rate')}).",
        ),
        w=8, h=8,
    )
    board.add(
        month_to_date_by(
            "namespace",
            rec.select("namespace_team_spend_month_to_date", NAMESPACES),
            f"The team's month-to-date spend by namespace ({rec('namespace_team_spend_month_to_date')}).",
        ),
        w=4, h=8,
    )
    board.add(
        bar_gauge_panel(
            "GPU efficiency by model",
            "Active cost / (active + idle) cost of the team's pods per model "
            f"({rec('team_model_efficiency')}): the share of the money spent while the GPUs were busy. "
            "Red below 30 %, green above 60 %.",
            "percentunit",
            [Query(rec.select("team_model_efficiency", MODELS), "{{model}}", instant=True)],

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
