"""Whole-node cost booked by the sampler: every resource conserved, the node costs its price, GPUs as before.

docs/node-cost.md sections 2 and 4: for every resource at every scrape the
containers (while retained) plus the node's unallocated part make the node's
cost, the resources together make the node's price times the booked time, and
`resource="gpu"` is the GPU families summed.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpucost.attribution import AllocationView, StaticMetadataProvider
from gpucost.engine.ledger import LedgerSnapshot
from gpucost.engine.node_tick import NODE_COST_RESOURCES, NodeTickInputs, split_node_tick
from gpucost.engine.split import DeviceCost, DeviceTick, Holder, split_device_cost
from gpucost.errors import SourceUnavailable
from gpucost.model import ContainerRef, ContainerResources, GpuDevice, NodeInfo, NodeResourceView, PodMeta, PriceQuote
from gpucost.node_cost import NodePricer
from gpucost.pricing import PriceBook, parse_pricing_settings, shipped_catalog
from gpucost.pricing.node_parts import NodePartsBook, NodePriceParts, split_node_price
from gpucost.pricing.settings import PartWeights
from gpucost.sampler import Sampler, SamplerSettings
from gpucost.sources.registry import KUBELET_RESOURCE
from gpucost.state import StateFile
from gpucost_testing.sampler_fakes import JOB, FakeAllocations, FakeGpus, FlatPrices, PolledAllocations, TeamLabels

WEB = ContainerRef("shop", "web", "server")
PODS = [PodMeta("ml", "job", labels={"team": "research"}), PodMeta("shop", "web", labels={"team": "shop"})]
WEIGHTS = PartWeights(cpu=2.0, memory=1.0, storage=0.5)
NODE_USD_PER_HOUR = 20.0  # three 3.6 USD/h GPUs (10.8) and 9.2 for the rest
GIB = 2.0**30


def _claims(job_cpu_usage: float | None = 6.0) -> NodeResourceView:
    usage = {} if job_cpu_usage is None else {"cpu": job_cpu_usage}
    return NodeResourceView(
        allocatable={"cpu": 32.0, "memory": 128 * GIB, "storage": 500 * GIB},
        containers=(
            ContainerResources(JOB, "uid-job", {"cpu": 4.0, "memory": 16 * GIB, "storage": 10 * GIB}, usage),
            ContainerResources(WEB, "uid-web", {"cpu": 2.0}, {"memory": 4 * GIB}),
        ),
    )


class StaticNodeResources:
    """The node's claims as a test sets them; `fail` makes refresh raise, as an unreachable kubelet does."""

    name = KUBELET_RESOURCE.collector

    def __init__(self, view: NodeResourceView) -> None:
        self.view = view
        self.fail = False
        self.refreshed: list[float] = []

    def refresh(self, now: float) -> None:
        if self.fail:
            raise SourceUnavailable("kubelet /metrics/resource: connection refused")
        self.refreshed.append(now)

    def current(self) -> NodeResourceView:
        return self.view


class FixedNodePrice:
    """A node priced at a fixed total whatever its GPUs cost; the rest split by WEIGHTS."""

    def __init__(self, node_usd_per_hour: float = NODE_USD_PER_HOUR) -> None:
        self.node_usd_per_hour = node_usd_per_hour
        self.asked: list[tuple[float, str, int]] = []

    def parts(
        self, node: NodeInfo, gpu_usd_per_hour: float, gpu_model: str = "", gpus_on_node: int = 0
    ) -> NodePriceParts:
        self.asked.append((gpu_usd_per_hour, gpu_model, gpus_on_node))
        return split_node_price(self.node_usd_per_hour, gpu_usd_per_hour, WEIGHTS, "config-default")


def _sampler(
    gpus: FakeGpus,
    allocations: FakeAllocations | PolledAllocations | None = None,
    resources: StaticNodeResources | None = None,
    pricer: NodePricer | None = None,
    state: StateFile | None = None,
) -> Sampler:
    metadata = StaticMetadataProvider(PODS, NodeInfo("node-1"))
    return Sampler(SamplerSettings(("team",)), gpus, allocations or FakeAllocations(), metadata,
                   FlatPrices(), TeamLabels(), state, wall_clock=lambda: gpus.clock,
                   node_resources=resources, node_prices=pricer)


def _run(sampler: Sampler, gpus: FakeGpus, steps: list[float]) -> None:
    for step in steps:
        gpus.clock += step
        sampler.tick()


def _assert_conserved(ledger: LedgerSnapshot) -> None:
    node = ledger.node
    assert set(node.resources) == set(NODE_COST_RESOURCES)
    for resource, counters in node.resources.items():
        containers = math.fsum(c.cost_usd for k, c in node.containers.items() if k.resource == resource)
        workloads = math.fsum(cost for k, cost in node.workloads.items() if k.resource == resource)
        assert containers + counters.unallocated_usd == pytest.approx(counters.cost_usd, rel=1e-9, abs=1e-15)
        assert workloads + counters.unallocated_usd == pytest.approx(counters.cost_usd, rel=1e-9, abs=1e-15)


