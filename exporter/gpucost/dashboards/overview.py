"""Dashboard 1, GPU cost overview: what the platform spends now, this month, against budget, on whom."""

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

UID = "gpucost-overview"
TEAMS = f'{CLUSTER}, team=~"$team"'
TEAM_LINK = (
    "Team budget of ${__field.labels.team}",
    "/d/gpucost-team-budget?${__url_time_range}&var-datasource=${datasource}&var-team=${__field.labels.team}",
)


def build() -> Board:
    board = Board(
        uid=UID,
        title="GPU cost overview",
        description="What the GPUs cost now and this month, against which budget, by team and model, "
        "and what is wasted.",
        variables=("cluster", "team", "model", "namespace"),
    )
    board.row("Spend and budget")
    board.add(
        stat_panel(
            "GPU cost now (USD/h)",
            "Cost of all GPUs of the cluster per hour, allocated or not: the sum of "
            "cluster:gpucost_cost_usd_per_hour:rate5m (5-minute rate of the per-GPU cost counters x 3600). "
            "Not filtered by team.",
            "currencyUSD",
            [Query(f"sum(cluster:gpucost_cost_usd_per_hour:rate5m{{{CLUSTER}}})", instant=True)],
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Month-to-date spend",
            "GPU spend attributed to the selected teams since 00:00 UTC on the 1st: the sum of "
            "team:gpucost_spend_usd:month_to_date (hourly tiles of the month plus the current hour).",
            "currencyUSD",
            [Query(f"sum(team:gpucost_spend_usd:month_to_date{{{TEAMS}}})", instant=True)],
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Forecast at month end",
            "Month-to-date spend of the selected teams plus their current USD/h times the hours left in the month: "
            "the sum of team:gpucost_spend_usd:forecast_month_end.",
            "currencyUSD",
            [Query(f"sum(team:gpucost_spend_usd:forecast_month_end{{{TEAMS}}})", instant=True)],
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
            "of the selected teams (budget:gpucost_spend_usd:forecast_month_end / gpucost_budget_usd). "
            "Colours follow the budget alert tiers 50/80/100/125 %.",
            "percentunit",
            [
                Query(
                    f"sum(budget:gpucost_spend_usd:forecast_month_end{{{TEAMS}}})"
                    f" / sum(max by (budget) (gpucost_budget_usd{{{TEAMS}}}) > 0)",
                    instant=True,
                )
            ],
            steps=BUDGET_TIERS,
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Unattributed spend, month to date",
            "Month-to-date spend of pods without a team label (team=\"\" in team:gpucost_spend_usd:month_to_date); "
            "0 when every GPU pod has a team. The alert GpuCostUnattributedSpend fires above 10 % of the cost.",
            "currencyUSD",
            [
                Query(
                    f'sum(team:gpucost_spend_usd:month_to_date{{{CLUSTER}, team=""}})'
                    f" or 0 * sum(cluster:gpucost_cost_usd_per_hour:rate5m{{{CLUSTER}}})",
                    instant=True,
                )
            ],
            steps=((None, "green"), (0.01, "orange")),
        ),
        w=4, h=4,
    )
    board.row("By team and model")
    board.add(
        timeseries_panel(
            "Cost by team (USD/h)",
            "Attributed GPU cost per hour of each team, stacked: team:gpucost_cost_usd_per_hour:rate5m "
            "(active + idle cost of the pods the team's GPUs ran). An empty team is unattributed spend.",
            "currencyUSD",
            [Query(f"sum by (team) (team:gpucost_cost_usd_per_hour:rate5m{{{TEAMS}}})", "{{team}}")],
            stacked=True,
        ),
        w=14, h=8,
    )
    board.add(
        bar_gauge_panel(
            "Month-to-date by team",
            "Month-to-date spend of each team (team:gpucost_spend_usd:month_to_date), largest first. "
            "Click a bar for the team's budget dashboard.",
            "currencyUSD",
            [Query(f"sort_desc(sum by (team) (team:gpucost_spend_usd:month_to_date{{{TEAMS}}}))", "{{team}}",
                   instant=True)],
            links=(TEAM_LINK,),
        ),
        w=10, h=8,
    )
    board.add(
        timeseries_panel(
            "Cost by model (USD/h)",
            "Attributed GPU cost per hour of each model of the selected teams, stacked: "
            "team_model:gpucost_cost_usd_per_hour:rate5m summed by model.",
            "currencyUSD",
            [Query(f'sum by (model) (team_model:gpucost_cost_usd_per_hour:rate5m{{{TEAMS}, model=~"$model"}})',
                   "{{model}}")],
            stacked=True,
        ),
        w=14, h=8,
    )
    board.add(
        bar_gauge_panel(
            "Month-to-date by model",
            "Month-to-date spend of each model of the selected teams (team_model:gpucost_spend_usd:month_to_date "
            "summed by model), largest first.",
            "currencyUSD",
            [Query("sort_desc(sum by (model) (team_model:gpucost_spend_usd:month_to_date"
                   f'{{{TEAMS}, model=~"$model"}}))', "{{model}}", instant=True)],
        ),
        w=10, h=8,
    )
    board.row("Waste and drill-down")
    board.add(
        timeseries_panel(
            "Active vs idle vs unallocated (USD/h)",
            "Where the cluster's GPU money goes, stacked: active = busy share of allocated GPUs, idle = allocated "
            "but not busy (team_component:gpucost_cost_usd_per_hour:rate5m by component), unallocated = GPUs no "
            "pod holds (node:gpucost_unallocated_cost_usd_per_hour:rate5m). The three add up to the cluster cost. "
            "Not filtered by team.",
            "currencyUSD",
            [
                Query(f"sum by (component) (team_component:gpucost_cost_usd_per_hour:rate5m{{{CLUSTER}}})",
                      "{{component}}"),
                Query(f"sum(node:gpucost_unallocated_cost_usd_per_hour:rate5m{{{CLUSTER}}})", "unallocated"),
            ],
            stacked=True,
        ),
        w=10, h=9,
    )
    board.add(
        table_panel(
            "Top 10 pods by cost (USD/h)",
            "The ten pods with the highest GPU cost per hour now (pod:gpucost_cost_usd_per_hour:rate5m, "
            "from the per-container counters), in the selected teams and namespaces.",
            "currencyUSD",
            [
                Query(
                    "topk(10, sum by (namespace, pod, team, model) (pod:gpucost_cost_usd_per_hour:rate5m"
                    f'{{{TEAMS}, namespace=~"$namespace"}}))',
                    instant=True, table=True,
                )
            ],
            renames={"Value": "USD/h"},
        ),
        w=14, h=9,
    )
    return board
