"""Generate the gpucost Prometheus recording and alerting rules from one set of options.

`rules/gpucost.rules.yaml` and `rules/gpucost.alerts.yaml` are the default output of
`render_rules(RuleOptions())` / `render_alerts(RuleOptions())`; a test fails when they drift.
The method behind every series is documented in docs/rules.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpucost.durations import DurationError, parse_simple_duration
from gpucost.metrics.names import DEFAULT_WORKLOAD_LABELS

__all__ = [
    "BUDGET_TIERS",
    "RuleOptions",
    "alert_names",
    "duration_seconds",
    "render_alerts",
    "render_rules",
    "write_rules",
]

RULES_FILE = "gpucost.rules.yaml"
ALERTS_FILE = "gpucost.alerts.yaml"

# (threshold ratio published by the sidecar, threshold label, severity)
BUDGET_TIERS: tuple[tuple[float, str, str], ...] = (
    (0.5, "50", "info"),
    (0.8, "80", "warning"),
    (1.0, "100", "critical"),
    (1.25, "125", "critical"),
)

# A job name the chart can set and a selector can quote without escaping.
_JOB = re.compile(r"^[A-Za-z0-9_.:/-]+$")


def duration_seconds(duration: str) -> int:
    """Seconds in a simple Prometheus duration such as `5m`; raises ValueError otherwise.

    Simple because the text goes into record names (`rate5m`) and range selectors as written.
    """
    try:
        return parse_simple_duration(duration)
    except DurationError:
        raise ValueError(f"duration {duration!r} must be a number followed by s, m, h or d") from None


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """Every window and threshold of the rules; the defaults produce the committed files."""

    rate_window: str = "5m"
    workload_labels: tuple[str, ...] = DEFAULT_WORKLOAD_LABELS
    budget_for: str = "1m"
    forecast_for: str = "1h"
    anomaly_factor: float = 10.0
    anomaly_min_usd_per_hour: float = 5.0
    anomaly_for: str = "15m"
    job_anomaly_factor: float = 10.0
    job_anomaly_min_usd: float = 50.0
    job_anomaly_min_runs: int = 3
    job_anomaly_for: str = "5m"
    run_lookback: str = "1d"
    run_owner_kinds: str = "Job|PyTorchJob|TFJob|MPIJob|XGBoostJob|RayJob"
    idle_utilization: float = 0.05
    idle_for: str = "2h"
    unallocated_usd_per_hour: float = 10.0
    unallocated_for: str = "6h"
    prices_stale_days: int = 90
    unattributed_share: float = 0.1
    unattributed_for: str = "1h"
    exporter_down_for: str = "5m"
    # The exact `job` label of the exporter's targets: the chart's ServiceMonitor/PodMonitor
    # set it (value exporter.scrapeJobName); absent() needs an exact name, not a regex.
    exporter_job: str = "gpucost-exporter"
    collector_failing_for: str = "15m"
    unpriced_for: str = "15m"
    dashboard_url: str = "https://grafana.example.com/d/gpucost-team-budget/gpucost-team-budget"
    runbook_base_url: str = "https://github.com/gpucost/gpucost/blob/main/docs/runbooks.md"

    def __post_init__(self) -> None:
        for name in (
            "rate_window", "budget_for", "forecast_for", "anomaly_for", "job_anomaly_for",
            "run_lookback", "idle_for", "unallocated_for", "unattributed_for",
            "exporter_down_for", "collector_failing_for", "unpriced_for",
        ):
            duration_seconds(getattr(self, name))
        window = duration_seconds(self.rate_window)
        if not 0 < window <= 300 or 3600 % window:
            # The current hour of month-to-date spend integrates the recorded rate every
            # rate_window: the window must tile the hour and stay within the 5m lookback delta.
            raise ValueError("rate_window must divide 1h and be at most 5m")
        if not _JOB.match(self.exporter_job):
            raise ValueError(f"exporter_job {self.exporter_job!r} must be letters, digits and _ . : / -")
        for label in ("team", "model"):
            if label not in self.workload_labels:
                raise ValueError(f"workload_labels must contain {label!r}")


# --- PromQL building blocks ------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:g}"


def _rate(options: RuleOptions) -> str:
    return f"rate{options.rate_window}"


def _by(*labels: str) -> str:
    return ", ".join(labels)


def _month_index_of_step_start() -> str:
    # The month of (step - 1s): a step at 00:00 on the 1st integrates the last
    # window of the previous month, so it belongs to the previous month.
    return "(year(vector(time() - 1)) * 12 + month(vector(time() - 1)))"


def _month_index_at_end() -> str:
    # `@ end()` pins the inner subquery to the rule's evaluation time although it is
    # evaluated at every step of the outer 31d subquery (Prometheus 2.42 and VictoriaMetrics).
    return "scalar(last_over_time((year() * 12 + month())[1m:1m] @ end()))"


def _seconds_left_in_month() -> str:
    return "(scalar((days_in_month() - day_of_month() + 1) * 86400) - time() % 86400)"


def _budget_join(metric: str) -> str:
    """Spend per budget: team scope, plus model and/or namespace when the budget carries them."""
    budget = "gpucost_budget_usd"
    scopes = (
        ('{model="", namespace=""}', ("budget", "team"), ("team",), f"team:{metric}"),
        ('{model!="", namespace=""}', ("budget", "team", "model"), ("team", "model"), f"team_model:{metric}"),
        ('{model="", namespace!=""}', ("budget", "team", "namespace"), ("namespace", "team"),
         f"namespace_team:{metric}"),
        ('{model!="", namespace!=""}', ("budget", "team", "model", "namespace"),
         ("namespace", "team", "model"), f"namespace_team_model:{metric}"),
    )
    parts = [
        f"    0 * max by ({_by(*keep)}) ({budget}{selector})\n"
        f"      + on ({_by(*on)}) group_left () {series}"
        for selector, keep, on, series in scopes
    ]
    parts.append(f"    0 * max by (budget, team) ({budget})")
    return "max by (budget, team) (\n" + "\n  or\n".join(parts) + "\n)\n"


def _record(name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr}


# --- recording rules --------------------------------------------------------------


def _rate_rules(options: RuleOptions) -> list[dict[str, Any]]:
    r = _rate(options)
    w = options.rate_window
    workload = _by("namespace", "component", *options.workload_labels)
    base = f"namespace_workload:gpucost_cost_usd_per_hour:{r}"
    rules = [
        _record(base, f"sum by ({workload}) (rate(gpucost_workload_gpu_cost_usd_total[{w}])) * 3600\n"),
    ]
    levels: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("namespace", ("namespace",)),
        ("team", ("team",)),
        ("team_model", ("team", "model")),
        ("namespace_team", ("namespace", "team")),
        ("namespace_team_model", ("namespace", "team", "model")),
        ("model_version", ("model", "model_version")),
        ("cost_center", ("cost_center",)),
        ("business_unit", ("business_unit",)),
        ("team_component", ("team", "component")),
    )
    for level, labels in levels:
        if not set(labels) <= {"namespace", "component", *options.workload_labels}:
            continue
        rules.append(_record(f"{level}:gpucost_cost_usd_per_hour:{r}", f"sum by ({_by(*labels)}) ({base})\n"))
    rules += [
        _record(
            f"pod:gpucost_cost_usd_per_hour:{r}",
            f"sum by (namespace, pod, team, model) (rate(gpucost_container_gpu_cost_usd_total[{w}])) * 3600\n",
        ),
        _record(
            f"node:gpucost_unallocated_cost_usd_per_hour:{r}",
            f"sum by (node) (rate(gpucost_gpu_unallocated_cost_usd_total[{w}])) * 3600\n",
        ),
        _record(
            f"node_gpu_model:gpucost_unallocated_cost_usd_per_hour:{r}",
            "sum by (node, gpu_model) (\n"
            f"    rate(gpucost_gpu_unallocated_cost_usd_total[{w}])\n"
            "  * on (node, uuid) group_left (gpu_model)\n"
            "    max by (node, uuid, gpu_model) (gpucost_gpu_info)\n"
            ") * 3600\n",
        ),
        _record(
            f"node_pool:gpucost_unallocated_cost_usd_per_hour:{r}",
            f"sum by (node_pool) (rate(gpucost_gpu_unallocated_cost_usd_total[{w}])) * 3600\n",
        ),
        _record(
            f"node_pool:gpucost_cost_usd_per_hour:{r}",
            f"sum by (node_pool) (rate(gpucost_gpu_cost_usd_total[{w}])) * 3600\n",
        ),
        _record(
            f"cluster:gpucost_cost_usd_per_hour:{r}",
            f"sum (rate(gpucost_gpu_cost_usd_total[{w}])) * 3600\n",
        ),
        _record(
            "team_model:gpucost_gpu_efficiency:ratio",
            f'sum by (team, model) ({base}{{component="active"}})\n'
            f"  /\nsum by (team, model) ({base}) > 0\n",
        ),
        _record(
            "node_pool:gpucost_idle_cost_share:ratio",
            "(\n"
            f'    (sum by (node_pool) (rate(gpucost_container_gpu_cost_usd_total{{component="idle"}}[{w}]))'
            f" or 0 * node_pool:gpucost_cost_usd_per_hour:{r})\n"
            f"  + on (node_pool)\n"
            f"    (sum by (node_pool) (rate(gpucost_gpu_unallocated_cost_usd_total[{w}]))"
            f" or 0 * node_pool:gpucost_cost_usd_per_hour:{r})\n"
            ") * 3600\n"
            f"  / on (node_pool)\n(node_pool:gpucost_cost_usd_per_hour:{r} > 0)\n",
        ),
        _record(
            "cluster:gpucost_unattributed_cost_share:ratio",
            f'(sum ({base}{{team=""}}) or vector(0))\n  /\n(sum ({base}) > 0)\n',
        ),
        _record(
            f"pod:gpucost_gpu_utilization:avg{w}",
            "max by (namespace, pod, team) (\n"
            f"    max by (namespace, pod, team, uuid) (rate(gpucost_container_gpu_seconds_total[{w}]) > 0) * 0\n"
            "  + on (uuid) group_left ()\n"
            f"    max by (uuid) (avg_over_time(gpucost_gpu_utilization_ratio[{w}]))\n"
            ")\n",
        ),
    ]
    return rules


def _month_to_date_rules(options: RuleOptions) -> list[dict[str, Any]]:
    r = _rate(options)
    w = options.rate_window
    mtd = "gpucost_spend_usd:month_to_date"
    forecast = "gpucost_spend_usd:forecast_month_end"
    same_month = f"{_month_index_of_step_start()} == {_month_index_at_end()}"
    same_hour = "hour(vector(time() - 1)) == scalar(last_over_time(hour()[1m:1m] @ end()))"
    rules = [
        _record(
            "namespace_team_model:gpucost_spend_usd:increase1h",
            "sum by (namespace, team, model) (increase(gpucost_workload_gpu_cost_usd_total[1h]))\n",
        ),
        _record(
            f"namespace_team_model:{mtd}",
            "sum by (namespace, team, model) (\n"
            "    label_replace(\n"
            "      sum_over_time(\n"
            f"        (namespace_team_model:gpucost_spend_usd:increase1h and on () ({same_month}))[31d:1h]\n"
            "      ),\n"
            '      "part", "completed_hours", "", ""\n'
            "    )\n"
            "  or\n"
            "    label_replace(\n"
            "      sum_over_time(\n"
            f"        (namespace_team_model:gpucost_cost_usd_per_hour:{r} and on () ({same_hour}))[1h:{w}]\n"
            f"      ) * {duration_seconds(w)} / 3600,\n"
            '      "part", "current_hour", "", ""\n'
            "    )\n"
            ")\n",
        ),
        _record(f"namespace_team:{mtd}", f"sum by (namespace, team) (namespace_team_model:{mtd})\n"),
        _record(f"team_model:{mtd}", f"sum by (team, model) (namespace_team_model:{mtd})\n"),
        _record(f"team:{mtd}", f"sum by (team) (namespace_team_model:{mtd})\n"),
        _record("team:gpucost_top_model_spend_usd:month_to_date", f"topk by (team) (1, team_model:{mtd})\n"),
        _record(
            f"namespace_team_model:{forecast}",
            f"    namespace_team_model:{mtd}\n"
            f"  + on (namespace, team, model)\n"
            f"    namespace_team_model:gpucost_cost_usd_per_hour:{r} * {_seconds_left_in_month()} / 3600\n"
            f"or\n  namespace_team_model:{mtd}\n"
            f"or\n  namespace_team_model:gpucost_cost_usd_per_hour:{r} * {_seconds_left_in_month()} / 3600\n",
        ),
        _record(f"namespace_team:{forecast}", f"sum by (namespace, team) (namespace_team_model:{forecast})\n"),
        _record(f"team_model:{forecast}", f"sum by (team, model) (namespace_team_model:{forecast})\n"),
        _record(f"team:{forecast}", f"sum by (team) (namespace_team_model:{forecast})\n"),
        _record(
            "team:gpucost_cost_usd_per_hour:avg7d",
            "sum by (team) (sum_over_time(namespace_team_model:gpucost_spend_usd:increase1h[7d:1h])) / (7 * 24)\n",
        ),
        _record(
            f"team:{forecast}_7d",
            f"    team:{mtd}\n  + on (team)\n"
            f"    team:gpucost_cost_usd_per_hour:avg7d * {_seconds_left_in_month()} / 3600\n"
            f"or\n  team:{mtd}\n",
        ),
        _record(f"budget:{mtd}", _budget_join(mtd)),
        _record(f"budget:{forecast}", _budget_join(forecast)),
        _record(
            "budget:gpucost_budget_used:ratio",
            f"budget:{mtd}\n  / on (budget, team)\n(max by (budget, team) (gpucost_budget_usd) > 0)\n",
        ),
    ]
    return rules


def _run_rules(options: RuleOptions) -> list[dict[str, Any]]:
    pod_cost = "sum by (namespace, pod, team, model) (gpucost_container_gpu_cost_usd_total)"
    return [
        _record(
            "pod_owner:gpucost_cost_usd:sum",
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
        _record(
            "owner:gpucost_run_cost_usd:sum",
            "sum by (namespace, owner_kind, owner_name, team, model) (\n"
            f"  max_over_time(pod_owner:gpucost_cost_usd:sum[{options.run_lookback}])\n"
            ")\n",
        ),
        _record(
            "model:gpucost_run_cost_usd:median",
            f'quantile by (model) (0.5, owner:gpucost_run_cost_usd:sum{{owner_kind=~"{options.run_owner_kinds}"}})\n',
        ),
        _record(
            "model:gpucost_runs:count",
            f'count by (model) (owner:gpucost_run_cost_usd:sum{{owner_kind=~"{options.run_owner_kinds}"}})\n',
        ),
    ]


def _anomaly_baseline_rules(options: RuleOptions) -> list[dict[str, Any]]:
    r = _rate(options)
    return [
        _record(
            "team_model:gpucost_cost_usd_per_hour:median7d",
            f"quantile_over_time(0.5, team_model:gpucost_cost_usd_per_hour:{r}[7d:1h])\n",
        ),
    ]


def render_rules(options: RuleOptions) -> str:
    """The recording-rules file as YAML text."""
    document = {
        "groups": [
            # One group: the month-to-date and baseline rules read the rates recorded in the
            # same evaluation, which only rule order within a group guarantees.
            {
                "name": "gpucost.cost",
                "rules": _rate_rules(options) + _month_to_date_rules(options) + _anomaly_baseline_rules(options),
            },
            {"name": "gpucost.runs", "rules": _run_rules(options)},
        ]
    }
    return _dump(document, "recording")


# --- alerting rules ---------------------------------------------------------------

_THOUSANDS = ' | reReplaceAll "^(-?[0-9]+)([0-9]{3})" "${1},${2}"'


def _usd_from_query(query: str, *args: str) -> str:
    """Template text: run `query` (printf format with args) and print the first value as 16,000.00."""
    printf_args = " ".join(args)
    return (
        f"{{{{ with printf {_go_quote(query)} {printf_args} | query }}}}"
        f'{{{{ . | first | value | printf "%.2f"{_THOUSANDS * 4} }}}}{{{{ end }}}}'
    )


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _runbook(options: RuleOptions, alert: str) -> str:
    return f"{options.runbook_base_url}#{alert.lower()}"


def _alert(
    options: RuleOptions,
    name: str,
    expr: str,
    duration: str,
    labels: dict[str, str],
    summary: str,
    description: str,
    extra_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    annotations = dict(extra_annotations or {})
    annotations["summary"] = summary
    annotations["description"] = description
    annotations["runbook_url"] = _runbook(options, name)
    return {"alert": name, "expr": expr, "for": duration, "labels": labels, "annotations": annotations}


def _budget_alerts(options: RuleOptions) -> list[dict[str, Any]]:
    key = "$labels.budget $labels.team"
    sel = "{budget=%q,team=%q}"
    spend = _usd_from_query(f"budget:gpucost_spend_usd:month_to_date{sel}", key)
    budget = _usd_from_query(f"max by (budget, team) (gpucost_budget_usd{sel})", key)
    forecast = _usd_from_query(f"budget:gpucost_spend_usd:forecast_month_end{sel}", key)
    percent = (
        f"{{{{ with printf {_go_quote('floor(100 * budget:gpucost_budget_used:ratio' + sel + ')')} {key}"
        ' | query }}{{ . | first | value | printf "%.0f" }}{{ end }}'
    )
    top_model = (
        f"{{{{ with printf {_go_quote('team:gpucost_top_model_spend_usd:month_to_date{team=%q}')} $labels.team"
        ' | query }}{{ . | first | label "model" }}{{ end }}'
    )
    alerts = []
    for ratio, label, severity in BUDGET_TIERS:
        name = f"GpuCostBudget{label}PercentUsed"
        expr = (
            "(\n"
            "    budget:gpucost_budget_used:ratio\n"
            "  >= on (budget) group_left ()\n"
            f"    max by (budget) (gpucost_budget_threshold_ratio == {_num(ratio)})\n"
            ")\n"
            "+ on (budget, team) group_left (slack_channel)\n"
            "  0 * max by (budget, team, slack_channel) (gpucost_budget_usd)\n"
        )
        alerts.append(
            _alert(
                options,
                name,
                expr,
                options.budget_for,
                {"threshold": label, "severity": severity},
                f"Team {{{{ $labels.team }}}} has used {label}% of GPU budget {{{{ $labels.budget }}}}",
                f"Month-to-date GPU spend of team {{{{ $labels.team }}}} is ${spend} of the ${budget} "
                f"budget {{{{ $labels.budget }}}} ({percent}% used). "
                f"At the current burn rate the month ends at ${forecast}. Top model: {top_model}.",
                {
                    "current_spend_usd": spend,
                    "budget_usd": budget,
                    "percent_used": percent,
                    "forecast_usd": forecast,
                    "top_model": top_model,
                    "dashboard_url": f"{options.dashboard_url}?var-team={{{{ $labels.team }}}}",
                },
            )
        )
    alerts.append(
        _alert(
            options,
            "GpuCostForecastOverBudget",
            "budget:gpucost_spend_usd:forecast_month_end\n"
            "  > on (budget, team)\n"
            "max by (budget, team) (gpucost_budget_usd)\n",
            options.forecast_for,
            {"severity": "warning"},
            "Team {{ $labels.team }} is on track to exceed GPU budget {{ $labels.budget }}",
            f"At the current burn rate team {{{{ $labels.team }}}} ends the month at ${forecast}, "
            f"over the ${budget} budget {{{{ $labels.budget }}}}.",
            {
                "forecast_usd": forecast,
                "budget_usd": budget,
                "dashboard_url": f"{options.dashboard_url}?var-team={{{{ $labels.team }}}}",
            },
        )
    )
    return alerts


def _team_alerts(options: RuleOptions) -> list[dict[str, Any]]:
    r = _rate(options)
    rate = f"team_model:gpucost_cost_usd_per_hour:{r}"
    kinds = options.run_owner_kinds
    return [
        _alert(
            options,
            "GpuCostAnomaly",
            f"    {rate}\n"
            f"  > {_num(options.anomaly_factor)} * team_model:gpucost_cost_usd_per_hour:median7d\n"
            f"and\n    {rate} > {_num(options.anomaly_min_usd_per_hour)}\n",
            options.anomaly_for,
            {"severity": "warning"},
            "GPU spend of {{ $labels.team }}/{{ $labels.model }} is over "
            f"{_num(options.anomaly_factor)}x its typical rate",
            "Team {{ $labels.team }} spends {{ $value | printf \"%.2f\" }} USD/h on model {{ $labels.model }}, "
            f"more than {_num(options.anomaly_factor)} times its 7-day median rate.",
        ),
        _alert(
            options,
            "GpuJobCostAnomaly",
            f'    owner:gpucost_run_cost_usd:sum{{owner_kind=~"{kinds}"}}\n'
            f"  > on (model) group_left ()\n"
            f"    {_num(options.job_anomaly_factor)} * model:gpucost_run_cost_usd:median\n"
            f'and\n    owner:gpucost_run_cost_usd:sum{{owner_kind=~"{kinds}"}} > {_num(options.job_anomaly_min_usd)}\n'
            f"and on (model)\n    model:gpucost_runs:count >= {options.job_anomaly_min_runs}\n",
            options.job_anomaly_for,
            {"severity": "warning"},
            "Run {{ $labels.namespace }}/{{ $labels.owner_name }} costs over "
            f"{_num(options.job_anomaly_factor)}x a typical {{{{ $labels.model }}}} run",
            "The {{ $labels.owner_kind }} {{ $labels.namespace }}/{{ $labels.owner_name }} of team "
            "{{ $labels.team }} has cost {{ $value | printf \"%.2f\" }} USD, more than "
            f"{_num(options.job_anomaly_factor)} times the median run of model {{{{ $labels.model }}}}.",
        ),
        _alert(
            options,
            "GpuIdleWaste",
            f"pod:gpucost_gpu_utilization:avg{options.rate_window} < {_num(options.idle_utilization)}\n",
            options.idle_for,
            {"severity": "warning"},
            "Pod {{ $labels.namespace }}/{{ $labels.pod }} holds idle GPUs",
            "Pod {{ $labels.namespace }}/{{ $labels.pod }} of team {{ $labels.team }} holds GPUs whose "
            "utilization is {{ $value | humanizePercentage }}, below "
            f"{_num(options.idle_utilization * 100)}% for {options.idle_for}.",
        ),
    ]


def _exporter_down_alert(options: RuleOptions) -> dict[str, Any]:
    """One target down, or the whole job gone: `up == 0` cannot see a job with no targets."""
    up = f'up{{job="{options.exporter_job}"}}'
    return _alert(
        options,
        "GpuCostExporterDown",
        f"{up} == 0\nor\nabsent({up})\n",
        options.exporter_down_for,
        {"severity": "warning", "audience": "platform"},
        "{{ if $labels.instance }}gpucost target {{ $labels.instance }} is down"
        "{{ else }}no {{ $labels.job }} target is scraped{{ end }}",
        "{{ if $labels.instance }}Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}; "
        "GPU cost on that node is not being recorded."
        "{{ else }}Prometheus has no target of job {{ $labels.job }}; "
        "GPU cost is not being recorded on any node.{{ end }}",
    )


def _platform_alerts(options: RuleOptions) -> list[dict[str, Any]]:
    r = _rate(options)
    platform = {"audience": "platform"}
    return [
        _alert(
            options,
            "GpuUnallocatedCost",
            f"node_pool:gpucost_unallocated_cost_usd_per_hour:{r} > {_num(options.unallocated_usd_per_hour)}\n",
            options.unallocated_for,
            {"severity": "warning", **platform},
            "Unallocated GPUs in node pool {{ $labels.node_pool }} cost "
            "{{ $value | printf \"%.2f\" }} USD/h",
            "GPUs that no pod holds in node pool {{ $labels.node_pool }} have cost more than "
            f"{_num(options.unallocated_usd_per_hour)} USD/h for {options.unallocated_for}.",
        ),
        _alert(
            options,
            "GpuCostUnattributedSpend",
            f"cluster:gpucost_unattributed_cost_share:ratio > {_num(options.unattributed_share)}\n",
            options.unattributed_for,
            {"severity": "warning", **platform},
            "{{ $value | humanizePercentage }} of GPU cost has no team",
            "Pods without a team label account for {{ $value | humanizePercentage }} of the attributed GPU "
            f"cost, above {_num(options.unattributed_share * 100)}%.",
        ),
        _exporter_down_alert(options),
        _alert(
            options,
            "GpuCostCollectorFailing",
            "gpucost_exporter_collector_success == 0\n",
            options.collector_failing_for,
            {"severity": "warning", **platform},
            "gpucost collector {{ $labels.collector }} fails on {{ $labels.instance }}",
            "The {{ $labels.collector }} collector of the exporter at {{ $labels.instance }} has failed "
            f"for {options.collector_failing_for}.",
        ),
        _alert(
            options,
            "GpuCostUnpricedGpus",
            "gpucost_exporter_unpriced_devices > 0\n",
            options.unpriced_for,
            {"severity": "warning", **platform},
            "{{ $value }} GPUs on {{ $labels.instance }} have no price",
            "The price book of the exporter at {{ $labels.instance }} cannot resolve a price for "
            "{{ $value }} devices; they count no cost.",
        ),
        _alert(
            options,
            "GpuCostPricesStale",
            "time() - gpucost_pricing_catalog_as_of_timestamp_seconds\n"
            f"  > {options.prices_stale_days} * 86400\n",
            "1h",
            {"severity": "info", **platform},
            "GPU price catalog on {{ $labels.instance }} is stale",
            "The price catalog used by {{ $labels.instance }} is {{ $value | humanizeDuration }} old, "
            f"older than {options.prices_stale_days} days.",
        ),
    ]


def render_alerts(options: RuleOptions) -> str:
    """The alerting-rules file as YAML text."""
    document = {
        "groups": [
            {"name": "gpucost.budgets", "rules": _budget_alerts(options)},
            {"name": "gpucost.team", "rules": _team_alerts(options)},
            {"name": "gpucost.platform", "rules": _platform_alerts(options)},
        ]
    }
    return _dump(document, "alerting")


def alert_names(options: RuleOptions | None = None) -> list[str]:
    document = yaml.safe_load(render_alerts(options or RuleOptions()))
    return [rule["alert"] for group in document["groups"] for rule in group["rules"]]


# --- output -----------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(document: dict[str, Any], kind: str) -> str:
    header = (
        f"# gpucost {kind} rules. GENERATED by `python -m gpucost.rulegen`; do not edit by hand.\n"
        "# See docs/rules.md.\n"
    )
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return header + body


def write_rules(options: RuleOptions, out_dir: Path) -> list[Path]:
    """Write both rule files under `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / RULES_FILE, out_dir / ALERTS_FILE]
    paths[0].write_text(render_rules(options))
    paths[1].write_text(render_alerts(options))
    return paths
