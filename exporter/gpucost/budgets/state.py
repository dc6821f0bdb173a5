"""The sidecar's shared state: what the background jobs found, read by the collector.

Jobs (reload, cloud sync, price sync, reconciliation, enforcement, the finance export, the GCP
push endpoint) write here under one lock; the collector copies a snapshot and
renders it, so a scrape never calls a cloud.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from gpucost.budgets.spec import BudgetFile

__all__ = ["ReconciliationResult", "SidecarSnapshot", "SidecarState"]


@dataclass(frozen=True, slots=True)
class ReconciliationResult:
    provider: str
    scope: str
    actual_usd: float
    estimated_usd: float
    final: bool

    @property
    def delta_usd(self) -> float:
        return self.actual_usd - self.estimated_usd

    @property
    def ratio(self) -> float | None:
        """actual / estimated; None when gpucost estimated nothing (the ratio is undefined)."""
        return self.actual_usd / self.estimated_usd if self.estimated_usd > 0 else None


@dataclass(frozen=True, slots=True)
class SidecarSnapshot:
    budgets: BudgetFile | None
    config_valid: bool
    provider_up: dict[tuple[str, str], bool]
    cloud_spend: dict[tuple[str, str, str], float]
    price_sync_last_success: dict[str, float]
    reconciliation: dict[tuple[str, str], ReconciliationResult]
    calibration: dict[tuple[str, str], float]
    enforcement_actions: dict[tuple[str, str], int]
    finance_export_last_success: float | None  # unix time of the last day exported; None: none yet


@dataclass
class SidecarState:
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _budgets: BudgetFile | None = None
    _config_valid: bool = False
    _provider_up: dict[tuple[str, str], bool] = field(default_factory=dict)
    _cloud_spend: dict[tuple[str, str, str], float] = field(default_factory=dict)
    _price_sync: dict[str, float] = field(default_factory=dict)
    _reconciliation: dict[tuple[str, str], ReconciliationResult] = field(default_factory=dict)
    _calibration: dict[tuple[str, str], float] = field(default_factory=dict)
    _enforcement: dict[tuple[str, str], int] = field(default_factory=dict)
    _finance_export: float | None = None

    def set_budgets(self, budgets: BudgetFile) -> None:
        with self._lock:
            self._budgets = budgets
            self._config_valid = True

    def mark_config_invalid(self) -> None:
        with self._lock:
            self._config_valid = False

    def budgets(self) -> BudgetFile | None:
        with self._lock:
            return self._budgets

    def set_provider_up(self, provider: str, feature: str, up: bool) -> None:
        with self._lock:
            self._provider_up[(provider, feature)] = up

    def set_cloud_spend(self, provider: str, budget: str, kind: str, usd: float) -> None:
        with self._lock:
            self._cloud_spend[(provider, budget, kind)] = usd

    def set_price_sync_success(self, provider: str, timestamp: float) -> None:
        with self._lock:
            self._price_sync[provider] = timestamp

    def set_reconciliation(self, result: ReconciliationResult) -> None:
        with self._lock:
            self._reconciliation[(result.provider, result.scope)] = result

    def set_calibration(self, provider: str, scope: str, factor: float) -> None:
        with self._lock:
            self._calibration[(provider, scope)] = factor

    def set_finance_export_success(self, timestamp: float) -> None:
        with self._lock:
            self._finance_export = timestamp

    def count_enforcement(self, budget: str, action: str) -> None:
        with self._lock:
            key = (budget, action)
            self._enforcement[key] = self._enforcement.get(key, 0) + 1

    def snapshot(self) -> SidecarSnapshot:
        with self._lock:
            return SidecarSnapshot(
                budgets=self._budgets,
                config_valid=self._config_valid,
                provider_up=dict(self._provider_up),
                cloud_spend=dict(self._cloud_spend),
                price_sync_last_success=dict(self._price_sync),
                reconciliation=dict(self._reconciliation),
                calibration=dict(self._calibration),
                enforcement_actions=dict(self._enforcement),
                finance_export_last_success=self._finance_export,
            )
