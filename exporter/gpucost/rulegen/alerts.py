"""The team and platform alerting rules of rules/gpucost.alerts.yaml (budgets: budget_alerts.py)."""

from __future__ import annotations

from typing import Any

from gpucost.rulegen.options import RuleOptions
from gpucost.rulegen.promql import num, series
from gpucost.rulegen.templating import alert

__all__ = ["platform_alerts", "team_alerts"]

Rule = dict[str, Any]


def _cost_anomaly(options: RuleOptions) -> Rule:
    rate = series("team_model_cost_rate", options)
    factor = num(options.anomaly_factor)
    return alert(
        options,
        "GpuCostAnomaly",
        f"    {rate}\n"
        f"  > {factor} * {series('team_model_cost_rate_median7d', options)}\n"
        f"and\n    {rate} > {num(options.anomaly_min_usd_per_hour)}\n",
        options.anomaly_for,
        {"severity": "warning"},
        f"GPU spend of {{{{ $labels.team }}}}/{{{{ $labels.model }}}} is over {factor}x its typical rate",
        "Team {{ $labels.team }} spends {{ $value | printf \"%.2f\" }} USD/h on model {{ $labels.model }}, "
        f"more than {factor} times its 7-day median rate.",
    )


def _job_cost_anomaly(options: RuleOptions) -> Rule:
    runs = f'{series("owner_run_cost", options)}{{owner_kind=~"{options.run_owner_kinds}"}}'
    factor = num(options.job_anomaly_factor)
    return alert(
        options,
        "GpuJobCostAnomaly",
        f"    {runs}\n"
        f"  > on (model) group_left ()\n"
        f"    {factor} * {series('model_run_cost_median', options)}\n"
        f"and\n    {runs} > {num(options.job_anomaly_min_usd)}\n"
        f"and on (model)\n    {series('model_runs_count', options)} >= {options.job_anomaly_min_runs}\n",
        options.job_anomaly_for,
        {"severity": "warning"},
        "Run {{ $labels.namespace }}/{{ $labels.owner_name }} costs over "
        f"{factor}x a typical {{{{ $labels.model }}}} run",
        "The {{ $labels.owner_kind }} {{ $labels.namespace }}/{{ $labels.owner_name }} of team "
        "{{ $labels.team }} has cost {{ $value | printf \"%.2f\" }} USD, more than "
        f"{factor} times the median run of model {{{{ $labels.model }}}}.",
    )


def team_alerts(options: RuleOptions) -> list[Rule]:
    return [
        _cost_anomaly(options),
        _job_cost_anomaly(options),
        alert(
            options,
            "GpuIdleWaste",
            f"{series('pod_utilization', options)} < {num(options.idle_utilization)}\n",
            options.idle_for,
            {"severity": "warning"},
            "Pod {{ $labels.namespace }}/{{ $labels.pod }} holds idle GPUs",
            "Pod {{ $labels.namespace }}/{{ $labels.pod }} of team {{ $labels.team }} holds GPUs whose "
            "utilization is {{ $value | humanizePercentage }}, below "
            f"{num(options.idle_utilization * 100)}% for {options.idle_for}.",
        ),
    ]


def _exporter_down_alert(options: RuleOptions) -> Rule:
    """One target down, or the whole job gone: `up == 0` cannot see a job with no targets."""
    up = f'up{{job="{options.exporter_job}"}}'
    return alert(
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


def _spend_alerts(options: RuleOptions) -> list[Rule]:
    platform = {"severity": "warning", "audience": "platform"}
    return [
        alert(
            options,
            "GpuUnallocatedCost",
            f"{series('node_pool_unallocated_rate', options)} > {num(options.unallocated_usd_per_hour)}\n",
            options.unallocated_for,
            platform,
            "Unallocated GPUs in node pool {{ $labels.node_pool }} cost "
            "{{ $value | printf \"%.2f\" }} USD/h",
            "GPUs that no pod holds in node pool {{ $labels.node_pool }} have cost more than "
            f"{num(options.unallocated_usd_per_hour)} USD/h for {options.unallocated_for}.",
        ),
        alert(
            options,
            "GpuCostUnattributedSpend",
            f"{series('cluster_unattributed_share', options)} > {num(options.unattributed_share)}\n",
            options.unattributed_for,
            dict(platform),
            "{{ $value | humanizePercentage }} of GPU cost has no team",
            "Pods without a team label account for {{ $value | humanizePercentage }} of the attributed GPU "
            f"cost, above {num(options.unattributed_share * 100)}%.",
        ),
    ]


def _health_alerts(options: RuleOptions) -> list[Rule]:
    platform = {"audience": "platform"}
    return [
        alert(
            options,
            "GpuCostCollectorFailing",
            "gpucost_exporter_collector_success == 0\n",
            options.collector_failing_for,
            {"severity": "warning", **platform},
            "gpucost collector {{ $labels.collector }} fails on {{ $labels.instance }}",
            "The {{ $labels.collector }} collector of the exporter at {{ $labels.instance }} has failed "
            f"for {options.collector_failing_for}.",
        ),
        alert(
            options,
            "GpuCostUnpricedGpus",
            "gpucost_exporter_unpriced_devices > 0\n",
            options.unpriced_for,
            {"severity": "warning", **platform},
            "{{ $value }} GPUs on {{ $labels.instance }} have no price",
            "The price book of the exporter at {{ $labels.instance }} cannot resolve a price for "
            "{{ $value }} devices; they count no cost.",
        ),
        alert(
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


def platform_alerts(options: RuleOptions) -> list[Rule]:
    return [*_spend_alerts(options), _exporter_down_alert(options), *_health_alerts(options)]
