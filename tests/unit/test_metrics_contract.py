"""The metric table is the contract: renderer, collector and docs/metrics.md agree with it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gpucost.engine.ledger import Ledger
from gpucost.engine.node_tick import NodeTickInputs, split_node_tick
from gpucost.engine.split import DeviceTick, Holder, split_device_cost
from gpucost.metrics.collector import SnapshotCollector
from gpucost.metrics.docs import render_metrics_doc
from gpucost.metrics.names import DEFAULT_WORKLOAD_LABELS, EXPORTER_METRICS
from gpucost.metrics.render import SnapshotRenderer
from gpucost.model import ContainerRef, ContainerResources, GpuDevice, GpuSample, NodeResourceView, PriceQuote
from gpucost.pricing.node_parts import split_node_price
from gpucost.pricing.settings import PartWeights
from gpucost.snapshot import CollectorHealth, DeviceView, ExporterSnapshot, PodOwner
from gpucost_testing.servers import REPO_ROOT

TRAIN = ContainerRef("research", "train-0", "trainer")
SERVE = ContainerRef("search", 'ranker "quoted"\\pod', "server")
WEB = ContainerRef("shop", "frontend-0", "web")
# An 8 + 2 USD/h node: two 4 USD/h GPUs, the rest cpu : memory = 3 : 1.
NODE_PRICE = split_node_price(10.0, 8.0, PartWeights(cpu=3.0, memory=1.0), "config-default")
NODE_CLAIMS = NodeResourceView(
    allocatable={"cpu": 16.0, "memory": 64e9, "storage": 100e9},
    containers=(ContainerResources(TRAIN, requests={"cpu": 8.0, "memory": 32e9}, usage={"cpu": 6.0}),
                ContainerResources(WEB, requests={"cpu": 1.0}, usage={"cpu": 2.0, "memory": 2e9})),
)


def _snapshot(version: int = 1) -> ExporterSnapshot:
    ledger = Ledger(DEFAULT_WORKLOAD_LABELS)
    workload = {TRAIN: ("research", "llama-70b", "v3", "cc-1", "bu-a"), SERVE: ("search", "ranker", "", "", "")}
    gpu_costs = [split_device_cost(DeviceTick("GPU-a", 4.0, 30, 0.75, [Holder(TRAIN, 1.0)])),
                 split_device_cost(DeviceTick("GPU-b", 4.0, 30, 0.5, [Holder(SERVE, 0.5)]))]
    for cost in gpu_costs:
        ledger.record(cost, workload, 100.0)
    workload[WEB] = ("shop", "", "", "", "")
    node_costs = split_node_tick(30, NodeTickInputs(NODE_PRICE.by_resource(), NODE_CLAIMS), gpu_costs)
    ledger.record_node(node_costs, workload, 100.0)
    ledger.add_energy("GPU-a", 1200.0)
    devices = (
        DeviceView(GpuDevice("GPU-a", "0", "NVIDIA A100-SXM4-80GB"),
                   GpuSample("GPU-a", 1.0, 0.75, 10, 80, 300.0, 5.0), PriceQuote(4.0, "on_demand"), "exclusive"),
        DeviceView(GpuDevice("GPU-b", "1", "NVIDIA A100-SXM4-80GB"),
                   GpuSample("GPU-b", 1.0, 0.5, 10, 80, 200.0, 5.0), PriceQuote(4.0, "spot"), "time_slicing"),
    )
    return ExporterSnapshot(
        version=version,
        workload_label_names=DEFAULT_WORKLOAD_LABELS,
        devices=devices,
        ledger=ledger.snapshot(),
        health=(CollectorHealth("nvml", True, 0.002), CollectorHealth("podresources", False, 0.1)),
        last_sample_timestamp=1_700_000_000.0,
        unmapped_devices={"nvidia.com/gpu": 1},
        owners=(PodOwner("research", "train-0", "Job", "train"),),
        catalog_as_of="2025-05-01",
        catalog_source="gpucost catalog",
        catalog_as_of_timestamp=1_746_057_600.0,
        build_version="0.1.0",
        node_price=NODE_PRICE,
    )


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_fast_renderer_and_stock_collector_expose_identical_samples() -> None:
    snapshot = _snapshot()
    fast = SnapshotRenderer().render(snapshot).decode()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshot, DEFAULT_WORKLOAD_LABELS))
    stock = generate_latest(registry).decode()
    assert _samples(fast) == _samples(stock)
    assert "_created" not in fast


def test_every_rendered_series_uses_the_names_and_labels_of_the_table() -> None:
    table = {spec.name: set(spec.label_names(DEFAULT_WORKLOAD_LABELS)) for spec in EXPORTER_METRICS}
    rendered = _samples(SnapshotRenderer().render(_snapshot()).decode())
    seen = set()
    for name, labels in rendered:
        assert name in table, name
        assert {key for key, _ in labels} == table[name], name
        seen.add(name)
    assert seen == set(table), set(table) - seen


def test_describe_does_no_io_and_registration_never_collects() -> None:
    def explode() -> ExporterSnapshot:
        raise AssertionError("collect() must not run at registration")

    registry = CollectorRegistry()
    registry.register(SnapshotCollector(explode, DEFAULT_WORKLOAD_LABELS))


def test_a_snapshot_is_rendered_once_however_many_scrapes() -> None:
    renderer = SnapshotRenderer()
    snapshot = _snapshot(7)
    first = renderer.render(snapshot)
    assert renderer.render(snapshot) is first
    assert renderer.render(_snapshot(8)) is not first


def test_label_values_are_escaped_in_the_exposition() -> None:
    text = SnapshotRenderer().render(_snapshot()).decode()
    assert 'pod="ranker \\"quoted\\"\\\\pod"' in text
    assert any(s[0] == "gpucost_container_gpu_cost_usd_total" and ("pod", 'ranker "quoted"\\pod') in s[1]
               for s in _samples(text))


def test_whole_node_families_carry_the_pod_join_and_workload_labels_of_the_gpu_families() -> None:
    rendered = _samples(SnapshotRenderer().render(_snapshot()).decode())
    workload = set(DEFAULT_WORKLOAD_LABELS)
    labels = {name: {key for key, _ in pairs} for name, pairs in rendered}
    assert labels["gpucost_container_cost_usd_total"] == {"namespace", "pod", "container", "resource"} | workload
    assert labels["gpucost_workload_cost_usd_total"] == {"namespace", "resource"} | workload
    assert labels["gpucost_node_cost_usd_total"] == labels["gpucost_node_unallocated_cost_usd_total"] == {"resource"}
    assert labels["gpucost_node_price_usd_per_hour"] == {"resource", "split"}
    prices = {dict(pairs)["resource"]: (dict(pairs)["split"], value) for (name, pairs), value in rendered.items()
              if name == "gpucost_node_price_usd_per_hour"}
    assert prices == {"gpu": ("config-default", 8.0), "cpu": ("config-default", 1.5),
                      "memory": ("config-default", 0.5), "storage": ("config-default", 0.0)}
    trainer = {dict(pairs)["resource"]: dict(pairs) for name, pairs in rendered
               if name == "gpucost_container_cost_usd_total" and dict(pairs)["pod"] == "train-0"}
    gpu_series = next(dict(pairs) for name, pairs in rendered
                      if name == "gpucost_container_gpu_cost_usd_total" and dict(pairs)["pod"] == "train-0")
    for resource in ("gpu", "cpu", "memory"):
        assert {k: trainer[resource][k] for k in workload} == {k: gpu_series[k] for k in workload}


def test_docs_metrics_md_is_generated_from_the_metric_table() -> None:
    committed = (REPO_ROOT / "docs" / "metrics.md").read_text()
    assert committed == render_metrics_doc(), "run: python -m gpucost.metrics.docs > docs/metrics.md"
    for spec in EXPORTER_METRICS:
        assert f"`{spec.name}`" in committed


def test_money_metrics_follow_the_usd_naming_contract() -> None:
    for spec in EXPORTER_METRICS:
        if "usd" in spec.name:
            assert spec.name.endswith(("_usd_total", "_usd_per_hour")), spec.name
            assert (spec.type == "counter") == spec.name.endswith("_total"), spec.name
        assert "hostname" not in spec.labels and "node" not in spec.labels


def test_promtool_check_metrics_is_clean_on_the_exposition(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by make bootstrap"
    text = SnapshotRenderer().render(_snapshot()).decode()
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    del tmp_path


def test_golden_exposition_matches(tmp_path: Path) -> None:
    golden = REPO_ROOT / "tests/fixtures/exposition/golden.prom"
    text = SnapshotRenderer().render(_snapshot()).decode()
    if not golden.exists() or _update_requested():
        golden.write_text(text)
    assert text == golden.read_text(), "update with GPUCOST_UPDATE_GOLDEN=1"
    del tmp_path


def _update_requested() -> bool:
    import os

    return os.environ.get("GPUCOST_UPDATE_GOLDEN") == "1"
