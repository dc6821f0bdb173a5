"""The recorded-series table: every series a gpucost recording rule makes.

One entry per series: a key that callers use instead of the name, the name (with
`{window}` where the name carries the rate window: `team:gpucost_cost_usd_per_hour:rate{window}`),
its labels with the default workload labels, and the rule group and file that record it.
`gpucost.rulegen` emits every `record:` name from here, and dashboards and tests ask
`name(key, rate_window)` instead of writing the name, so a changed rate window renames
the series everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gpucost.metrics.names import DEFAULT_WORKLOAD_LABELS

__all__ = [
    "COST_RATE_LEVELS",
    "DEFAULT_RATE_WINDOW",
    "MONEY_SCOPES",
    "RECORDED_SERIES",
    "RESOURCE_RATE_LEVELS",
    "RecordedSeries",
    "by_key",
    "name",
    "names",
]

DEFAULT_RATE_WINDOW = "5m"

COST_RULES = "gpucost.rules.yaml"
SIDECAR_RULES = "gpucost.sidecar.rules.yaml"
INFERENCE_RULES = "gpucost.inference.rules.yaml"


class HasRateWindow(Protocol):
    """Anything that carries the rules' rate window, such as `RuleOptions`."""

    @property
    def rate_window(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RecordedSeries:
    key: str
    template: str
    labels: tuple[str, ...]
    group: str
    rule_file: str

    def name(self, rate_window: str = DEFAULT_RATE_WINDOW) -> str:
        return self.template.format(window=rate_window)

    @property
    def windowed(self) -> bool:
        """Whether the name changes with the rate window."""
        return "{window}" in self.template


_WORKLOAD = ("namespace", "component", *DEFAULT_WORKLOAD_LABELS)
MONEY_SCOPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("namespace_team_model", ("namespace", "team", "model")),
    ("namespace_team", ("namespace", "team")),
    ("team_model", ("team", "model")),
    ("team", ("team",)),
)
# Aggregation levels of the workload cost rate; a level whose labels are not all workload
# labels of the exporter is left out of the rules (rulegen checks with its options).
COST_RATE_LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
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
# Aggregation levels of the whole-node cost rate by resource (the `resource` label kept).
RESOURCE_RATE_LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("team_resource", ("team", "resource")),
    ("team_model_resource", ("team", "model", "resource")),
    ("namespace_team_model_resource", ("namespace", "team", "model", "resource")),
)


def _cost(key: str, template: str, labels: tuple[str, ...], group: str = "gpucost.cost") -> RecordedSeries:
    return RecordedSeries(key, template, labels, group, COST_RULES)


def _rates() -> list[RecordedSeries]:
    rows = [
        _cost("namespace_workload_cost_rate", "namespace_workload:gpucost_cost_usd_per_hour:rate{window}", _WORKLOAD)
    ]
    rows += [
        _cost(f"{level}_cost_rate", f"{level}:gpucost_cost_usd_per_hour:rate{{window}}", labels)
        for level, labels in COST_RATE_LEVELS
    ]
    rows += [
        _cost("pod_cost_rate", "pod:gpucost_cost_usd_per_hour:rate{window}", ("namespace", "pod", "team", "model")),
        _cost("node_unallocated_rate", "node:gpucost_unallocated_cost_usd_per_hour:rate{window}", ("node",)),
        _cost(
            "node_gpu_model_unallocated_rate",
            "node_gpu_model:gpucost_unallocated_cost_usd_per_hour:rate{window}",
            ("node", "gpu_model"),
        ),
        _cost(
            "node_pool_unallocated_rate",
            "node_pool:gpucost_unallocated_cost_usd_per_hour:rate{window}",
            ("node_pool",),
        ),
        _cost("node_pool_cost_rate", "node_pool:gpucost_cost_usd_per_hour:rate{window}", ("node_pool",)),
        _cost("cluster_cost_rate", "cluster:gpucost_cost_usd_per_hour:rate{window}", ()),
        _cost("team_model_efficiency", "team_model:gpucost_gpu_efficiency:ratio", ("team", "model")),
        _cost("node_pool_idle_share", "node_pool:gpucost_idle_cost_share:ratio", ("node_pool",)),
        _cost("cluster_unattributed_share", "cluster:gpucost_unattributed_cost_share:ratio", ()),
        _cost("pod_utilization", "pod:gpucost_gpu_utilization:avg{window}", ("namespace", "pod", "team")),
    ]
    return rows


