"""The sidecar's Prometheus collector: renders a `SidecarState` snapshot, never calls out.

Register it on a `CollectorRegistry` the sidecar owns (`build_registry`); the
global registry is left alone so tests and embedders get clean state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from gpucost.budgets import names
from gpucost.budgets.spec import Month, threshold_label
from gpucost.budgets.state import SidecarSnapshot, SidecarState

__all__ = ["BudgetCollector", "build_registry"]

Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BudgetCollector(Collector):
    def __init__(self, state: SidecarState, clock: Clock = _utc_now) -> None:
        self._state = state
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        # Families without samples: registration must not read state or call anything.
        return list(_families().values())

    def collect(self) -> Iterable[Metric]:
        snapshot = self._state.snapshot()
        families = _families()
        _fill(families, snapshot, Month.of(self._clock().date()))
        return list(families.values())


def build_registry(state: SidecarState, clock: Clock = _utc_now) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(BudgetCollector(state, clock))
    return registry


class _Families(dict[str, GaugeMetricFamily | CounterMetricFamily]):
    def gauge(self, name: str) -> GaugeMetricFamily:
        family = self[name]
        assert isinstance(family, GaugeMetricFamily)
        return family

    def declare_gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self[name] = GaugeMetricFamily(name, documentation, labels=list(labels))


def _families() -> _Families:
    scope = list(names.BUDGET_SCOPE_LABELS)
    table = _Families()
    table.declare_gauge(
        names.BUDGET_USD,
        "Budget amount in USD for the current month, per budget and scope; resources is gpu (the budget counts "
        "GPU cost) or node (whole-node cost: GPU, CPU, memory, storage).",
        ["budget", *scope, "slack_channel", "resources"],
    )
    table.declare_gauge(
        names.BUDGET_THRESHOLD_RATIO,
        "Alert thresholds of each budget as a ratio of the budget (0.8 = 80 %).",
        ["budget", "threshold"],
    )
    table.declare_gauge(
        names.BUDGET_INFO,
        "Budget metadata; always 1.",
        ["budget", "team", "owners", "enforce", "hard_threshold", "start_month", "end_month"],
    )
    table.declare_gauge(
        names.CONFIG_VALID,
        "1 when the last read of the budgets file was valid, else 0 (last good budgets kept).",
    )
    table.declare_gauge(
        names.PROVIDER_UP,
        "1 when the last call of this provider feature succeeded, else 0.",
        ["provider", "feature"],
    )
    table.declare_gauge(
        names.CLOUD_BUDGET_SPEND_USD,
        "Spend of the cloud-side budget this month as the cloud reports it (actual or forecast).",
        ["provider", "budget", "kind"],
    )
    table.declare_gauge(
        names.PRICE_SYNC_LAST_SUCCESS, "Unix time of the last successful price sync.", ["provider"]
    )
    table.declare_gauge(
        names.RECONCILIATION_RATIO,
        "Billed cost / gpucost estimate for the last reconciled day.",
        ["provider", "scope"],
    )
    table.declare_gauge(
        names.RECONCILIATION_DELTA_USD,
        "Billed cost minus gpucost estimate in USD for the last reconciled day.",
        ["provider", "scope"],
    )
    table.declare_gauge(
        names.RECONCILIATION_CALIBRATION_FACTOR,
        "Suggested multiplier for gpucost estimates of this scope (mean billed/estimated of final days).",
        ["provider", "scope"],
    )
    table.declare_gauge(
        names.FINANCE_EXPORT_LAST_SUCCESS,
        "Unix time of the finance export job's last exported day (absent until one; off without --export.format).",
    )
    table.declare_gauge(
        names.FIXED_COST_USD_PER_MONTH,
        "Fixed monthly cost to allocate over teams.",
        ["name", "allocation"],
    )
    table[names.ENFORCEMENT_ACTIONS_TOTAL] = CounterMetricFamily(
        names.ENFORCEMENT_ACTIONS_TOTAL.removesuffix("_total"),
        "Enforcement actions taken (or planned in dry-run) per budget.",
        labels=["budget", "action"],
    )
    return table


def _fill(table: _Families, snapshot: SidecarSnapshot, month: Month) -> None:
    table.gauge(names.CONFIG_VALID).add_metric([], 1.0 if snapshot.config_valid else 0.0)
    budget_file = snapshot.budgets
    if budget_file is not None:
        for budget, amount in budget_file.amounts_for(month):
            table.gauge(names.BUDGET_USD).add_metric(
                [budget.name, *budget.scope.label_values(), budget.slack_channel, budget.resources], amount
            )
            for percent in budget.thresholds_percent:
                table.gauge(names.BUDGET_THRESHOLD_RATIO).add_metric(
                    [budget.name, threshold_label(percent)], percent / 100.0
                )
            table.gauge(names.BUDGET_INFO).add_metric(
                [
                    budget.name,
                    budget.scope.team,
                    ",".join(budget.owners),
                    budget.enforce,
                    threshold_label(budget.enforcement_threshold_percent()),
                    str(budget.start_month or ""),
                    str(budget.end_month or ""),
                ],
                1.0,
            )
        for fixed in budget_file.fixed_costs:
            table.gauge(names.FIXED_COST_USD_PER_MONTH).add_metric(
                [fixed.name, fixed.allocation], fixed.monthly_usd
            )
    for (provider, feature), up in sorted(snapshot.provider_up.items()):
        table.gauge(names.PROVIDER_UP).add_metric([provider, feature], 1.0 if up else 0.0)
    for (provider, budget_name, kind), usd in sorted(snapshot.cloud_spend.items()):
        table.gauge(names.CLOUD_BUDGET_SPEND_USD).add_metric([provider, budget_name, kind], usd)
    for provider, timestamp in sorted(snapshot.price_sync_last_success.items()):
        table.gauge(names.PRICE_SYNC_LAST_SUCCESS).add_metric([provider], timestamp)
    for (provider, scope), result in sorted(snapshot.reconciliation.items()):
        ratio = result.ratio
        if ratio is not None:
            table.gauge(names.RECONCILIATION_RATIO).add_metric([provider, scope], ratio)
        table.gauge(names.RECONCILIATION_DELTA_USD).add_metric([provider, scope], result.delta_usd)
    for (provider, scope), factor in sorted(snapshot.calibration.items()):
        table.gauge(names.RECONCILIATION_CALIBRATION_FACTOR).add_metric([provider, scope], factor)
    if snapshot.finance_export_last_success is not None:
        table.gauge(names.FINANCE_EXPORT_LAST_SUCCESS).add_metric([], snapshot.finance_export_last_success)
    counter = table[names.ENFORCEMENT_ACTIONS_TOTAL]
    assert isinstance(counter, CounterMetricFamily)
    for (budget_name, action), count in sorted(snapshot.enforcement_actions.items()):
        counter.add_metric([budget_name, action], float(count))
