"""A node's price in GPU, CPU, memory and storage parts: the GPU part is the price book's, the parts add up.

Catalog figures used: p4d.24xlarge us-east-1 32.7726 USD/h for 8 x A100-40GB,
a2-highgpu-1g us-central1 3.673477 for 1 x A100-40GB (Google lists it as 12
vCPU x 0.031611 + 85 GiB x 0.004237 + the GPU).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.errors import ConfigError
from gpucost.model import GpuDevice, NodeInfo
from gpucost.pricing import PriceBook, parse_pricing_settings, shipped_catalog
from gpucost.pricing.node_parts import (
    NodePartsBook,
    NodePriceParts,
    choose_weights,
    load_node_parts_table,
    shipped_node_parts_table,
    split_node_price,
)
from gpucost.pricing.settings import NodeSplitSettings, PartWeights

FILE = "exporter.yaml"
A100_40 = GpuDevice(uuid="GPU-a", index="0", model="NVIDIA A100-SXM4-40GB")


def node(instance_type: str = "", region: str = "", **extra: str) -> NodeInfo:
    labels = dict(extra)
    if instance_type:
        labels["node.kubernetes.io/instance-type"] = instance_type
    if region:
        labels["topology.kubernetes.io/region"] = region
    return NodeInfo(name="node-1", labels=labels)


def books(section: object = None) -> tuple[PriceBook, NodePartsBook]:
    pricing = parse_pricing_settings(section, FILE)
    return PriceBook.from_settings(pricing), NodePartsBook(pricing, shipped_catalog())


def gpu_part(book: PriceBook, where: NodeInfo, gpus: int) -> float:
    """What the exporter attributes to the node's GPUs: the sum of their quotes."""
    return math.fsum(book.quote(where, A100_40, gpus).price_per_hour_usd for _ in range(gpus))


def assert_adds_up(parts: NodePriceParts) -> None:
    """To the last bit, give or take one rounding tie (see `_close_on`)."""
    total = math.fsum(parts.by_resource().values())
    assert abs(total - parts.node_usd_per_hour) <= math.ulp(parts.node_usd_per_hour)


def test_gpu_part_is_what_the_price_book_attributes_and_the_rest_is_cpu_and_memory() -> None:
    book, parts_book = books({"gpu_share_of_node_price": 0.8})
    where = node("p4d.24xlarge", "us-east-1")
    gpus = gpu_part(book, where, 8)
    parts = parts_book.parts(where, gpus, "A100-40GB", 8)
    assert parts.gpu_usd_per_hour == gpus == pytest.approx(32.7726 * 0.8)
    assert parts.node_usd_per_hour == pytest.approx(32.7726)
    assert parts.cpu_usd_per_hour + parts.memory_usd_per_hour == pytest.approx(32.7726 * 0.2)
    # p4d: 12 GiB per vCPU at 0.031611 per vCPU-h and 0.004237 per GiB-h.
    cpu_share = 0.031611 / (0.031611 + 12 * 0.004237)
    assert parts.cpu_usd_per_hour == pytest.approx(32.7726 * 0.2 * cpu_share)
    assert parts.storage_usd_per_hour == 0.0
    assert parts.split == "default-family"
    assert_adds_up(parts)


def test_with_the_default_gpu_share_a_catalog_gpu_node_is_all_gpu() -> None:
    book, parts_book = books()
    where = node("p4d.24xlarge", "us-east-1")
    parts = parts_book.parts(where, gpu_part(book, where, 8), "A100-40GB", 8)
    assert parts.gpu_usd_per_hour == pytest.approx(32.7726)
    assert parts.cpu_usd_per_hour == parts.memory_usd_per_hour == 0.0
    assert_adds_up(parts)


def test_node_without_gpus_is_priced_from_its_configured_instance_type_by_family() -> None:
    _, parts_book = books({"instance_types": {"m5.2xlarge": {"on_demand_usd_per_hour": 0.384}}})
    parts = parts_book.parts(node("m5.2xlarge", "us-east-1"), 0.0)
    assert parts.gpu_usd_per_hour == 0.0
    assert parts.node_usd_per_hour == pytest.approx(0.384)
    cpu_share = 0.031611 / (0.031611 + 4 * 0.004237)  # m5: 4 GiB per vCPU
    assert parts.cpu_usd_per_hour == pytest.approx(0.384 * cpu_share)
    assert parts.memory_usd_per_hour == pytest.approx(0.384 * (1 - cpu_share))
    assert parts.split == "default-family"
    assert_adds_up(parts)


