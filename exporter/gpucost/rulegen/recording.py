"""The recording rules of rules/gpucost.rules.yaml: cost rates, month-to-date spend, runs.

GPU cost is recorded here; whole-node cost (every resource of the node) in `whole_node`, and the
month-to-date and forecast chain both share in `spend`.

Every `record:` name comes from the recorded-series table (`gpucost.contract.recorded`);
the method behind each series is documented in docs/rules.md.
"""

from __future__ import annotations

from typing import Any

from gpucost.contract.recorded import COST_RATE_LEVELS
from gpucost.rulegen.options import RuleOptions
from gpucost.rulegen.promql import budget_join, by, record, seconds_left_in_month, series
from gpucost.rulegen.spend import GPU, forecast_month_end_rules, spend_month_to_date_rules
from gpucost.rulegen.whole_node import whole_node_rules

__all__ = ["recording_groups"]

Rule = dict[str, Any]


def _workload_rate_rules(options: RuleOptions) -> list[Rule]:
    w = options.rate_window
    workload = by("namespace", "component", *options.workload_labels)
    base = series("namespace_workload_cost_rate", options)
    rules = [
        record(
            "namespace_workload_cost_rate",
            options,
            f"sum by ({workload}) (rate(gpucost_workload_gpu_cost_usd_total[{w}])) * 3600\n",
        ),
    ]
    for level, labels in COST_RATE_LEVELS:
        if set(labels) <= {"namespace", "component", *options.workload_labels}:
            rules.append(record(f"{level}_cost_rate", options, f"sum by ({by(*labels)}) ({base})\n"))
    return rules


def _node_rate_rules(options: RuleOptions) -> list[Rule]:
    w = options.rate_window
    return [
        record(
            "pod_cost_rate",
            options,
            f"sum by (namespace, pod, team, model) (rate(gpucost_container_gpu_cost_usd_total[{w}])) * 3600\n",
        ),
        record(
            "node_unallocated_rate",
            options,
            f"sum by (node) (rate(gpucost_gpu_unallocated_cost_usd_total[{w}])) * 3600\n",
        ),
        record(
            "node_gpu_model_unallocated_rate",
            options,
            "sum by (node, gpu_model) (\n"
            f"    rate(gpucost_gpu_unallocated_cost_usd_total[{w}])\n"
            "  * on (node, uuid) group_left (gpu_model)\n"
            "    max by (node, uuid, gpu_model) (gpucost_gpu_info)\n"
            ") * 3600\n",
        ),
        record(
            "node_pool_unallocated_rate",
            options,
            f"sum by (node_pool) (rate(gpucost_gpu_unallocated_cost_usd_total[{w}])) * 3600\n",
        ),
        record(
            "node_pool_cost_rate",
            options,
            f"sum by (node_pool) (rate(gpucost_gpu_cost_usd_total[{w}])) * 3600\n",
        ),
        record("cluster_cost_rate", options, f"sum (rate(gpucost_gpu_cost_usd_total[{w}])) * 3600\n"),
    ]


def _share_rules(options: RuleOptions) -> list[Rule]:
    w = options.rate_window
    base = series("namespace_workload_cost_rate", options)
    pool = series("node_pool_cost_rate", options)
    return [
        record(
            "team_model_efficiency",
            options,
            f'sum by (team, model) ({base}{{component="active"}})\n'
            f"  /\nsum by (team, model) ({base}) > 0\n",
        ),
        record(
            "node_pool_idle_share",
            options,
            "(\n"
            f'    (sum by (node_pool) (rate(gpucost_container_gpu_cost_usd_total{{component="idle"}}[{w}]))'
            f" or 0 * {pool})\n"
            f"  + on (node_pool)\n"
            f"    (sum by (node_pool) (rate(gpucost_gpu_unallocated_cost_usd_total[{w}]))"
            f" or 0 * {pool})\n"
            ") * 3600\n"
            f"  / on (node_pool)\n({pool} > 0)\n",
        ),
        record(
            "cluster_unattributed_share",
            options,
            f'(sum ({base}{{team=""}}) or vector(0))\n  /\n(sum ({base}) > 0)\n',
        ),
        record(
            "pod_utilization",
            options,
            "max by (namespace, pod, team) (\n"
            f"    max by (namespace, pod, team, uuid) (rate(gpucost_container_gpu_seconds_total[{w}]) > 0) * 0\n"
            "  + on (uuid) group_left ()\n"
            f"    max by (uuid) (avg_over_time(gpucost_gpu_utilization_ratio[{w}]))\n"
            ")\n",
        ),
    ]


