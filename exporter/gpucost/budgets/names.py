"""The sidecar's metric names: the contract with the rules, the Alertmanager config and the docs.

docs/architecture.md lists `gpucost_budget_usd` and `gpucost_budget_threshold_ratio`
as contracts; every other name the sidecar exports is here too, so a rename is
one edit.
"""

from __future__ import annotations

__all__ = [
    "BUDGET_INFO",
    "BUDGET_SCOPE_LABELS",
    "BUDGET_THRESHOLD_RATIO",
    "BUDGET_USD",
    "CLOUD_BUDGET_SPEND_USD",
    "CONFIG_VALID",
    "ENFORCEMENT_ACTIONS_TOTAL",
    "FINANCE_EXPORT_LAST_SUCCESS",
    "FIXED_COST_USD_PER_MONTH",
    "PRICE_SYNC_LAST_SUCCESS",
    "PROVIDER_UP",
    "RECONCILIATION_CALIBRATION_FACTOR",
    "RECONCILIATION_DELTA_USD",
    "RECONCILIATION_RATIO",
]

BUDGET_SCOPE_LABELS: tuple[str, ...] = ("team", "model", "namespace", "cost_center", "cluster")

BUDGET_USD = "gpucost_budget_usd"
BUDGET_THRESHOLD_RATIO = "gpucost_budget_threshold_ratio"
BUDGET_INFO = "gpucost_budget_info"
CONFIG_VALID = "gpucost_budgets_config_valid"
PROVIDER_UP = "gpucost_budgets_provider_up"
CLOUD_BUDGET_SPEND_USD = "gpucost_cloud_budget_spend_usd"
PRICE_SYNC_LAST_SUCCESS = "gpucost_price_sync_last_success_timestamp_seconds"
RECONCILIATION_RATIO = "gpucost_reconciliation_ratio"
RECONCILIATION_DELTA_USD = "gpucost_reconciliation_delta_usd"
RECONCILIATION_CALIBRATION_FACTOR = "gpucost_reconciliation_calibration_factor"
FIXED_COST_USD_PER_MONTH = "gpucost_fixed_cost_usd_per_month"
ENFORCEMENT_ACTIONS_TOTAL = "gpucost_enforcement_actions_total"
FINANCE_EXPORT_LAST_SUCCESS = "gpucost_finance_export_last_success_timestamp_seconds"