def test_spot_discount_applies_to_a_node_without_gpus_as_to_a_gpu_node() -> None:
    _, parts_book = books({
        "instance_types": {"m5.2xlarge": {"on_demand_usd_per_hour": 0.384, "spot_usd_per_hour": 0.15}},
    })
    where = node("m5.2xlarge", "us-east-1", **{"eks.amazonaws.com/capacityType": "SPOT"})
    assert parts_book.parts(where, 0.0).node_usd_per_hour == pytest.approx(0.15)


def test_unpriced_node_without_gpus_costs_nothing_rather_than_a_guess() -> None:
    _, parts_book = books()
    parts = parts_book.parts(node("m5.2xlarge", "us-east-1"), 0.0)
    assert parts.by_resource() == {"gpu": 0.0, "cpu": 0.0, "memory": 0.0, "storage": 0.0}
    assert parts.split == "gpu-only"


def test_catalog_component_prices_split_a_gcp_a2_node_as_google_lists_it() -> None:
    book, parts_book = books({"gpu_share_of_node_price": 0.8})
    where = node("a2-highgpu-1g", "us-central1")
    parts = parts_book.parts(where, gpu_part(book, where, 1), "A100-40GB", 1)
    assert parts.split == "catalog"
    assert parts.cpu_usd_per_hour / parts.memory_usd_per_hour == pytest.approx(
        (12 * 0.031611) / (85 * 0.004237)
    )
    assert_adds_up(parts)


def test_configured_family_beats_the_catalog_and_the_longest_prefix_wins() -> None:
    section = {"node_split": {"families": {
        "a2": {"cpu": 1, "memory": 1},
        "a2-highgpu": {"cpu": 1, "memory": 3, "storage": 1},
    }}}
    weights, rule, why = choose_weights(
        "a2-highgpu-1g", False, parse_pricing_settings(section, FILE).node_split, shipped_node_parts_table()
    )
    assert (weights, rule) == (PartWeights(1, 3, 1), "config-family")
    assert why == "pricing.node_split.families.a2-highgpu"


def test_storage_is_priced_only_where_a_weight_says_so() -> None:
    section = {"gpu_share_of_node_price": 0.5,
               "node_split": {"families": {"p4d.": {"cpu": 2, "memory": 1, "storage": 1}}}}
    book, parts_book = books(section)
    where = node("p4d.24xlarge", "us-east-1")
    parts = parts_book.parts(where, gpu_part(book, where, 8), "A100-40GB", 8)
    rest = 32.7726 * 0.5
    assert (parts.cpu_usd_per_hour, parts.memory_usd_per_hour, parts.storage_usd_per_hour) == pytest.approx(
        (rest / 2, rest / 4, rest / 4)
    )
    assert_adds_up(parts)


def test_on_prem_tco_node_uses_the_on_prem_weights() -> None:
    section = {
        "gpu_share_of_node_price": 0.75,
        "on_prem": {"purchase_price_usd": 300000, "amortization_months": 36, "watts": 6500,
                    "usd_per_kwh": 0.12, "pue": 1.4, "gpus_per_node": 8},
        "node_split": {"on_prem": {"cpu": 1, "memory": 1}},
    }
    book, parts_book = books(section)
    where = node()
    tco = 300000 / 36 / 730 + 6.5 * 0.12 * 1.4
    parts = parts_book.parts(where, gpu_part(book, where, 8), "A100-40GB", 8)
    assert parts.node_usd_per_hour == pytest.approx(tco)
    assert parts.gpu_usd_per_hour == pytest.approx(tco * 0.75)
    assert parts.cpu_usd_per_hour == pytest.approx(tco * 0.125)
    assert parts.split == "config-on-prem"
    assert_adds_up(parts)


def test_on_prem_tco_is_not_applied_to_a_node_without_gpus() -> None:
    section = {"on_prem": {"purchase_price_usd": 300000, "amortization_months": 36, "watts": 6500,
                           "usd_per_kwh": 0.12}}
    _, parts_book = books(section)
    parts = parts_book.parts(node(), 0.0)
    assert parts.node_usd_per_hour == 0.0
    assert "describes GPU nodes" in parts.detail


