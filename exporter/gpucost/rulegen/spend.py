"""Month-to-date spend and month-end forecast rules, for GPU cost and for whole-node cost alike.

Both chains have the same shape (docs/rules.md): an hourly `increase1h` tile of the workload
counter, month-to-date as the month's completed tiles plus the current hour integrated from the
recorded rate, roll-ups to namespace+team, team+model and team, and a forecast of month-to-date
plus the current rate over the hours left. A flavour names the chain in the recorded-series keys:
`""` for GPU cost (`team_spend_month_to_date`), `"whole_node_"` for whole-node cost
(`team_whole_node_spend_month_to_date`).
"""

from __future__ import annotations

from typing import Any

from gpucost.rulegen.options import RuleOptions, duration_seconds
from gpucost.rulegen.promql import (
    month_index_at_end,
    month_index_of_step_start,
    record,
    seconds_left_in_month,
    series,
)

__all__ = ["GPU", "WHOLE_NODE", "forecast_month_end_rules", "rollups", "spend_month_to_date_rules"]

Rule = dict[str, Any]

GPU = ""
WHOLE_NODE = "whole_node_"


def _month_to_date_rule(options: RuleOptions, flavour: str) -> Rule:
    w = options.rate_window
    same_month = f"{month_index_of_step_start()} == {month_index_at_end()}"
    same_hour = "hour(vector(time() - 1)) == scalar(last_over_time(hour()[1m:1m] @ end()))"
    increase = series(f"namespace_team_model_{flavour}spend_increase1h", options)
    rate = series(f"namespace_team_model_{flavour}cost_rate", options)
    return record(
        f"namespace_team_model_{flavour}spend_month_to_date",
        options,
        "sum by (namespace, team, model) (\n"
        "    label_replace(\n"
        "      sum_over_time(\n"
        f"        ({increase} and on () ({same_month}))[31d:1h]\n"
        "      ),\n"
        '      "part", "completed_hours", "", ""\n'
        "    )\n"
        "  or\n"
        "    label_replace(\n"
        "      sum_over_time(\n"
        f"        ({rate} and on () ({same_hour}))[1h:{w}]\n"
        f"      ) * {duration_seconds(w)} / 3600,\n"
        '      "part", "current_hour", "", ""\n'
        "    )\n"
        ")\n",
    )


def rollups(kind: str, options: RuleOptions) -> list[Rule]:
    """namespace_team, team_model and team sums of a namespace_team_model series."""
    source = series(f"namespace_team_model_{kind}", options)
    return [
        record(f"{scope}_{kind}", options, f"sum by ({labels}) ({source})\n")
        for scope, labels in (("namespace_team", "namespace, team"), ("team_model", "team, model"), ("team", "team"))
    ]


def spend_month_to_date_rules(options: RuleOptions, flavour: str, counter: str) -> list[Rule]:
    """The hourly tile of `counter`, month-to-date spend and its roll-ups."""
    return [
        record(
            f"namespace_team_model_{flavour}spend_increase1h",
            options,
            f"sum by (namespace, team, model) (increase({counter}[1h]))\n",
        ),
        _month_to_date_rule(options, flavour),
        *rollups(f"{flavour}spend_month_to_date", options),
    ]


def forecast_month_end_rules(options: RuleOptions, flavour: str) -> list[Rule]:
    """Month-to-date plus the current rate over the rest of the month, and its roll-ups."""
    mtd = series(f"namespace_team_model_{flavour}spend_month_to_date", options)
    rate = series(f"namespace_team_model_{flavour}cost_rate", options)
    left = seconds_left_in_month()
    return [
        record(
            f"namespace_team_model_{flavour}forecast_month_end",
            options,
            f"    {mtd}\n"
            f"  + on (namespace, team, model)\n"
            f"    {rate} * {left} / 3600\n"
            f"or\n  {mtd}\n"
            f"or\n  {rate} * {left} / 3600\n",
        ),
        *rollups(f"{flavour}forecast_month_end", options),
    ]