def _forecast_rules(options: RuleOptions) -> list[Rule]:
    left = seconds_left_in_month()
    team_mtd = series("team_spend_month_to_date", options)
    return [
        *forecast_month_end_rules(options, GPU),
        record(
            "team_cost_rate_avg7d",
            options,
            f"sum by (team) (sum_over_time({series('namespace_team_model_spend_increase1h', options)}[7d:1h]))"
            " / (7 * 24)\n",
        ),
        record(
            "team_forecast_month_end_7d",
            options,
            f"    {team_mtd}\n  + on (team)\n"
            f"    {series('team_cost_rate_avg7d', options)} * {left} / 3600\n"
            f"or\n  {team_mtd}\n",
        ),
    ]


def _month_to_date_rules(options: RuleOptions) -> list[Rule]:
    budget_mtd = series("budget_spend_month_to_date", options)
    return [
        *spend_month_to_date_rules(options, GPU, "gpucost_workload_gpu_cost_usd_total"),
        record(
            "team_top_model_spend_month_to_date",
            options,
            f"topk by (team) (1, {series('team_model_spend_month_to_date', options)})\n",
        ),
        *_forecast_rules(options),
        record("budget_spend_month_to_date", options, budget_join("spend_month_to_date", options)),
        record("budget_forecast_month_end", options, budget_join("forecast_month_end", options)),
        record(
            "budget_used_ratio",
            options,
            f"{budget_mtd}\n  / on (budget, team)\n(max by (budget, team) (gpucost_budget_usd) > 0)\n",
        ),
    ]


def _run_rules(options: RuleOptions) -> list[Rule]:
    pod_cost = "sum by (namespace, pod, team, model) (gpucost_container_gpu_cost_usd_total)"
    runs = series("owner_run_cost", options)
    kinds = options.run_owner_kinds
    return [
        record(
            "pod_owner_cost",
            options,
            f"    {pod_cost}\n"
            "  * on (namespace, pod) group_left (owner_kind, owner_name)\n"
            "    max by (namespace, pod, owner_kind, owner_name) (gpucost_pod_owner_info)\n"
            "or\n"
            "  label_replace(\n"
            "    label_replace(\n"
            f"      {pod_cost} unless on (namespace, pod) gpucost_pod_owner_info,\n"
            '      "owner_kind", "Pod", "", ""\n'
            "    ),\n"
            '    "owner_name", "$1", "pod", "(.*)"\n'
            "  )\n",
        ),
        record(
            "owner_run_cost",
            options,
            "sum by (namespace, owner_kind, owner_name, team, model) (\n"
            f"  max_over_time({series('pod_owner_cost', options)}[{options.run_lookback}])\n"
            ")\n",
        ),
        record("model_run_cost_median", options, f'quantile by (model) (0.5, {runs}{{owner_kind=~"{kinds}"}})\n'),
        record("model_runs_count", options, f'count by (model) ({runs}{{owner_kind=~"{kinds}"}})\n'),
    ]


def _anomaly_baseline_rules(options: RuleOptions) -> list[Rule]:
    return [
        record(
            "team_model_cost_rate_median7d",
            options,
            f"quantile_over_time(0.5, {series('team_model_cost_rate', options)}[7d:1h])\n",
        ),
    ]


def recording_groups(options: RuleOptions) -> list[dict[str, Any]]:
    """The rule groups of rules/gpucost.rules.yaml."""
    return [
        # One group: the month-to-date and baseline rules read the rates recorded in the
        # same evaluation, which only rule order within a group guarantees.
        {
            "name": "gpucost.cost",
            "rules": [
                *_workload_rate_rules(options),
                *_node_rate_rules(options),
                *_share_rules(options),
                *whole_node_rules(options),
                *_month_to_date_rules(options),
                *_anomaly_baseline_rules(options),
            ],
        },
        {"name": "gpucost.runs", "rules": _run_rules(options)},
    ]
