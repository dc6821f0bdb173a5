"""The metric tables: the exporter's (`gpucost.metrics.names`) and the other components' names.

The exporter's table is the model (type, labels, help, stability) and stays where its
renderer, collector and docs read it; it is re-exported here. The sidecar's, the scorecard's
and the instrumented app's have no richer table yet: their names are listed here and
tests/unit/test_contract.py checks them against the constants their collectors use (reading
`gpucost.budgets.names` from here would tie contract and budgets in a cycle, #18).
"""

from __future__ import annotations

from gpucost.metrics.names import EXPORTER_METRICS, MetricSpec

__all__ = [
    "APP_METRIC_NAMES",
    "EXPORTER_METRICS",
    "SCORECARD_METRIC_NAMES",
    "SIDECAR_METRIC_NAMES",
    "MetricSpec",
    "all_metric_names",
]

# gpucost.budgets.names: every upper-case string constant.
SIDECAR_METRIC_NAMES: tuple[str, ...] = (
    "gpucost_budget_info",
    "gpucost_budget_threshold_ratio",
    "gpucost_budget_usd",
    "gpucost_budgets_config_valid",
    "gpucost_budgets_provider_up",
    "gpucost_cloud_budget_spend_usd",
    "gpucost_enforcement_actions_total",
    "gpucost_finance_export_last_success_timestamp_seconds",
    "gpucost_fixed_cost_usd_per_month",
    "gpucost_price_sync_last_success_timestamp_seconds",
    "gpucost_reconciliation_calibration_factor",
    "gpucost_reconciliation_delta_usd",
    "gpucost_reconciliation_ratio",
)
# gpucost.scorecard.collector: SAVINGS_METRIC, SUCCESS_METRIC.
SCORECARD_METRIC_NAMES: tuple[str, ...] = (
    "gpucost_savings_potential_usd_per_month",
    "gpucost_scorecard_last_success_timestamp_seconds",
)
# gpucost.instrument.inference_metrics: what GpuCostMiddleware counts in the served app.
APP_METRIC_NAMES: tuple[str, ...] = (
    "gpucost_inference_requests_total",
    "gpucost_inference_gpu_share_seconds_total",
    "gpucost_inference_tokens_total",
    "gpucost_inference_duplicate_requests_total",
)


def all_metric_names() -> frozenset[str]:
    """Every metric name a gpucost component exposes."""
    exporter = {spec.name for spec in EXPORTER_METRICS}
    return frozenset(exporter | {*SIDECAR_METRIC_NAMES, *SCORECARD_METRIC_NAMES, *APP_METRIC_NAMES})
