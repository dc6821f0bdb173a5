"""The overview dashboard's whole-node row: cost per team and model with and without GPU (issue #19).

Whole node is every resource the node's price pays for (GPU, CPU, memory, local storage), from the
`*:gpucost_whole_node_*` and `*_resource:*` recorded series; GPU only is the GPU series the rest of
the overview shows (`team:gpucost_cost_usd_per_hour`), which equal the whole-node family's
`resource="gpu"` part. Side by side they show what the GPUs leave out.
"""

from __future__ import annotations

from gpucost.dashboards.common import CLUSTER, TEAMS, Board, Query, stat_panel, table_panel, timeseries_panel

__all__ = ["add_whole_node_row"]

MODELS = f'{TEAMS}, model=~"$model"'
_USD_COLUMNS = {"Whole node (USD)": "currencyUSD", "GPU only (USD)": "currencyUSD", "Without GPU (USD)": "currencyUSD"}


def _with_and_without_gpu(board: Board, label: str, whole_node: str, gpu_only: str, matchers: str) -> Query:
    """Whole-node minus GPU-only per `label`: what CPU, memory and storage add."""
    rec = board.recorded
    return Query(
        f"sum by ({label}) ({rec.select(whole_node, matchers)})"
        f" - on ({label}) (sum by ({label}) ({rec.select(gpu_only, matchers)})"
        f" or 0 * sum by ({label}) ({rec.select(whole_node, matchers)}))",
        instant=True,
        table=True,
    )


def _month_to_date_table(board: Board, label: str, keys: tuple[str, str], matchers: str) -> None:
    rec = board.recorded
    whole_node, gpu_only = keys
    board.add(
        table_panel(
            f"Month to date by {label}: whole node and GPU only",
            f"Month-to-date spend of each {label} over the whole node ({rec(whole_node)}: GPU, CPU, memory and "
            f"storage) and of its GPUs alone ({rec(gpu_only)}), and the difference: what the rest of the node "
            "adds.",
            "currencyUSD",
            [
                Query(f"sum by ({label}) ({rec.select(whole_node, matchers)})", instant=True, table=True),
                Query(f"sum by ({label}) ({rec.select(gpu_only, matchers)})", instant=True, table=True),
                _with_and_without_gpu(board, label, whole_node, gpu_only, matchers),
            ],
            column_units=_USD_COLUMNS,
            renames={"Value #A": "Whole node (USD)", "Value #B": "GPU only (USD)", "Value #C": "Without GPU (USD)"},
        ),
        w=10, h=8,
    )


def _rate_with_and_without_gpu(board: Board, label: str, keys: tuple[str, str], matchers: str) -> None:
    rec = board.recorded
    whole_node, gpu_only = keys
    legend = "{{" + label + "}}"
    board.add(
        timeseries_panel(
            f"Cost by {label}, whole node and GPU only (USD/h)",
            f"Cost per hour of each {label} over the whole node ({rec(whole_node)}: GPU, CPU, memory and "
            f"storage, solid) and of its GPUs alone ({rec(gpu_only)}, the same as the panels above).",
            "currencyUSD",
            [
                Query(f"sum by ({label}) ({rec.select(whole_node, matchers)})", f"{legend} whole node"),
                Query(f"sum by ({label}) ({rec.select(gpu_only, matchers)})", f"{legend} GPU only"),
            ],
        ),
        w=14, h=8,
    )


def add_whole_node_row(board: Board) -> None:
    """Append the row: cost now, team and model with and without GPU, the breakdown by resource."""
    rec = board.recorded
    board.row("Whole node: with and without GPU")
    board.add(
        stat_panel(
            "Whole-node cost now (USD/h)",
            "Cost of every node of the cluster per hour, all resources (GPU, CPU, memory, storage), allocated or "
            f"not: the sum of {rec('cluster_resource_node_cost_rate')}. Not filtered by team.",
            "currencyUSD",
            [Query(f"sum({rec.select('cluster_resource_node_cost_rate', CLUSTER)})", instant=True)],
        ),
        w=6, h=4,
    )
    board.add(
        stat_panel(
            "Whole-node month-to-date spend",
            "Whole-node spend attributed to the selected teams since 00:00 UTC on the 1st: the sum of "
            f"{rec('team_whole_node_spend_month_to_date')}; the GPU-only figure is the Month-to-date spend above.",
            "currencyUSD",
            [Query(f"sum({rec.select('team_whole_node_spend_month_to_date', TEAMS)})", instant=True)],
        ),
        w=6, h=4,
    )
    board.add(
        stat_panel(
            "GPU share of whole-node cost",
            f"GPU cost per hour of the selected teams ({rec('team_cost_rate')}) divided by their whole-node cost "
            f"({rec('team_whole_node_cost_rate')}).",
            "percentunit",
            [
                Query(
                    f"sum({rec.select('team_cost_rate', TEAMS)})"
                    f" / (sum({rec.select('team_whole_node_cost_rate', TEAMS)}) > 0)",
                    instant=True,
                )
            ],
        ),
        w=6, h=4,
    )
    board.add(
        stat_panel(
            "Unallocated node cost now (USD/h)",
            "Cost per hour of what no container claimed, all resources: the sum of "
            f"{rec('node_resource_unallocated_rate')} (for gpu, the unallocated GPUs). Not filtered by team.",
            "currencyUSD",
            [Query(f"sum({rec.select('node_resource_unallocated_rate', CLUSTER)})", instant=True)],
        ),
        w=6, h=4,
    )
    _rate_with_and_without_gpu(board, "team", ("team_whole_node_cost_rate", "team_cost_rate"), TEAMS)
    _month_to_date_table(
        board, "team", ("team_whole_node_spend_month_to_date", "team_spend_month_to_date"), TEAMS
    )
    _rate_with_and_without_gpu(board, "model", ("team_model_whole_node_cost_rate", "team_model_cost_rate"), MODELS)
    _month_to_date_table(
        board, "model", ("team_model_whole_node_spend_month_to_date", "team_model_spend_month_to_date"), MODELS
    )
    board.add(
        timeseries_panel(
            "Whole-node cost by resource (USD/h)",
            "Attributed cost per hour of the selected teams by resource (gpu, cpu, memory, storage), stacked: "
            f"{rec('team_resource_cost_rate')} summed by resource.",
            "currencyUSD",
            [Query(f"sum by (resource) ({rec.select('team_resource_cost_rate', TEAMS)})", "{{resource}}")],
            stacked=True,
        ),
        w=12, h=8,
    )
    board.add(
        table_panel(
            "Cost by team and resource (USD/h)",
            f"Attributed cost per hour of each selected team by resource now ({rec('team_resource_cost_rate')}), "
            f"and what no container claimed on the nodes ({rec('node_resource_unallocated_rate')}).",
            "currencyUSD",
            [
                Query(
                    f"sum by (team, resource) ({rec.select('team_resource_cost_rate', TEAMS)})",
                    instant=True, table=True,
                ),
                Query(
                    f'label_replace(sum by (resource) ({rec.select("node_resource_unallocated_rate", CLUSTER)}),'
                    ' "team", "(unallocated)", "", "")',
                    instant=True, table=True,
                ),
            ],
            renames={"Value #A": "USD/h", "Value #B": "Unallocated USD/h"},
        ),
        w=12, h=8,
    )