def test_per_gpu_price_from_a_node_label_leaves_the_node_as_its_gpus() -> None:
    book, parts_book = books()
    where = node("p4d.24xlarge", "us-east-1", **{"gpucost.io/price-per-gpu-hour": "2.5"})
    parts = parts_book.parts(where, gpu_part(book, where, 8), "A100-40GB", 8)
    assert parts.node_usd_per_hour == parts.gpu_usd_per_hour == pytest.approx(20.0)
    assert parts.split == "gpu-only"


def test_a_node_price_below_its_gpus_price_keeps_the_gpu_part() -> None:
    parts = split_node_price(10.0, 12.0, PartWeights(1, 1), "default")
    assert parts.by_resource() == {"gpu": 12.0, "cpu": 0.0, "memory": 0.0, "storage": 0.0}
    assert parts.node_usd_per_hour == 12.0


def test_configured_default_applies_only_where_no_family_matches() -> None:
    split = parse_pricing_settings({"node_split": {"default": {"cpu": 1, "memory": 0}}}, FILE).node_split
    table = shipped_node_parts_table()
    assert choose_weights("m5.large", False, split, table)[1] == "default-family"
    assert choose_weights("mystery-box", False, split, table)[:2] == (PartWeights(1, 0), "config-default")
    assert choose_weights("mystery-box", False, NodeSplitSettings(), table)[1] == "default"


@pytest.mark.parametrize(
    ("section", "key_path"),
    [
        ({"node_split": {"familes": {}}}, "pricing.node_split.familes"),
        ({"node_split": {"families": {"m5": {"cpu": 0, "memory": 0}}}}, "pricing.node_split.families.m5"),
        ({"node_split": {"default": {"cpu": -1, "memory": 1}}}, "pricing.node_split.default.cpu"),
        ({"node_split": {"on_prem": {"cpu": 1}}}, "pricing.node_split.on_prem.memory"),
        ({"node_split": {"default": {"cpu": 1, "memory": 1, "gpu": 1}}}, "pricing.node_split.default.gpu"),
    ],
)
def test_bad_node_split_settings_are_config_errors_with_their_key_path(section: object, key_path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_pricing_settings(section, FILE)
    assert caught.value.key_path == key_path
    assert caught.value.file == FILE


def test_shipped_component_prices_stay_below_the_catalog_price_of_each_listed_type() -> None:
    catalog = shipped_catalog()
    for instance_type, listed in shipped_node_parts_table().instance_types.items():
        entry = catalog.instance_type("gcp", instance_type)
        assert entry is not None, instance_type
        weights = listed.weights()
        for region, price in entry.regions.items():
            non_gpu = weights.cpu + weights.memory
            # What is left for the GPUs is a plausible A100 price, not a rounding error.
            per_gpu = (price.on_demand_usd_per_hour - non_gpu) / entry.gpu_count
            assert 2.5 < per_gpu < 4.0, (instance_type, region)


def test_a_broken_node_parts_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "node_parts.yaml"
    text = shipped_node_parts_table_text().replace(
        "component_prices: gcp-a2, vcpus: 12,", "component_prices: gcp-a9, vcpus: 12,"
    )
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_node_parts_table(broken)
    assert caught.value.file == str(broken)
    assert caught.value.key_path == "instance_types.a2-highgpu-1g.component_prices"


def shipped_node_parts_table_text() -> str:
    return Path(shipped_node_parts_table().file).read_text(encoding="utf-8")


prices = st.floats(min_value=0.0, max_value=1000.0, allow_nan=False)
weights = st.builds(
    PartWeights,
    cpu=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    memory=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    storage=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
).filter(lambda w: w.total > 0.0)


@settings(max_examples=2000, deadline=None)
@given(node_price=prices, gpu_price=prices, part_weights=weights)
def test_the_parts_always_add_up_to_the_node_price_to_the_last_bit(
    node_price: float, gpu_price: float, part_weights: PartWeights
) -> None:
    parts = split_node_price(node_price, gpu_price, part_weights, "default")
    assert parts.gpu_usd_per_hour == gpu_price
    assert parts.node_usd_per_hour == max(node_price, gpu_price)
    assert_adds_up(parts)
    for resource, value in parts.by_resource().items():
        assert value >= 0.0, resource
    if part_weights.storage == 0.0:
        assert parts.storage_usd_per_hour == 0.0
