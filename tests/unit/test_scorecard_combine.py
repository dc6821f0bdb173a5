"""Combining levers compounds them: never more than the baseline, never less than the best lever."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpucost.pricing.catalog import shipped_catalog
from gpucost.scorecard.collector import SAVINGS_METRIC, ScorecardCollector, ScorecardHolder
from gpucost.scorecard.combine import Scorecard, combine_shares, score_workload
from gpucost.scorecard.digest import top_lever
from gpucost.scorecard.levers import LEVER_ORDER, WorkloadUsage
from gpucost.scorecard.prices import candidates_for
from gpucost.scorecard.render import to_json_document

shares = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=len(LEVER_ORDER), max_size=len(LEVER_ORDER))


@given(shares)
def test_combined_saving_is_at_most_baseline_and_at_least_the_largest_lever(values: list[float]) -> None:
    combined = combine_shares(zip(LEVER_ORDER, values, strict=True))
    assert combined.share <= 1.0
    assert combined.share >= max(values) - 1e-12
    assert sum(step.share_of_baseline for step in combined.steps) == pytest.approx(combined.share)


usages = st.builds(
    WorkloadUsage,
    team=st.sampled_from(["a", "b"]), model=st.sampled_from(["m"]),
    cost_usd_per_hour=st.floats(0.01, 1e4),
    active_usd_per_hour=st.floats(0, 1e4), idle_usd_per_hour=st.floats(0, 1e4),
    on_demand_share=st.floats(0, 1), spot_price_ratio=st.none() | st.floats(0, 1),
    kind=st.sampled_from(["training", "inference", "unknown"]),
    gpu_model=st.just("A100-80GB"), peak_memory_gib=st.floats(0, 80), peak_utilization=st.floats(0, 1),
    inference_share=st.floats(0, 1), duplicate_ratio=st.none() | st.floats(0, 1),
    min_hourly_usd=st.floats(0, 1e4),
)


@given(usages)
def test_any_workload_scores_between_its_best_lever_and_its_baseline(usage: WorkloadUsage) -> None:
    score = score_workload(usage, candidates_for("A100-80GB", shipped_catalog().gpu_models))
    best = max(s.usd_per_month for s in score.levers)
    assert best - 1e-6 <= score.combined_usd_per_month <= score.baseline_usd_per_month + 1e-6


def test_two_half_savings_compound_to_three_quarters_not_one_hundred_percent() -> None:
    combined = combine_shares([("idle_release", 0.5), ("spot", 0.5)])
    assert combined.share == pytest.approx(0.75)
    steps = {s.lever: s.share_of_baseline for s in combined.steps}
    assert steps["idle_release"] == pytest.approx(0.5)
    assert steps["spot"] == pytest.approx(0.25)  # acts on what idle release left


def _scorecard() -> Scorecard:
    usage = WorkloadUsage("search", "ranker", 10.0, 6.0, 4.0, spot_price_ratio=0.4, kind="inference",
                          inference_share=1.0, duplicate_ratio=0.25, min_hourly_usd=8.0)
    return Scorecard(86400.0, (score_workload(usage, []),))


def test_json_reports_each_lever_and_a_combined_total_under_one_hundred_percent() -> None:
    document = to_json_document(_scorecard())
    workload = document["workloads"][0]
    assert [lever["lever"] for lever in workload["levers"]] == list(LEVER_ORDER)
    assert sum(lever["percent_of_baseline"] for lever in workload["levers"]) > 100  # alone they overlap
    assert workload["combined"]["percent_of_baseline"] < 100


def test_collector_exports_every_lever_and_the_combined_total() -> None:
    holder = ScorecardHolder()
    collector = ScorecardCollector(holder)
    assert [m.samples for m in collector.collect()] == [[]]
    holder.set(_scorecard(), 1.0)
    samples = [s for m in collector.collect() if m.name == SAVINGS_METRIC for s in m.samples]
    levers = {s.labels["lever"]: s.labels["confidence"] for s in samples}
    assert set(levers) == {*LEVER_ORDER, "combined"}
    assert levers["quantization"] == "estimate" and levers["combined"] == "estimate"


def test_top_lever_is_the_team_lever_with_the_largest_saving() -> None:
    result = top_lever("search", _scorecard())
    assert result is not None
    lever, usd, risk = result
    assert lever == "spot" and usd == pytest.approx(10 * 730 * 0.6) and "latency" in risk
    assert top_lever("nobody", _scorecard()) is None
