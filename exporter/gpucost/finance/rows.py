"""The finance row: one day's cost of one team, model, namespace and resource, in FOCUS column names.

Pure values, no I/O.  `COLUMNS` is the one schema: the Parquet/CSV writer, the
BigQuery table and docs/finance.md (checked by a test) all read it.  Columns
FOCUS 1.x defines keep its names and meanings; gpucost's own dimensions are
`x_`-prefixed, as FOCUS asks of custom columns.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "COLUMNS",
    "COST_LABELS",
    "Column",
    "CostRow",
    "DayKey",
    "cost_by_team",
    "day_bounds",
    "rows_from_samples",
]

ColumnKind = Literal["string", "float", "timestamp"]
COST_LABELS = ("namespace", "team", "model", "model_version", "business_unit", "cost_center")
"""The workload labels a row is keyed by (besides day and resource), as the recorded series carry them."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: ColumnKind
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("BilledCost", "float", "the day's attributed cost in USD (gpucost allocates, it does not invoice: "
                                  "equal to EffectiveCost)"),
    Column("EffectiveCost", "float", "the day's attributed cost in USD at the prices gpucost used"),
    Column("BillingCurrency", "string", "always USD"),
    Column("ChargePeriodStart", "timestamp", "the UTC day's start (inclusive); the BigQuery partition column"),
    Column("ChargePeriodEnd", "timestamp", "the next UTC day's start (exclusive)"),
    Column("BillingPeriodStart", "timestamp", "the UTC month's start (inclusive)"),
    Column("BillingPeriodEnd", "timestamp", "the next UTC month's start (exclusive)"),
    Column("ChargeCategory", "string", "always Usage"),
    Column("ChargeFrequency", "string", "always Usage-Based"),
    Column("ChargeDescription", "string", "what was charged, in words"),
    Column("ServiceName", "string", "always gpucost"),
    Column("ServiceCategory", "string", "always AI and Machine Learning"),
    Column("ResourceId", "string", "resource/namespace/team/model: the workload the cost is attributed to"),
    Column("ResourceType", "string", "GPU, CPU, Memory or Storage"),
    Column("Tags", "string", "JSON object of the non-empty workload labels (team, model, model_version, "
                             "namespace, business_unit, cost_center)"),
    Column("x_Resource", "string", "gpu, cpu, memory or storage"),
    Column("x_Namespace", "string", "Kubernetes namespace"),
    Column("x_Team", "string", "team label; empty when the pod has none (BigQuery clustering column)"),
    Column("x_Model", "string", "model label (BigQuery clustering column)"),
    Column("x_ModelVersion", "string", "model_version label"),
    Column("x_BusinessUnit", "string", "business_unit label"),
    Column("x_CostCenter", "string", "cost_center label"),
)

RESOURCE_TYPES = {"gpu": "GPU", "cpu": "CPU", "memory": "Memory", "storage": "Storage"}


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC day as [start, end)."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _month_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return day_bounds(first)[0], day_bounds(following)[0]


@dataclass(frozen=True, slots=True, order=True)
class DayKey:
    """What one row is the cost of, besides the day."""

    resource: str
    namespace: str = ""
    team: str = ""
    model: str = ""
    model_version: str = ""
    business_unit: str = ""
    cost_center: str = ""

    @classmethod
    def from_labels(cls, resource: str, labels: Mapping[str, str]) -> DayKey:
        return cls(resource, *(labels.get(name, "") for name in COST_LABELS))

    def labels(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in COST_LABELS}


@dataclass(frozen=True, slots=True)
class CostRow:
    day: dt.date
    key: DayKey
    cost_usd: float

    def record(self) -> dict[str, object]:
        """The row as {column: value}, in `COLUMNS` order."""
        start, end = day_bounds(self.day)
        month_start, month_end = _month_bounds(self.day)
        key = self.key
        tags = {name: value for name, value in sorted(key.labels().items()) if value}
        resource_type = RESOURCE_TYPES.get(key.resource, key.resource)
        record: dict[str, object] = {
            "BilledCost": self.cost_usd,
            "EffectiveCost": self.cost_usd,
            "BillingCurrency": "USD",
            "ChargePeriodStart": start,
            "ChargePeriodEnd": end,
            "BillingPeriodStart": month_start,
            "BillingPeriodEnd": month_end,
            "ChargeCategory": "Usage",
            "ChargeFrequency": "Usage-Based",
            "ChargeDescription": f"{resource_type} cost of {key.team or 'no team'}/{key.model or 'no model'} "
                                 f"in namespace {key.namespace or '-'}",
            "ServiceName": "gpucost",
            "ServiceCategory": "AI and Machine Learning",
            "ResourceId": f"{key.resource}/{key.namespace}/{key.team}/{key.model}",
            "ResourceType": resource_type,
            "Tags": json.dumps(tags, separators=(",", ":"), sort_keys=True),
            "x_Resource": key.resource,
            "x_Namespace": key.namespace,
            "x_Team": key.team,
            "x_Model": key.model,
            "x_ModelVersion": key.model_version,
            "x_BusinessUnit": key.business_unit,
            "x_CostCenter": key.cost_center,
        }
        return record


def rows_from_samples(
    day: dt.date, resource: str, samples: Iterable[tuple[Mapping[str, str], float]]
) -> list[CostRow]:
    """One row per distinct key: samples whose cost labels agree are added up (the series may carry more labels).

    A NaN or non-positive day cost is no charge and makes no row; rows come out sorted by key,
    so a day's file is the same bytes for the same data.
    """
    totals: dict[DayKey, float] = {}
    for labels, cost in samples:
        if math.isnan(cost) or cost <= 0:
            continue
        key = DayKey.from_labels(resource, labels)
        totals[key] = totals.get(key, 0.0) + cost
    return [CostRow(day, key, totals[key]) for key in sorted(totals)]


def cost_by_team(rows: Iterable[CostRow]) -> dict[str, float]:
    """The rows' cost per team label ("" for rows without one), every resource added up."""
    totals: dict[str, float] = {}
    for row in rows:
        totals[row.key.team] = totals.get(row.key.team, 0.0) + row.cost_usd
    return totals
