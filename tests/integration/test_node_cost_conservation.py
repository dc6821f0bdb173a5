"""Whole-node cost is conserved, read back from a real Prometheus (issue #19, acceptance 1).

Two exporters on simulated nodes, scraped every second by one Prometheus:
- the demo's node: a p4de.24xlarge with 8 GPUs whose GPUs carry 80 % of the catalog price
  (examples/gpucost_demo: scenario.yaml and exporter.yaml);
- a node without GPUs: an m5.4xlarge priced by `pricing.instance_types`
  (tests/fixtures/scenarios/cpu_node*.yaml).

For each node and each scrape, what Prometheus stored must satisfy, within 1e-6 USD:
- per resource: the containers' cost + the node's unallocated cost = the node's cost;
- over resources: the node's cost grew by its price x the booked time between two scrapes
  (`gpucost_exporter_booked_until_timestamp_seconds` is on the sampler's clock, in which the
  price is per hour);
- resource="gpu" is the GPU families: the node's GPU cost is the sum of the GPUs' cost counters.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpucost_testing.servers import (
    REPO_ROOT,
    ManagedProcess,
    prom_query,
    start_exporter,
    start_prometheus,
    wait_for,
    write_prometheus_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOLERANCE_USD = 1e-6
RESOURCES = ("gpu", "cpu", "memory", "storage")
SPEED = 120  # scenario seconds per wall second, as the demo runs
SCRAPES_NEEDED = 12
DEMO = REPO_ROOT / "examples" / "gpucost_demo"
SCENARIOS = REPO_ROOT / "tests" / "fixtures" / "scenarios"


@dataclass(frozen=True)
class Node:
    name: str
    exporter: ManagedProcess

    @property
    def instance(self) -> str:
        return self.exporter.base_url.removeprefix("http://")


@dataclass(frozen=True)
class Stack:
    prometheus: ManagedProcess
    nodes: tuple[Node, ...]


def _exporter(workdir: Path, name: str, config: Path, scenario: Path) -> ManagedProcess:
    workdir.mkdir()
    return start_exporter(workdir, [
        f"--config.file={config}",
        "--nvml.backend=simulated",
        f"--simulate.scenario={scenario}",
        f"--simulate.speed={SPEED}",
        "--sample.interval=1s",
        f"--state.file={workdir / 'state.json'}",
    ], name=name)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("node-cost")
    started: list[ManagedProcess] = []
    try:
        demo = _exporter(workdir / "demo", "exporter-demo-node", DEMO / "exporter.yaml", DEMO / "scenario.yaml")
        started.append(demo)
        cpu = _exporter(workdir / "cpu", "exporter-cpu-node", SCENARIOS / "cpu_node_exporter.yaml",
                        SCENARIOS / "cpu_node.yaml")
        started.append(cpu)
        nodes = (Node("demo", demo), Node("no-gpu", cpu))
        config = write_prometheus_config(workdir / "prometheus.yml", scrape_interval="1s",
                                         scrape_targets=[node.instance for node in nodes])
        prometheus = start_prometheus(workdir, config)
        started.append(prometheus)
        stack = Stack(prometheus, nodes)
        for node in nodes:
            wait_for(lambda node=node: len(_scrape_times(stack, node)) >= SCRAPES_NEEDED, timeout=90,
                     what=f"{SCRAPES_NEEDED} scrapes of the {node.name} node with cost booked")
        yield stack
    finally:
        for process in reversed(started):
            process.stop()


def _scrape_times(stack: Stack, node: Node) -> list[float]:
    """Timestamps of the node's stored scrapes (the last minute) in which it had booked some time."""
    result = prom_query(stack.prometheus,
                        f'gpucost_exporter_booked_until_timestamp_seconds{{instance="{node.instance}"}}[60s]')
    if not result:
        return []
    booked = [(float(at), float(value)) for at, value in result[0]["values"]]
    # From the second booked scrape: the first tick books no time (nothing to measure from).
    first = next((at for at, value in booked if value > 0), None)
    return [at for at, _ in booked if first is not None and at > first]


def _by_resource(stack: Stack, node: Node, expr: str, at: float) -> dict[str, float]:
    selector = f'{{instance="{node.instance}"}}'
    result = prom_query(stack.prometheus, f"sum by (resource) ({expr}{selector})", at)
    return {sample["metric"].get("resource", ""): float(sample["value"][1]) for sample in result}