def _node_total(ledger: LedgerSnapshot) -> float:
    return math.fsum(counters.cost_usd for counters in ledger.node.resources.values())


def _container_cost(ledger: LedgerSnapshot, container: ContainerRef, resource: str) -> float:
    return math.fsum(c.cost_usd for k, c in ledger.node.containers.items()
                     if k.container == container and k.resource == resource)


STEPS = [1.0, 2.5, 1.0, 0.5, 3.0] * 12


def test_every_resource_is_conserved_and_the_resources_add_up_to_the_node_price_times_time() -> None:
    gpus = FakeGpus()
    resources = StaticNodeResources(_claims())
    sampler = _sampler(gpus, resources=resources, pricer=FixedNodePrice())
    sampler.tick()
    _run(sampler, gpus, STEPS[:30])
    resources.view = _claims(job_cpu_usage=None)  # usage unknown for a while: the request counts
    _run(sampler, gpus, STEPS[30:])
    snapshot = sampler.snapshot()
    ledger = snapshot.ledger
    _assert_conserved(ledger)
    seconds = sum(STEPS)
    assert _node_total(ledger) == pytest.approx(NODE_USD_PER_HOUR * seconds / 3600, rel=1e-9)
    parts = snapshot.node_price
    assert parts is not None and parts.split == "config-default"
    assert parts.gpu_usd_per_hour == pytest.approx(3 * 3.6)
    for resource, usd_per_hour in parts.by_resource().items():
        assert ledger.node.resources[resource].cost_usd == pytest.approx(usd_per_hour * seconds / 3600, rel=1e-9)
    # The job claims max(4 requested, 6 used) cores of 32 while measured, then its 4 requested.
    cpu_per_second = parts.cpu_usd_per_hour / 3600 / 32
    measured = sum(STEPS[:30])
    job_core_seconds = 6 * measured + 4 * (seconds - measured)
    assert _container_cost(ledger, JOB, "cpu") == pytest.approx(cpu_per_second * job_core_seconds)
    assert _container_cost(ledger, WEB, "cpu") == pytest.approx(cpu_per_second * 2 * seconds)
    assert _container_cost(ledger, WEB, "memory") == pytest.approx(parts.memory_usd_per_hour * seconds / 3600 / 32)


def test_the_gpu_resource_is_the_gpu_families_summed() -> None:
    gpus = FakeGpus()
    sampler = _sampler(gpus, resources=StaticNodeResources(_claims()), pricer=FixedNodePrice())
    sampler.tick()
    _run(sampler, gpus, STEPS)
    ledger = sampler.snapshot().ledger
    gpu = ledger.node.resources["gpu"]
    assert gpu.cost_usd == pytest.approx(math.fsum(c.cost_usd for c in ledger.gpus.values()), rel=1e-12)
    assert gpu.unallocated_usd == pytest.approx(math.fsum(c.unallocated_usd for c in ledger.gpus.values()), rel=1e-12)
    job_gpu = math.fsum(c.active_usd + c.idle_usd for k, c in ledger.containers.items() if k.container == JOB)
    assert _container_cost(ledger, JOB, "gpu") == pytest.approx(job_gpu, rel=1e-12)
    (gpu_key,) = (k for k in ledger.node.containers if k.resource == "gpu")
    (gpu_series_key,) = ledger.containers
    assert gpu_key.workload == gpu_series_key.workload == ("research",)
    assert {k.workload for k in ledger.node.workloads if k.namespace == "shop"} == {("shop",)}


class MigGpus(FakeGpus):
    def __init__(self) -> None:
        super().__init__()
        parent = GpuDevice("GPU-p", "0", "NVIDIA A100-SXM4-40GB")
        slices = [GpuDevice(f"MIG-{i}", f"0/mig{i}", "NVIDIA A100-SXM4-40GB MIG 3g.20gb", parent_uuid="GPU-p",
                            mig_profile="3g.20gb", mig_slices=3, parent_slices=7) for i in (1, 2)]
        self.present = [parent, *slices]


class FractionPrices(FlatPrices):
    """3.6 USD/h a GPU; a MIG slice its fraction of it, as the price book quotes one."""

    def quote(self, node: NodeInfo, device: GpuDevice, gpus_on_node: int) -> PriceQuote:
        return PriceQuote(3.6 * device.price_fraction, "on_demand")