def _month_to_date() -> list[RecordedSeries]:
    rows = [
        _cost(
            "namespace_team_model_spend_increase1h",
            "namespace_team_model:gpucost_spend_usd:increase1h",
            ("namespace", "team", "model"),
        )
    ]
    rows += [
        _cost(f"{scope}_spend_month_to_date", f"{scope}:gpucost_spend_usd:month_to_date", labels)
        for scope, labels in MONEY_SCOPES
    ]
    rows.append(
        _cost("team_top_model_spend_month_to_date", "team:gpucost_top_model_spend_usd:month_to_date", ("team", "model"))
    )
    rows += [
        _cost(f"{scope}_forecast_month_end", f"{scope}:gpucost_spend_usd:forecast_month_end", labels)
        for scope, labels in MONEY_SCOPES
    ]
    rows += [
        _cost("team_cost_rate_avg7d", "team:gpucost_cost_usd_per_hour:avg7d", ("team",)),
        _cost("team_forecast_month_end_7d", "team:gpucost_spend_usd:forecast_month_end_7d", ("team",)),
        _cost("budget_spend_month_to_date", "budget:gpucost_spend_usd:month_to_date", ("budget", "team")),
        _cost("budget_forecast_month_end", "budget:gpucost_spend_usd:forecast_month_end", ("budget", "team")),
        _cost("budget_used_ratio", "budget:gpucost_budget_used:ratio", ("budget", "team")),
        _cost("team_model_cost_rate_median7d", "team_model:gpucost_cost_usd_per_hour:median7d", ("team", "model")),
    ]
    return rows


def _runs() -> list[RecordedSeries]:
    run = ("namespace", "owner_kind", "owner_name", "team", "model")
    return [
        _cost("pod_owner_cost", "pod_owner:gpucost_cost_usd:sum", ("namespace", "pod", *run[1:]), "gpucost.runs"),
        _cost("owner_run_cost", "owner:gpucost_run_cost_usd:sum", run, "gpucost.runs"),
        _cost("model_run_cost_median", "model:gpucost_run_cost_usd:median", ("model",), "gpucost.runs"),
        _cost("model_runs_count", "model:gpucost_runs:count", ("model",), "gpucost.runs"),
    ]


def _sidecar() -> list[RecordedSeries]:
    group = "gpucost.sidecar.fixed_costs"
    return [
        RecordedSeries(
            "name_allocation_fixed_cost_rate",
            "name_allocation:gpucost_fixed_cost_usd_per_hour:sum",
            ("name", "allocation"),
            group,
            SIDECAR_RULES,
        ),
        RecordedSeries(
            "team_fixed_cost_allocated",
            "team:gpucost_fixed_cost_usd_per_hour:allocated",
            ("team", "allocation"),
            group,
            SIDECAR_RULES,
        ),
    ]


def _inference() -> list[RecordedSeries]:
    # The inference rules keep their own 5m window (docs/instrumentation.md): their names carry
    # `5m` literally, whatever the cost rules' rate window.
    split = ("namespace", "pod", "model", "model_version", "business_unit")
    model = ("model", "model_version")

    def row(key: str, template: str, labels: tuple[str, ...], group: str) -> RecordedSeries:
        return RecordedSeries(key, template, labels, f"gpucost.inference.{group}", INFERENCE_RULES)

    prefix = "namespace_pod_model_business_unit"
    return [
        row("inference_share_seconds_rate", f"{prefix}:gpucost_inference_share_seconds:rate5m", split, "share"),
        row("inference_share_ratio", f"{prefix}:gpucost_inference_share:ratio5m", split, "share"),
        row(
            "inference_pod_cost_rate",
            "namespace_pod_component:gpucost_inference_pod_cost_usd_per_hour:rate5m",
            ("namespace", "pod", "component"),
            "share",
        ),
        row(
            "inference_split_cost_rate",
            f"{prefix}:gpucost_inference_cost_usd_per_hour:rate5m",
            (*split, "component"),
            "cost",
        ),
        row(
            "inference_model_cost_rate",
            "model_business_unit:gpucost_inference_cost_usd_per_hour:rate5m",
            (*model, "business_unit", "component"),
            "cost",
        ),
        row("inference_cost_per_1k_requests", "model:gpucost_inference_cost_usd_per_1k_requests:rate5m", model, "cost"),
        row("inference_cost_per_1m_tokens", "model:gpucost_inference_cost_usd_per_1m_tokens:rate5m", model, "cost"),
        row(
            "inference_daily_cost",
            "model_business_unit:gpucost_inference_cost_usd:increase1d",
            (*model, "business_unit", "component"),
            "daily",
        ),
    ]