def _single(stack: Stack, node: Node, expr: str, at: float) -> float:
    result = prom_query(stack.prometheus, f'sum({expr}{{instance="{node.instance}"}})', at)
    assert len(result) == 1, f"{expr} at {at}: {result}"
    return float(result[0]["value"][1])


@pytest.mark.parametrize("node_name", ["demo", "no-gpu"])
def test_containers_plus_unallocated_equal_the_nodes_cost_for_every_resource_at_every_scrape(
    stack: Stack, node_name: str
) -> None:
    node = next(n for n in stack.nodes if n.name == node_name)
    times = _scrape_times(stack, node)
    assert len(times) >= SCRAPES_NEEDED

    for at in times:
        node_cost = _by_resource(stack, node, "gpucost_node_cost_usd_total", at)
        unallocated = _by_resource(stack, node, "gpucost_node_unallocated_cost_usd_total", at)
        containers = _by_resource(stack, node, "gpucost_container_cost_usd_total", at)
        assert set(node_cost) == set(RESOURCES)
        for resource in RESOURCES:
            attributed = containers.get(resource, 0.0) + unallocated.get(resource, 0.0)
            assert abs(attributed - node_cost[resource]) <= TOLERANCE_USD, (node_name, resource, at)


@pytest.mark.parametrize("node_name", ["demo", "no-gpu"])
def test_the_nodes_cost_over_resources_grows_by_its_price_times_the_booked_time(stack: Stack, node_name: str) -> None:
    node = next(n for n in stack.nodes if n.name == node_name)
    times = _scrape_times(stack, node)
    checked = 0
    for before, after in itertools.pairwise(times):
        price = _single(stack, node, "gpucost_node_price_usd_per_hour", after)
        assert price == _single(stack, node, "gpucost_node_price_usd_per_hour", before)
        booked = (_single(stack, node, "gpucost_exporter_booked_until_timestamp_seconds", after)
                  - _single(stack, node, "gpucost_exporter_booked_until_timestamp_seconds", before))
        grew = (_single(stack, node, "gpucost_node_cost_usd_total", after)
                - _single(stack, node, "gpucost_node_cost_usd_total", before))
        assert abs(grew - price * booked / 3600) <= TOLERANCE_USD, (node_name, before, after, grew, price, booked)
        checked += booked > 0
    assert checked >= SCRAPES_NEEDED // 2, "too few scrapes with booked time between them"


def test_the_demo_node_has_cpu_and_memory_cost_beside_gpu_and_the_cpu_node_none_for_gpu(stack: Stack) -> None:
    demo, cpu = stack.nodes
    at = _scrape_times(stack, demo)[-1]
    demo_prices = _by_resource(stack, demo, "gpucost_node_price_usd_per_hour", at)
    assert demo_prices["gpu"] > 0 and demo_prices["cpu"] > 0 and demo_prices["memory"] > 0
    # 80 % of the node's price is its GPUs' (exporter.yaml).
    assert demo_prices["gpu"] == pytest.approx(0.8 * sum(demo_prices.values()), rel=1e-9)
    demo_containers = _by_resource(stack, demo, "gpucost_container_cost_usd_total", at)
    assert demo_containers["cpu"] > 0 and demo_containers["memory"] > 0

    at = _scrape_times(stack, cpu)[-1]
    cpu_prices = _by_resource(stack, cpu, "gpucost_node_price_usd_per_hour", at)
    assert cpu_prices["gpu"] == 0
    assert sum(cpu_prices.values()) == pytest.approx(0.768, rel=1e-9)  # m5.4xlarge, cpu_node_exporter.yaml
    assert _by_resource(stack, cpu, "gpucost_container_cost_usd_total", at)["cpu"] > 0


def test_the_nodes_gpu_cost_is_the_sum_of_its_gpus_cost_counters(stack: Stack) -> None:
    demo = stack.nodes[0]
    for at in _scrape_times(stack, demo)[-3:]:
        node_gpu = _by_resource(stack, demo, "gpucost_node_cost_usd_total", at)["gpu"]
        assert abs(node_gpu - _single(stack, demo, "gpucost_gpu_cost_usd_total", at)) <= TOLERANCE_USD