def test_a_mig_gpu_is_priced_once_its_parent_keeping_only_the_uncarved_part() -> None:
    gpus = MigGpus()
    pricer = FixedNodePrice()
    metadata = StaticMetadataProvider(PODS, NodeInfo("node-1"))
    sampler = Sampler(SamplerSettings(("team",)), gpus, FakeAllocations(), metadata, FractionPrices(), TeamLabels(),
                      wall_clock=lambda: gpus.clock, node_prices=pricer)
    sampler.tick()
    _run(sampler, gpus, [10.0] * 6)
    gpu_usd_per_hour, gpu_model, gpus_on_node = pricer.asked[-1]
    assert gpu_usd_per_hour == pytest.approx(3.6)
    assert (gpu_model, gpus_on_node) == ("NVIDIA A100-SXM4-40GB", 1), "the parent is the node's one full GPU"
    ledger = sampler.snapshot().ledger
    assert ledger.node.resources["gpu"].cost_usd == pytest.approx(3.6 * 60 / 3600)
    assert ledger.node.resources["gpu"].cost_usd == pytest.approx(math.fsum(c.cost_usd for c in ledger.gpus.values()))


def test_an_unreachable_kubelet_degrades_only_its_collector_and_requests_are_still_charged() -> None:
    gpus, twin_gpus = FakeGpus(), FakeGpus()
    resources = StaticNodeResources(_claims(job_cpu_usage=None))
    resources.fail = True
    sampler = _sampler(gpus, resources=resources, pricer=FixedNodePrice())
    without_node_cost = _sampler(twin_gpus)
    for each in (sampler, without_node_cost):
        each.tick()
    for step in STEPS[:10]:
        for clock, each in ((gpus, sampler), (twin_gpus, without_node_cost)):
            clock.clock += step
            each.tick()
    health = {h.collector: h.success for h in sampler.snapshot().health}
    assert health[KUBELET_RESOURCE.collector] is False
    assert health["nvml"] is True and health["pricing"] is True
    assert sampler.readiness_problems() == [], "CPU/memory usage is no reason to leave the Service"
    ledger, twin = sampler.snapshot().ledger, without_node_cost.snapshot().ledger
    assert (ledger.gpus, ledger.containers, ledger.workloads) == (twin.gpus, twin.containers, twin.workloads)
    parts = sampler.snapshot().node_price
    assert parts is not None
    seconds = sum(STEPS[:10])
    assert _container_cost(ledger, JOB, "cpu") == pytest.approx(parts.cpu_usd_per_hour * seconds / 3600 * 4 / 32)
    _assert_conserved(ledger)


def test_a_node_without_gpus_books_its_cpu_and_memory() -> None:
    gpus = FakeGpus()
    gpus.present = []
    allocations = FakeAllocations()
    allocations.view = AllocationView()
    pricer = FixedNodePrice(0.4)
    sampler = _sampler(gpus, allocations, StaticNodeResources(_claims()), pricer)
    sampler.tick()
    _run(sampler, gpus, [5.0] * 12)
    assert pricer.asked[-1] == (0.0, "", 0)
    ledger = sampler.snapshot().ledger
    assert ledger.node.resources["gpu"].cost_usd == 0.0
    assert _node_total(ledger) == pytest.approx(0.4 * 60 / 3600)
    assert _container_cost(ledger, JOB, "cpu") > 0.0 and _container_cost(ledger, WEB, "memory") > 0.0
    _assert_conserved(ledger)
    assert sampler.ready


def test_without_a_node_pricer_the_node_is_its_gpus_and_without_claims_the_rest_is_unallocated() -> None:
    gpus = FakeGpus()
    sampler = _sampler(gpus)
    sampler.tick()
    _run(sampler, gpus, [10.0] * 3)
    snapshot = sampler.snapshot()
    parts = snapshot.node_price
    assert parts is not None and parts.split == "gpu-only"
    assert parts.node_usd_per_hour == parts.gpu_usd_per_hour == pytest.approx(3 * 3.6)
    node = snapshot.ledger.node
    assert node.resources["gpu"].cost_usd == pytest.approx(3 * 3.6 * 30 / 3600)
    assert {r: c.cost_usd for r, c in node.resources.items() if r != "gpu"} == {"cpu": 0, "memory": 0, "storage": 0}
    assert {k.resource for k in node.containers} == {"gpu"}


def test_a_crash_with_ticks_journaled_books_each_resource_once_across_the_restart(tmp_path: Path) -> None:
    gpus = FakeGpus()
    state = StateFile(tmp_path / "state.json")
    resources = StaticNodeResources(_claims())
    first = _sampler(gpus, PolledAllocations(gpus), resources, FixedNodePrice(), state)
    first.tick()
    _run(first, gpus, [1.0] * 40)  # a checkpoint at 30 s, the last 3 s still journaled, then killed
    gpus.clock += 2
    second = _sampler(gpus, PolledAllocations(gpus), resources, FixedNodePrice(), state)
    second.tick()
    second.stop()
    ledger = second.snapshot().ledger
    assert _node_total(ledger) == pytest.approx(NODE_USD_PER_HOUR * 42 / 3600, rel=1e-9)
    assert ledger.node.resources["gpu"].cost_usd == pytest.approx(math.fsum(c.cost_usd for c in ledger.gpus.values()))
    _assert_conserved(ledger)