def _whole_node() -> list[RecordedSeries]:
    """Whole-node cost (GPU, CPU, memory, storage; issue #19): rates by resource and in total, month to date.

    The rates by resource keep the `resource` label in the level (`team_resource:`); the totals over every
    resource are the `gpucost_whole_node_*` metrics at the GPU series' levels, so `team:gpucost_cost_...` stays
    GPU-only and a budget scoped to the whole node reads `*:gpucost_whole_node_spend_usd:*`.
    """
    rows = [
        _cost(
            "namespace_workload_resource_cost_rate",
            "namespace_workload_resource:gpucost_cost_usd_per_hour:rate{window}",
            ("namespace", "resource", *DEFAULT_WORKLOAD_LABELS),
        )
    ]
    rows += [
        _cost(f"{level}_cost_rate", f"{level}:gpucost_cost_usd_per_hour:rate{{window}}", labels)
        for level, labels in RESOURCE_RATE_LEVELS
    ]
    rows += [
        _cost(
            "cluster_resource_node_cost_rate",
            "cluster_resource:gpucost_node_cost_usd_per_hour:rate{window}",
            ("resource",),
        ),
        _cost(
            "node_resource_unallocated_rate",
            "node_resource:gpucost_unallocated_cost_usd_per_hour:rate{window}",
            ("node", "resource"),
        ),
    ]
    rows += [
        _cost(f"{scope}_whole_node_cost_rate", f"{scope}:gpucost_whole_node_cost_usd_per_hour:rate{{window}}", labels)
        for scope, labels in MONEY_SCOPES
    ]
    rows.append(
        _cost(
            "namespace_team_model_whole_node_spend_increase1h",
            "namespace_team_model:gpucost_whole_node_spend_usd:increase1h",
            ("namespace", "team", "model"),
        )
    )
    for kind, operation in (("spend_month_to_date", "month_to_date"), ("forecast_month_end", "forecast_month_end")):
        rows += [
            _cost(f"{scope}_whole_node_{kind}", f"{scope}:gpucost_whole_node_spend_usd:{operation}", labels)
            for scope, labels in MONEY_SCOPES
        ]
    return rows


RECORDED_SERIES: tuple[RecordedSeries, ...] = (
    *_rates(),
    *_whole_node(),
    *_month_to_date(),
    *_runs(),
    *_sidecar(),
    *_inference(),
)
_BY_KEY = {series.key: series for series in RECORDED_SERIES}


def by_key(key: str) -> RecordedSeries:
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no recorded series with key {key!r}") from None


def _window(rate_window: str | HasRateWindow) -> str:
    return rate_window if isinstance(rate_window, str) else rate_window.rate_window


def name(key: str, rate_window: str | HasRateWindow = DEFAULT_RATE_WINDOW) -> str:
    """The name of a recorded series under a rate window (`"5m"` or a `RuleOptions`)."""
    return by_key(key).name(_window(rate_window))


def names(rate_window: str | HasRateWindow = DEFAULT_RATE_WINDOW) -> frozenset[str]:
    """Every recorded name under a rate window."""
    window = _window(rate_window)
    return frozenset(series.name(window) for series in RECORDED_SERIES)
