"""Whole-node cost rules (issue #19): what teams and models cost with and without GPU.

The exporter's `gpucost_workload_cost_usd_total{resource}` holds every resource of the node
(gpu, cpu, memory, storage; `resource="gpu"` equals the GPU family). These rules record its rate
per workload and resource, the rate by resource at the team, team+model and namespace+team+model
levels, the total over resources at the money levels (`*:gpucost_whole_node_cost_usd_per_hour`),
the node's cost and unallocated cost by resource, and the month-to-date spend and month-end
forecast over the whole node, which budgets with `resources: node` read.
"""

from __future__ import annotations

from typing import Any

from gpucost.contract.recorded import MONEY_SCOPES, RESOURCE_RATE_LEVELS
from gpucost.rulegen.options import RuleOptions
from gpucost.rulegen.promql import by, record, series
from gpucost.rulegen.spend import WHOLE_NODE, forecast_month_end_rules, spend_month_to_date_rules

__all__ = ["WORKLOAD_COUNTER", "whole_node_rules"]

Rule = dict[str, Any]

WORKLOAD_COUNTER = "gpucost_workload_cost_usd_total"


def _rate_rules(options: RuleOptions) -> list[Rule]:
    w = options.rate_window
    # No component label: the node family splits a container's cost by resource, not by busy/idle.
    workload = by("namespace", "resource", *options.workload_labels)
    base = series("namespace_workload_resource_cost_rate", options)
    return [
        record(
            "namespace_workload_resource_cost_rate",
            options,
            f"sum by ({workload}) (rate({WORKLOAD_COUNTER}[{w}])) * 3600\n",
        ),
        *(
            record(f"{level}_cost_rate", options, f"sum by ({by(*labels)}) ({base})\n")
            for level, labels in RESOURCE_RATE_LEVELS
        ),
        *(
            record(f"{level}_whole_node_cost_rate", options, f"sum by ({by(*labels)}) ({base})\n")
            for level, labels in MONEY_SCOPES
        ),
    ]


def _node_rules(options: RuleOptions) -> list[Rule]:
    w = options.rate_window
    return [
        record(
            "cluster_resource_node_cost_rate",
            options,
            f"sum by (resource) (rate(gpucost_node_cost_usd_total[{w}])) * 3600\n",
        ),
        record(
            "node_resource_unallocated_rate",
            options,
            f"sum by (node, resource) (rate(gpucost_node_unallocated_cost_usd_total[{w}])) * 3600\n",
        ),
    ]


def whole_node_rules(options: RuleOptions) -> list[Rule]:
    """Rates first: month-to-date integrates the rate recorded in the same evaluation."""
    return [
        *_rate_rules(options),
        *_node_rules(options),
        *spend_month_to_date_rules(options, WHOLE_NODE, WORKLOAD_COUNTER),
        *forecast_month_end_rules(options, WHOLE_NODE),
    ]
