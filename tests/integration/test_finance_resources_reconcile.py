"""Whole-node rows and the reconciler's estimate, against a real Prometheus holding one closed day.

The GPU cost rate and the per-resource cost rate (`namespace_workload_resource_cost_rate`,
`resource` = gpu, cpu, memory, storage) are backfilled (`finance_days`).  The export must write a
row per resource with the resource in its columns, read the GPU cost from the GPU series only
(the per-resource family repeats it as `resource="gpu"`), and the reconciler's estimate per team
must be the exported rows' sum per team, to the cent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpucost.budgets.prometheus_api import PrometheusEstimateSource
from gpucost.budgets.reconcile import ActualCosts, Reconciler
from gpucost.budgets.state import SidecarState
from gpucost.cli.admin import main as gpucost_main
from gpucost.contract import recorded
from gpucost.promapi import PrometheusClient
from tests.integration.finance_days import RecordedRate, backfilled_prometheus, expected_cost

pq = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.integration

GPU = recorded.name("namespace_workload_cost_rate")
BY_RESOURCE = recorded.name("namespace_workload_resource_cost_rate")
DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
RESEARCH = {"namespace": "research", "team": "research", "model": "llama-70b", "cost_center": "cc-1"}
SEARCH = {"namespace": "search", "team": "search", "model": "ranker", "business_unit": "ads"}


def _steady(usd_per_hour: float, step_at_minute: int = 600) -> Callable[[int], float]:
    """$/h that steps up a third after `step_at_minute`, so a missed or shifted minute would show."""
    return lambda minute: usd_per_hour * (4 / 3 if minute >= step_at_minute else 1.0)


RATES = [
    RecordedRate(GPU, {**RESEARCH, "component": "active"}, _steady(96.0)),
    RecordedRate(GPU, {**SEARCH, "component": "active"}, _steady(12.0)),
    # The per-resource family repeats the GPU cost as resource="gpu": the export must not count it again.
    RecordedRate(BY_RESOURCE, {**RESEARCH, "resource": "gpu"}, _steady(96.0)),
    RecordedRate(BY_RESOURCE, {**RESEARCH, "resource": "cpu"}, _steady(3.0)),
    RecordedRate(BY_RESOURCE, {**RESEARCH, "resource": "memory"}, _steady(1.5)),
    RecordedRate(BY_RESOURCE, {**SEARCH, "resource": "cpu"}, _steady(0.8, step_at_minute=900)),
    RecordedRate(BY_RESOURCE, {"namespace": "default", "resource": "storage"}, _steady(0.2)),
]


def _resource_of(rate: RecordedRate) -> str:
    return rate.labels.get("resource", "gpu")


def _expected() -> dict[tuple[str, str], float]:
    """The day's cost by (resource, team) as the export should count it: GPU from the GPU series only."""
    counted = [rate for rate in RATES if rate.series == GPU or _resource_of(rate) != "gpu"]
    return expected_cost(counted, DAY, DAY, DAY, lambda rate: (_resource_of(rate), rate.labels.get("team", "")))


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with backfilled_prometheus(tmp_path_factory.mktemp("finance-resources"), RATES, DAY, DAY) as url:
        yield url


def _exported_rows(prometheus_url: str, out: Path, *extra: str) -> list[dict[str, object]]:
    assert gpucost_main(["export", f"--prometheus.url={prometheus_url}", f"--day={DAY}", f"--out={out}", *extra]) == 0
    rows: list[dict[str, object]] = pq.read_table(out / f"gpucost-cost-{DAY}.parquet").to_pylist()
    return rows


def test_each_resource_is_a_row_that_names_it_and_gpu_is_counted_once(prometheus_url: str, tmp_path: Path) -> None:
    rows = _exported_rows(prometheus_url, tmp_path)
    got = {(str(row["x_Resource"]), str(row["x_Team"])): float(str(row["BilledCost"])) for row in rows}
    assert got == pytest.approx(_expected(), rel=1e-9)
    assert len(rows) == len(got), "one row per resource and workload"
    memory = next(row for row in rows if row["x_Resource"] == "memory")
    assert (memory["ResourceType"], memory["ResourceId"]) == ("Memory", "memory/research/research/llama-70b")
    assert memory["ChargeDescription"] == "Memory cost of research/llama-70b in namespace research"
    storage = next(row for row in rows if row["x_Resource"] == "storage")
    assert (storage["ResourceType"], storage["x_Team"], storage["x_Namespace"]) == ("Storage", "", "default")


def test_one_resource_can_be_exported_alone(prometheus_url: str, tmp_path: Path) -> None:
    rows = _exported_rows(prometheus_url, tmp_path, "--resource=cpu")
    assert sorted((row["x_Team"], row["ResourceType"]) for row in rows) == [("research", "CPU"), ("search", "CPU")]


class _Bill:
    """A cloud bill of fixed numbers: the reconciler's other side."""

    provider = "aws"

    def actual_by_team(self, day: dt.date) -> ActualCosts:
        return ActualCosts({"research": 3000.0, "search": 400.0, "": 25.0}, estimated_by_provider=False)


def test_the_reconcilers_estimate_is_the_exported_rows_per_team(prometheus_url: str, tmp_path: Path) -> None:
    rows = _exported_rows(prometheus_url, tmp_path)
    from_rows: dict[str, float] = {}
    for row in rows:
        team = str(row["x_Team"])
        from_rows[team] = from_rows.get(team, 0.0) + float(str(row["BilledCost"]))

    estimate = PrometheusEstimateSource(PrometheusClient(prometheus_url)).estimated_by_team(DAY)
    assert {team: round(usd, 2) for team, usd in estimate.items()} == \
        {team: round(usd, 2) for team, usd in from_rows.items()}
    assert set(estimate) == {"research", "search", ""}  # every resource counts: storage is the untagged team's

    state = SidecarState()
    end = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    results = {r.scope: r for r in Reconciler(_Bill(), PrometheusEstimateSource(PrometheusClient(prometheus_url)),
                                              state).reconcile_day(DAY, end + dt.timedelta(hours=30))}
    assert round(results["team=research"].estimated_usd, 2) == round(from_rows["research"], 2)
    assert round(results["team=search"].estimated_usd, 2) == round(from_rows["search"], 2)
    assert round(results["all"].estimated_usd, 2) == round(sum(from_rows.values()), 2)
    assert results["all"].final
