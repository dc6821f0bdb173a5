"""Each scorecard lever on inputs small enough to check by hand (730 h per month)."""

from __future__ import annotations

import pytest

from gpucost.pricing.catalog import shipped_catalog
from gpucost.scorecard.levers import (
    GpuCandidate,
    WorkloadUsage,
    caching,
    commitment,
    idle_release,
    quantization,
    right_size,
    spot,
)
from gpucost.scorecard.prices import candidates_for, spot_price_ratio


def usage(**overrides: object) -> WorkloadUsage:
    values: dict[str, object] = {
        "team": "search", "model": "ranker",
        "cost_usd_per_hour": 10.0, "active_usd_per_hour": 6.0, "idle_usd_per_hour": 4.0,
    }
    values.update(overrides)
    return WorkloadUsage(**values)  # type: ignore[arg-type]


def test_idle_release_saves_the_idle_component() -> None:
    saving = idle_release(usage())
    assert saving.share == pytest.approx(0.4)
    assert saving.usd_per_month == pytest.approx(4.0 * 730)
    assert saving.confidence == "measured"


def test_spot_saves_the_on_demand_share_times_the_price_gap() -> None:
    saving = spot(usage(on_demand_share=0.75, spot_price_ratio=0.4, spot_from_catalog_price=True, kind="training"))
    assert saving.usd_per_month == pytest.approx(10 * 730 * 0.75 * 0.6)
    assert "checkpoint" in saving.risk
    assert saving.confidence == "measured"


def test_spot_risk_for_inference_warns_about_latency_and_default_discount_is_an_estimate() -> None:
    saving = spot(usage(spot_price_ratio=0.4, kind="inference"))
    assert "latency-critical" in saving.risk
    assert saving.confidence == "estimate"


def test_spot_without_a_known_price_saves_nothing() -> None:
    assert spot(usage()).usd_per_month == 0


def test_spot_ratio_of_p4d_falls_back_to_the_aws_default_discount() -> None:
    ratio = spot_price_ratio(shipped_catalog(), "p4d.24xlarge", "us-east-1")
    assert ratio is not None
    assert ratio[0] == pytest.approx(0.4) and ratio[1] is False
    assert spot_price_ratio(shipped_catalog(), "no-such-type", "us-east-1") is None


def test_right_size_picks_the_cheapest_gpu_that_fits_with_headroom() -> None:
    candidates = [
        GpuCandidate("L4", 24, 0.14),
        GpuCandidate("L40S", 48, 0.36),
        GpuCandidate("A100 MIG 3g", 40, 3 / 7, compute_fraction=3 / 7),
    ]
    # 30 GiB does not fit 24 x 0.8 = 19.2 GiB; it fits 48 x 0.8 = 38.4 GiB; 0.3 <= 0.5.
    saving = right_size(usage(gpu_model="A100-80GB", peak_memory_gib=30.0, peak_utilization=0.3), candidates)
    assert saving.share == pytest.approx(1 - 0.36)
    assert saving.risk.startswith("benchmark first")
    assert "38%" in saving.risk  # 1 - 30/48 memory headroom


def test_right_size_to_a_mig_slice_needs_compute_to_fit_the_slice() -> None:
    mig = [GpuCandidate("A100 MIG 3g", 40, 3 / 7, compute_fraction=3 / 7)]
    # 3/7 x 0.8 = 0.343: 0.3 fits, 0.4 does not.
    fits = right_size(usage(gpu_model="A100-80GB", peak_memory_gib=20.0, peak_utilization=0.3), mig)
    assert fits.share == pytest.approx(4 / 7)
    too_busy = right_size(usage(gpu_model="A100-80GB", peak_memory_gib=20.0, peak_utilization=0.4), mig)
    assert too_busy.share == 0


def test_right_size_without_measurements_saves_nothing() -> None:
    assert right_size(usage(), [GpuCandidate("L4", 24, 0.1)]).share == 0


def test_catalog_candidates_for_an_a100_include_l4_and_mig_slices_but_not_h100() -> None:
    names = {c.name: c for c in candidates_for("A100-80GB", shipped_catalog().gpu_models)}
    assert names["L4"].price_ratio == pytest.approx(0.70683 / 5.1207)
    assert names["A100-80GB MIG 1g"].memory_gib == 10
    assert "H100-80GB" not in names


def test_caching_saves_inference_cost_times_the_measured_duplicate_ratio() -> None:
    saving = caching(usage(inference_share=1.0, duplicate_ratio=0.2))
    assert saving.usd_per_month == pytest.approx(10 * 730 * 0.2)
    assert caching(usage(inference_share=1.0)).share == 0  # not instrumented: no assumed 35 %


def test_quantization_is_an_estimate_on_inference_active_cost() -> None:
    saving = quantization(usage(inference_share=1.0), speedup=3.0)
    assert saving.usd_per_month == pytest.approx(6.0 * 730 * (1 - 1 / 3))
    assert saving.confidence == "estimate"
    assert "accuracy" in saving.risk
    assert quantization(usage(inference_share=0.0)).share == 0


def test_commitment_discounts_the_steady_on_demand_baseline() -> None:
    saving = commitment(usage(min_hourly_usd=5.0, on_demand_share=0.8), discount=0.3)
    assert saving.usd_per_month == pytest.approx(5.0 * 0.8 * 0.3 * 730)
    assert "lock-in" in saving.risk
