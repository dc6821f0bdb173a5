"""Each rule of the resolution order, with prices worked out by hand from the catalog figures.

Catalog figures used: p4d.24xlarge us-east-1 32.7726 USD/h for 8 x A100-40GB,
p4de.24xlarge 40.9657 for 8 x A100-80GB, p5.48xlarge 98.32 for 8 x H100-80GB,
g5.12xlarge 5.672 for 4 x A10G, a2-highgpu-8g us-central1 29.387816 for 8 x
A100-40GB, g2-standard-4 0.70683 for 1 x L4, Standard_NC24ads_A100_v4 eastus
3.673 for 1 x A100-80GB; every cloud's catalog spot discount is 60 %.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucost.model import GpuDevice, NodeInfo, PriceQuote
from gpucost.pricing import PriceBook, parse_pricing_settings

FILE = "exporter.yaml"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pricing"
A100_40 = GpuDevice(uuid="GPU-a", index="0", model="NVIDIA A100-SXM4-40GB")
A100_80 = GpuDevice(uuid="GPU-b", index="0", model="NVIDIA A100-SXM4-80GB")
H100 = GpuDevice(uuid="GPU-c", index="0", model="NVIDIA H100 80GB HBM3")


def book(section: object = None) -> PriceBook:
    return PriceBook.from_settings(parse_pricing_settings(section, FILE))


def node(instance_type: str = "", region: str = "", **extra: str) -> NodeInfo:
    labels = dict(extra)
    if instance_type:
        labels["node.kubernetes.io/instance-type"] = instance_type
    if region:
        labels["topology.kubernetes.io/region"] = region
    return NodeInfo(name="gpu-node-1", labels=labels)


def gpu(nvml_name: str) -> GpuDevice:
    return GpuDevice(uuid="GPU-x", index="0", model=nvml_name)


def test_catalog_on_demand_price_is_the_node_price_split_over_its_gpus() -> None:
    quote = book().quote(node("p4d.24xlarge", "us-east-1"), A100_40, 8)
    assert quote.price_per_hour_usd == pytest.approx(32.7726 / 8)  # 4.096575
    assert quote.pricing == "on_demand"
    assert quote.source == "https://aws.amazon.com/ec2/pricing/on-demand/"
    assert quote.as_of == "2025-05-01"
    assert quote.detail.startswith("catalog:")


def test_region_comes_from_the_zone_label_when_the_region_label_is_missing() -> None:
    quote = book().quote(
        node("a2-highgpu-8g", **{"topology.kubernetes.io/zone": "us-central1-a"}), A100_40, 8
    )
    assert quote.price_per_hour_usd == pytest.approx(29.387816 / 8)


def test_gpu_share_below_one_leaves_the_rest_of_the_node_price_unattributed() -> None:
    quote = book({"gpu_share_of_node_price": 0.9}).quote(node("p4d.24xlarge", "us-east-1"), A100_40, 8)
    assert quote.price_per_hour_usd == pytest.approx(32.7726 * 0.9 / 8)  # 3.68691750


@pytest.mark.parametrize(
    ("instance_type", "region", "labels", "device", "expected"),
    [
        pytest.param(
            "p4d.24xlarge",
            "us-east-1",
            {"karpenter.sh/capacity-type": "spot"},
            A100_40,
            32.7726 * 0.4 / 8,
            id="karpenter capacity-type spot",
        ),
        pytest.param(
            "g5.12xlarge",
            "us-east-1",
            {"eks.amazonaws.com/capacityType": "SPOT"},
            gpu("NVIDIA A10G"),
            5.672 * 0.4 / 4,
            id="EKS managed node group capacityType SPOT",
        ),
        pytest.param(
            "a2-highgpu-8g",
            "us-central1",
            {"cloud.google.com/gke-spot": "true"},
            A100_40,
            29.387816 * 0.4 / 8,
            id="GKE spot",
        ),
        pytest.param(
            "g2-standard-4",
            "us-central1",
            {"cloud.google.com/gke-preemptible": "true"},
            gpu("NVIDIA L4"),
            0.70683 * 0.4,
            id="GKE preemptible",
        ),
        pytest.param(
            "Standard_NC24ads_A100_v4",
            "eastus",
            {"kubernetes.azure.com/scalesetpriority": "spot"},
            A100_80,
            3.673 * 0.4,
            id="AKS spot scale set",
        ),
    ],
)
def test_spot_label_of_each_provider_prices_the_node_at_the_spot_discount(
    instance_type: str, region: str, labels: dict[str, str], device: GpuDevice, expected: float
) -> None:
    quote = book().quote(node(instance_type, region, **labels), device, 8)
    assert quote.pricing == "spot"
    assert quote.price_per_hour_usd == pytest.approx(expected)
    assert "60% spot discount" in quote.detail


@pytest.mark.parametrize(
    "labels",
    [
        {"karpenter.sh/capacity-type": "on-demand"},
        {"eks.amazonaws.com/capacityType": "ON_DEMAND"},
        {"cloud.google.com/gke-spot": "false"},
        {},
    ],
)
def test_on_demand_or_absent_capacity_label_prices_on_demand(labels: dict[str, str]) -> None:
    quote = book().quote(node("p4d.24xlarge", "us-east-1", **labels), A100_40, 8)
    assert quote.pricing == "on_demand"
    assert quote.price_per_hour_usd == pytest.approx(32.7726 / 8)


def test_configured_spot_discount_replaces_the_catalog_discount() -> None:
    spot = node("p4d.24xlarge", "us-east-1", **{"karpenter.sh/capacity-type": "spot"})
    quote = book({"spot_discount_percent": 70}).quote(spot, A100_40, 8)
    assert quote.price_per_hour_usd == pytest.approx(32.7726 * 0.3 / 8)  # 1.22897250


def test_configured_capacity_type_prices_a_node_whose_labels_say_nothing() -> None:
    quote = book({"capacity_type": "spot"}).quote(node("p4d.24xlarge", "us-east-1"), A100_40, 8)
    assert quote.pricing == "spot"


def test_commitment_discount_applies_to_on_demand_but_not_to_spot_nodes() -> None:
    priced = book({"commitment": {"kind": "savings_plan", "discount_percent": 30}})
    committed = priced.quote(node("p5.48xlarge", "us-east-1"), H100, 8)
    assert committed.pricing == "commitment"
    assert committed.price_per_hour_usd == pytest.approx(98.32 * 0.7 / 8)  # 8.603
    assert "30% savings_plan" in committed.detail
    spot = priced.quote(node("p5.48xlarge", "us-east-1", **{"karpenter.sh/capacity-type": "spot"}), H100, 8)
    assert spot.pricing == "spot"
    assert spot.price_per_hour_usd == pytest.approx(98.32 * 0.4 / 8)


def test_mig_slice_carries_its_profile_fraction_of_the_parent_gpu_price() -> None:
    slice_3g = GpuDevice(
        uuid="MIG-1",
        index="0/mig2",
        model="NVIDIA A100-SXM4-80GB MIG 3g.40gb",
        parent_uuid="GPU-b",
        mig_profile="3g.40gb",
        mig_slices=3,
        parent_slices=7,
    )
    quote = book().quote(node("p4de.24xlarge", "us-east-1"), slice_3g, 8)
    assert quote.price_per_hour_usd == pytest.approx(40.9657 / 8 * 3 / 7)  # 2.19459107
    assert "MIG 3g.40gb is 3/7" in quote.detail


def test_node_price_label_prices_an_on_prem_gpu_as_written() -> None:
    quote = book().quote(node(**{"gpucost.io/price-per-gpu-hour": "1.75"}), H100, 8)
    assert quote == PriceQuote(1.75, "on_prem", "node label gpucost.io/price-per-gpu-hour", "", "node-label")


def test_node_price_label_wins_over_catalog_and_config() -> None:
    priced = book({"instance_types": {"p4d.24xlarge": {"on_demand_usd_per_hour": 20}}})
    labelled = node("p4d.24xlarge", "us-east-1", **{"gpucost.io/price-per-gpu-hour": "3"})
    assert priced.quote(labelled, A100_40, 8).price_per_hour_usd == 3.0


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", ""])
def test_invalid_node_price_label_leaves_the_gpu_unpriced_and_says_why(value: str) -> None:
    quote = book().quote(
        node("p4d.24xlarge", "us-east-1", **{"gpucost.io/price-per-gpu-hour": value}), A100_40, 8
    )
    assert quote.pricing == "unpriced"
    assert quote.price_per_hour_usd == 0.0
    assert f"gpucost.io/price-per-gpu-hour={value!r}" in quote.detail


def test_config_instance_type_price_wins_over_catalog_and_takes_gpu_count_from_catalog() -> None:
    quote = book({"instance_types": {"p4d.24xlarge": {"on_demand_usd_per_hour": 20}}}).quote(
        node("p4d.24xlarge", "us-east-1"), A100_40, 8
    )
    assert quote.price_per_hour_usd == pytest.approx(20 / 8)  # 2.5
    assert quote.source == f"config {FILE}"
    assert quote.detail.startswith("config-instance-type:")


def test_config_instance_type_without_gpu_count_is_split_over_the_gpus_nvml_sees() -> None:
    priced = book({"instance_types": {"dgx-station": {"on_demand_usd_per_hour": 24}}})
    assert priced.quote(node("dgx-station"), A100_80, 4).price_per_hour_usd == pytest.approx(24 / 4)  # 6.0


def test_config_gpu_model_price_prices_any_node_with_that_gpu() -> None:
    quote = book({"gpu_models": {"A100-80GB": 2.2}}).quote(node(), A100_80, 8)
    assert quote.price_per_hour_usd == 2.2
    assert quote.pricing == "on_prem"
    assert quote.detail == "config-gpu-model: A100-80GB"


def test_on_prem_tco_spreads_purchase_overhead_and_power_over_the_gpus() -> None:
    section = {
        "cloud": "onprem",
        "on_prem": {
            "purchase_price_usd": 240000,
            "amortization_months": 36,
            "watts": 6500,
            "usd_per_kwh": 0.12,
            "pue": 1.4,
            "overhead_usd_per_month": 1000,
            "gpus_per_node": 8,
        },
    }
    quote = book(section).quote(node("dgx-a100"), A100_80, 8)
    # (240000 / 36 + 1000) / 730 = 10.502283 capex and overhead per hour; 6.5 kW x 0.12 x 1.4 = 1.092 power
    assert quote.price_per_hour_usd == pytest.approx((10.502283 + 1.092) / 8, abs=1e-6)  # 1.449285
    assert quote.pricing == "on_prem"


def test_on_prem_tco_without_gpus_per_node_uses_the_gpus_nvml_sees() -> None:
    section = {
        "on_prem": {"purchase_price_usd": 73000, "amortization_months": 100, "watts": 0, "usd_per_kwh": 0}
    }
    # 73000 / 100 / 730 = 1.0 USD per node-hour, over 4 GPUs
    assert book(section).quote(node(), A100_80, 4).price_per_hour_usd == pytest.approx(0.25)


def test_overrides_file_price_wins_over_the_catalog() -> None:
    priced = book({"overrides_file": str(FIXTURES / "overrides_price_sync.yaml")})
    on_demand = priced.quote(node("p4d.24xlarge", "us-east-1"), A100_40, 8)
    assert on_demand.price_per_hour_usd == pytest.approx(21.96 / 8)  # 2.745
    assert on_demand.as_of == "2026-11-28T06:00:00Z"
    assert on_demand.detail.startswith("overrides-file:")
    spot = priced.quote(
        node("p4d.24xlarge", "us-east-1", **{"karpenter.sh/capacity-type": "spot"}), A100_40, 8
    )
    assert spot.price_per_hour_usd == pytest.approx(12.5 / 8)  # the file's spot price, not a discount


def test_overrides_file_prices_an_instance_type_the_catalog_does_not_know() -> None:
    priced = book({"overrides_file": str(FIXTURES / "overrides_price_sync.yaml")})
    assert priced.quote(node("a3-megagpu-8g", "us-central1"), H100, 8).price_per_hour_usd == pytest.approx(
        11.0
    )


def test_config_instance_type_wins_over_the_overrides_file() -> None:
    priced = book(
        {
            "overrides_file": str(FIXTURES / "overrides_price_sync.yaml"),
            "instance_types": {"p4d.24xlarge": {"on_demand_usd_per_hour": 16}},
        }
    )
    assert priced.quote(node("p4d.24xlarge", "us-east-1"), A100_40, 8).price_per_hour_usd == pytest.approx(
        2.0
    )


def test_static_config_prices_a_node_without_kubernetes_labels() -> None:
    priced = book({"cloud": "gcp", "region": "us-central1", "instance_type": "a2-ultragpu-8g"})
    assert priced.quote(node(), A100_80, 8).price_per_hour_usd == pytest.approx(40.5504 / 8)  # 5.0688


def test_unknown_instance_type_falls_back_to_the_gpu_model_reference_price() -> None:
    quote = book().quote(node("custom-h100-box", "us-east-1"), H100, 8)
    assert quote.price_per_hour_usd == 12.29
    assert quote.pricing == "on_demand"
    assert quote.detail.startswith("gpu-model reference price")
    assert quote.source == "https://aws.amazon.com/ec2/instance-types/p5/"


def test_catalog_type_in_an_unlisted_region_falls_back_to_the_reference_price() -> None:
    quote = book().quote(node("p4d.24xlarge", "eu-north-1"), A100_40, 8)
    assert quote.price_per_hour_usd == 4.0966
    assert "no catalog price for p4d.24xlarge in region eu-north-1" in quote.detail


def test_without_model_fallback_an_unresolvable_gpu_is_unpriced_with_the_reason() -> None:
    quote = book({"allow_model_fallback": False}).quote(node("p4d.24xlarge", "eu-north-1"), A100_40, 8)
    assert quote.pricing == "unpriced"
    assert quote.price_per_hour_usd == 0.0
    assert "no catalog price for p4d.24xlarge in region eu-north-1" in quote.detail
    assert "allow_model_fallback: false" in quote.detail


def test_unknown_gpu_on_an_unknown_node_is_unpriced_naming_the_model() -> None:
    quote = book().quote(node(), gpu("NVIDIA B200"), 8)
    assert quote.pricing == "unpriced"
    assert quote.detail == "node has no instance type; GPU model B200 is not in the model table"
