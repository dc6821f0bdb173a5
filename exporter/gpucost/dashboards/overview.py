"""Dashboard 1, GPU cost overview: what the platform spends now, this month, against budget, on whom."""

from __future__ import annotations

from gpucost.dashboards.common import (
    CLUSTER,
    TEAMS,
    Board,
    Query,
    cost_rate_by,
    month_to_date_by,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from gpucost.dashboards.overview_node import add_whole_node_row
from gpucost.dashboards.tables import BUDGET_BANDS, DEFAULT_RATE_WINDOW, budget_tier_percents

__all__ = ["UID", "build"]

UID = "gpucost-overview"
MODELS = f'{TEAMS}, model=~"$model"'
NAMESPACES = f'{TEAMS}, namespace=~"$namespace"'
UNATTRIBUTED = f'{CLUSTER}, team=""'
TEAM_LINK = (
    "Team budget of ${__field.labels.team}",
    "/d/gpucost-team-budget?${__url_time_range}&var-datasource=${datasource}&var-team=${__field.labels.team}",
)


def build(rate_window: str = DEFAULT_RATE_WINDOW) -> Board:
    board = Board(
        uid=UID,
        title="GPU cost overview",
        description="What the GPUs cost now and this month, against which budget, by team and model, "
        "and what is wasted; and the whole node (GPU, CPU, memory, storage) with and without GPU.",
        variables=("cluster", "team", "model", "namespace"),
        rate_window=rate_window,
    )
    rec = board.recorded
    board.row("Spend and budget")
    board.add(
        stat_panel(
            "GPU cost now (USD/h)",
            "Cost of all GPUs of the cluster per hour, allocated or not: the sum of "
            f"{rec('cluster_cost_rate')} ({rec.adjective} rate of the per-GPU cost counters x 3600). "
            "Not filtered by team.",
            "currencyUSD",
            [Query(f"sum({rec.select('cluster_cost_rate', CLUSTER)})", instant=True)],
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Month-to-date spend",
            "GPU spend attributed to the selected teams since 00:00 UTC on the 1st: the sum of "
            f"{rec('team_spend_month_to_date')} (hourly tiles of the month plus the current hour).",
            "currencyUSD",
            [Query(f"sum({rec.select('team_spend_month_to_date', TEAMS)})", instant=True)],
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Forecast at month end",
            "Month-to-date spend of the selected teams plus their current USD/h times the hours left in the month: "
            f"the sum of {rec('team_forecast_month_end')}.",
            "currencyUSD",
            [Query(f"sum({rec.select('team_forecast_month_end', TEAMS)})", instant=True)],
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Total budget",
            "Sum of the monthly budgets (gpucost_budget_usd, one value per budget) of the selected teams, "
            "as published by the gpucost-budgets sidecar.",
            "currencyUSD",
            [Query(f"sum(max by (budget) (gpucost_budget_usd{{{TEAMS}}}))", instant=True)],
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Forecast / budget",
            "Forecast month-end spend in the scope of each budget divided by the budgets, summed over the budgets "
            f"of the selected teams ({rec('budget_forecast_month_end')} / gpucost_budget_usd). "
            f"Colours follow the budget alert tiers {budget_tier_percents()} %.",
            "percentunit",
            [
                Query(
                    f"sum({rec.select('budget_forecast_month_end', TEAMS)})"
                    f" / sum(max by (budget) (gpucost_budget_usd{{{TEAMS}}}) > 0)",
                    instant=True,
                )
            ],
            steps=BUDGET_BANDS,
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Unattributed spend, month to date",
            f"Month-to-date spend of pods without a team label (team=\"\" in {rec('team_spend_month_to_date')}); "
            "0 when every GPU pod has a team. The alert GpuCostUnattributedSpend fires above 10 % of the cost.",
            "currencyUSD",
            [
                Query(
                    f"sum({rec.select('team_spend_month_to_date', UNATTRIBUTED)})"
                    f" or 0 * sum({rec.select('cluster_cost_rate', CLUSTER)})",
                    instant=True,
                )
            ],
            steps=((None, "green"), (0.01, "orange")),
        ),
        w=4, h=4,
    )
    board.row("By team and model")
    board.add(
        cost_rate_by(
            "team",
            rec.select("team_cost_rate", TEAMS),
            f"Attributed GPU cost per hour of each team, stacked: {rec('team_cost_rate')} "
            "(active + idle cost of the pods the team's GPUs ran). An empty team is unattributed spend.",
        ),
        w=14, h=8,
    )
    board.add(
        month_to_date_by(
            "team",
            rec.select("team_spend_month_to_date", TEAMS),
            f"Month-to-date spend of each team ({rec('team_spend_month_to_date')}), largest first. "
            "Click a bar for the team's budget dashboard.",
            links=(TEAM_LINK,),
        ),
        w=10, h=8,
    )
    board.add(
        cost_rate_by(
            "model",
            rec.select("team_model_cost_rate", MODELS),
            "Attributed GPU cost per hour of each model of the selected teams, stacked: "
            f"{rec('team_model_cost_rate')} summed by model.",
        ),
        w=14, h=8,
    )
    board.add(
        month_to_date_by(
            "model",
            rec.select("team_model_spend_month_to_date", MODELS),
            f"Month-to-date spend of each model of the selected teams ({rec('team_model_spend_month_to_date')} "
            "summed by model), largest first.",
        ),
        w=10, h=8,
    )
    board.row("Waste and drill-down")
    board.add(
        timeseries_panel(
            "Active vs idle vs unallocated (USD/h)",
            "Where the cluster's GPU money goes, stacked: active = busy share of allocated GPUs, idle = allocated "
            f"but not busy ({rec('team_component_cost_rate')} by component), unallocated = GPUs no "
            f"pod holds ({rec('node_unallocated_rate')}). The three add up to the cluster cost. "
            "Not filtered by team.",
            "currencyUSD",
            [
                Query(f"sum by (component) ({rec.select('team_component_cost_rate', CLUSTER)})", "{{component}}"),
                Query(f"sum({rec.select('node_unallocated_rate', CLUSTER)})", "unallocated"),
            ],
            stacked=True,
        ),
        w=10, h=9,
    )
    board.add(
        table_panel(
            "Top 10 pods by cost (USD/h)",
            f"The ten pods with the highest GPU cost per hour now ({rec('pod_cost_rate')}, "
            "from the per-container counters), in the selected teams and namespaces.",
            "currencyUSD",
            [
                Query(
                    f"topk(10, sum by (namespace, pod, team, model) ({rec.select('pod_cost_rate', NAMESPACES)}))",

                    instant=True, table=True,
                )
            ],
            renames={"Value": "USD/h"},
        ),
        w=14, h=9,
    )
    add_whole_node_row(board)
    return board
