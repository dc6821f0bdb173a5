"""PriceBook behaviour the sampler and the CLI rely on: caching, logging once, catalog info, explain."""

from __future__ import annotations

import logging

import pytest

from gpucost.model import GpuDevice, NodeInfo
from gpucost.pricing import PriceBook, parse_pricing_settings
from gpucost.pricing.resolve import Resolution

P4D = NodeInfo(
    name="n1",
    labels={
        "node.kubernetes.io/instance-type": "p4d.24xlarge",
        "topology.kubernetes.io/region": "us-east-1",
        "team": "search",
    },
)
A100_40 = GpuDevice(uuid="GPU-a", index="0", model="NVIDIA A100-SXM4-40GB")


def book(section: object = None) -> PriceBook:
    return PriceBook.from_settings(parse_pricing_settings(section, "exporter.yaml"))


def test_same_node_labels_and_device_model_return_the_same_quote_object() -> None:
    priced = book()
    first = priced.quote(P4D, A100_40, 8)
    other_gpu_same_model = GpuDevice(uuid="GPU-b", index="1", model="NVIDIA A100-SXM4-40GB")
    relabelled_copy = NodeInfo(name="n2", labels={**P4D.labels, "team": "ads"})
    assert priced.quote(P4D, A100_40, 8) is first
    assert priced.quote(relabelled_copy, other_gpu_same_model, 8) is first


def test_cached_quote_does_not_resolve_again(monkeypatch: pytest.MonkeyPatch) -> None:
    priced = book()
    resolver = priced._resolver
    calls: list[str] = []
    original = resolver.resolve

    def counting_resolve(*args: object, **kwargs: object) -> Resolution:
        calls.append("resolve")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(resolver, "resolve", counting_resolve)
    for _ in range(1000):
        priced.quote(P4D, A100_40, 8)
    assert calls == ["resolve"]


def test_different_capacity_label_is_a_different_cache_entry() -> None:
    priced = book()
    spot = NodeInfo(labels={**P4D.labels, "karpenter.sh/capacity-type": "spot"})
    assert priced.quote(spot, A100_40, 8).pricing == "spot"
    assert priced.quote(P4D, A100_40, 8).pricing == "on_demand"


def test_unpriced_reason_is_logged_once_not_once_per_tick(caplog: pytest.LogCaptureFixture) -> None:
    priced = book({"allow_model_fallback": False})
    unknown = NodeInfo(labels={"node.kubernetes.io/instance-type": "mystery-box"})
    with caplog.at_level(logging.WARNING, logger="gpucost.pricing.book"):
        for tick in range(5):
            priced.quote(unknown, GpuDevice(uuid=f"GPU-{tick}", index=str(tick), model="NVIDIA L4"), 8)
            priced.quote(unknown, GpuDevice(uuid=f"GPU-{tick}", index=str(tick), model="NVIDIA L4"), 4)
        priced.quote(unknown, GpuDevice(uuid="GPU-t", index="9", model="Tesla T4"), 8)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2
    assert "instance type mystery-box is not in the catalog" in warnings[0]


def test_catalog_info_names_the_catalog_date_and_files() -> None:
    priced = book()
    assert priced.catalog_as_of == "2025-05-01"
    assert priced.catalog_source == "gpucost catalog gpus.yaml,aws.yaml,gcp.yaml,azure.yaml"


def test_explain_instance_type_at_region_shows_gpu_and_node_price_rule_source_and_date() -> None:
    lines = book().explain("p4d.24xlarge@us-east-1")
    assert lines[0] == "p4d.24xlarge (aws): 8 x A100-40GB"
    assert lines[1] == (
        "p4d.24xlarge@us-east-1: 4.0966 USD per GPU-hour, node 32.7726 USD/h over 8 GPUs, pricing on_demand"
    )
    assert lines[2] == (
        "  won: catalog (rule 6 of 8); source: https://aws.amazon.com/ec2/pricing/on-demand/;"
        " as_of: 2025-05-01"
    )
    assert any(line.startswith("p4d.24xlarge@us-east-1 spot: 1.6386 USD per GPU-hour") for line in lines)
    assert lines[-1].startswith("resolution order: node-label > config-instance-type >")


def test_explain_instance_type_without_region_lists_every_catalog_region() -> None:
    lines = book().explain("p3.2xlarge")
    regions = [line.split(":")[0] for line in lines if line.startswith("p3.2xlarge@") and " spot" not in line]
    assert regions == ["p3.2xlarge@eu-west-1", "p3.2xlarge@us-east-1", "p3.2xlarge@us-west-2"]


def test_explain_gpu_model_by_nvml_name_shows_reference_price_and_winning_rule() -> None:
    lines = book({"gpu_models": {"A100-80GB": 2.2}}).explain("NVIDIA A100-SXM4-80GB")
    assert lines[0] == "GPU model A100-80GB (from 'NVIDIA A100-SXM4-80GB'): 80 GiB, 7 MIG slices"
    assert "5.1207 USD per GPU-hour" in lines[1]
    assert any(line.startswith("a A100-80GB GPU on this node: 2.2000 USD per GPU-hour") for line in lines)
    assert any("won: config-gpu-model (rule 3 of 8)" in line for line in lines)


def test_explain_unknown_instance_type_says_it_is_not_in_the_catalog() -> None:
    lines = book({"allow_model_fallback": False}).explain("x9.48xlarge@us-east-1")
    assert lines[0] == "x9.48xlarge (aws): not in the catalog"
    assert lines[1].startswith(
        "x9.48xlarge@us-east-1: unpriced (instance type x9.48xlarge is not in the catalog"
    )