def test_the_catalog_price_book_prices_the_node_around_the_gpus_the_engine_charges() -> None:
    pricing = parse_pricing_settings({"gpu_share_of_node_price": 0.8}, "exporter.yaml")
    gpus = FakeGpus()
    gpus.present = [GpuDevice(f"GPU-{i}", str(i), "NVIDIA A100-SXM4-40GB") for i in range(8)]
    labels = {"node.kubernetes.io/instance-type": "p4d.24xlarge", "topology.kubernetes.io/region": "us-east-1"}
    metadata = StaticMetadataProvider(PODS, NodeInfo("node-1", labels))
    sampler = Sampler(SamplerSettings(("team",)), gpus, FakeAllocations(), metadata, PriceBook.from_settings(pricing),
                      TeamLabels(), wall_clock=lambda: gpus.clock, node_resources=StaticNodeResources(_claims()),
                      node_prices=NodePartsBook(pricing, shipped_catalog()))
    sampler.tick()
    _run(sampler, gpus, [60.0] * 60)
    parts = sampler.snapshot().node_price
    assert parts is not None
    assert parts.node_usd_per_hour == pytest.approx(32.7726)
    assert parts.gpu_usd_per_hour == pytest.approx(32.7726 * 0.8)
    ledger = sampler.snapshot().ledger
    assert _node_total(ledger) == pytest.approx(32.7726, rel=1e-9)  # one hour
    _assert_conserved(ledger)


# --- the pure booking step ------------------------------------------------------------------------------

CONTAINERS = [ContainerRef("ns", f"pod-{i}", "main") for i in range(4)]
amounts = st.floats(0.0, 64.0, allow_nan=False)
maybe = st.none() | amounts


@st.composite
def node_ticks(draw: st.DrawFn) -> tuple[float, NodeTickInputs, list[DeviceCost]]:
    seconds = draw(st.floats(0.0, 600.0))
    prices = {resource: draw(st.floats(0.0, 50.0)) for resource in NODE_COST_RESOURCES}
    containers = tuple(
        ContainerResources(ref, requests={r: draw(amounts) for r in ("cpu", "memory", "storage")},
                           usage={r: u for r in ("cpu", "memory") if (u := draw(maybe)) is not None})
        for ref in draw(st.lists(st.sampled_from(CONTAINERS), max_size=6))
    )
    allocatable = {r: draw(amounts) for r in ("cpu", "memory", "storage") if draw(st.booleans())}
    devices = [
        split_device_cost(DeviceTick(f"GPU-{i}", draw(st.floats(0.0, 10.0)), seconds, draw(st.none() | st.floats(0, 1)),
                                     [Holder(ref, draw(st.floats(0.05, 1.0)))
                                      for ref in draw(st.lists(st.sampled_from(CONTAINERS), max_size=3, unique=True))]))
        for i in range(draw(st.integers(0, 3)))
    ]
    return seconds, NodeTickInputs(prices, NodeResourceView(allocatable, containers)), devices


@settings(max_examples=300, deadline=None)
@given(node_ticks())
def test_each_resources_containers_and_unallocated_make_its_cost_and_gpu_is_the_devices_summed(
    tick: tuple[float, NodeTickInputs, list[DeviceCost]],
) -> None:
    seconds, inputs, devices = tick
    costs = split_node_tick(seconds, inputs, devices)
    assert [cost.resource for cost in costs] == list(NODE_COST_RESOURCES)
    for cost in costs:
        assert all(container.cost_usd >= 0.0 for container in cost.containers)
        assert cost.allocated_usd + cost.unallocated_usd == pytest.approx(cost.cost_usd, rel=1e-9, abs=1e-12)
    gpu, *others = costs
    assert gpu.cost_usd == pytest.approx(math.fsum(d.cost_usd for d in devices), rel=1e-12, abs=1e-15)
    assert gpu.unallocated_usd == pytest.approx(math.fsum(d.unallocated_usd for d in devices), rel=1e-12, abs=1e-15)
    for cost in others:
        price = inputs.price_per_hour_usd[cost.resource]
        assert cost.cost_usd == pytest.approx(price * seconds / 3600)
        if not inputs.view.allocatable.get(cost.resource):
            assert cost.unallocated_usd == cost.cost_usd, "no allocatable: nothing is guessed"
