"""The rules-at-scale benchmark end to end at a small size: promtool, Prometheus, vmctl, VictoriaMetrics, vmalert.

No timing is asserted (speed is what `make bench` reports); this checks that the benchmark
measures what it says: every rule group of every rule file, in both engines, with no rule
errors, on history that was cut into several chunks and backfilled as several blocks.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gpucost_bench.rules_scale import run_rules_scale
from gpucost_testing.servers import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("rules-scale")
    return run_rules_scale(workdir, nodes=2, days=2, evaluation_interval_seconds=5, chunk_samples=100_000)


def _all_groups() -> set[str]:
    groups = set()
    for path in sorted((REPO_ROOT / "rules").glob("*.yaml")):
        groups |= {f"{path.name}:{g['name']}" for g in yaml.safe_load(path.read_text())["groups"]}
    return groups


def test_history_is_backfilled_from_several_chunks_into_disjoint_blocks(result: dict[str, Any]) -> None:
    data = result["input"]
    assert data["chunks"] >= 3
    assert data["blocks"] >= data["chunks"], "each chunk is backfilled into its own block(s)"
    assert data["samples"] > 100_000 and data["series"] > 0 and data["distinct_pods"] > 0
    assert result["size"]["group_intervals_changed"]["gpucost.inference.rules.yaml:gpucost.inference.daily"] == (
        "5m -> 5s")


@pytest.mark.parametrize("engine", ["prometheus", "victoriametrics"])
def test_every_rule_group_is_timed_in_both_engines_without_rule_errors(result: dict[str, Any], engine: str) -> None:
    measured = result[engine]
    assert set(measured["groups"]) == _all_groups()
    assert measured["groups_with_rule_errors"] == {}
    for group, figures in measured["groups"].items():
        assert 0 < figures["evaluation_seconds"] <= figures["max_seen_evaluation_seconds"], group


def test_both_engines_record_the_cost_and_budget_series_from_the_live_fleet(result: dict[str, Any]) -> None:
    prometheus, vm = result["prometheus"]["recorded_series"], result["victoriametrics"]["recorded_series"]
    for name in ("namespace_workload:gpucost_cost_usd_per_hour:rate5m", "team:gpucost_spend_usd:month_to_date",
                 "budget:gpucost_budget_used:ratio", "pod_owner:gpucost_cost_usd:sum"):
        assert prometheus[name] > 0, name
        assert vm[name] == prometheus[name], name
    live = result["prometheus"]["pods"]["pods_with_series_in_last_5m"]
    assert 0 < live <= 2 * 4, "two nodes run at most four pods each"
    assert result["victoriametrics"]["pods"] == result["prometheus"]["pods"]
