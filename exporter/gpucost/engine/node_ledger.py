"""The whole-node counters: cost by resource for the node, each container and each workload (issue #19).

Same rules as the GPU counters in `gpucost.engine.ledger`, which holds one of
these: the node's counters per resource never expire, a container's series
stay `retention_seconds` after their last increment, the per-workload ones
stay.  At every scrape, for every resource,

    sum(workload series) + unallocated == node cost

and the container series add up to the workload series while they are retained.

Pure (no I/O): `to_state()` / `restore()` give and take the plain values the
state file holds (ledger state version 3; older files have none and start at 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpucost.engine.node_split import ResourceCost
from gpucost.engine.node_tick import NODE_COST_RESOURCES
from gpucost.engine.state_fields import (
    StateFormatError,
    field_of,
    list_of,
    number,
    numbers,
    remap_workload,
    short,
    string,
    strings,
)
from gpucost.model import ContainerRef

__all__ = [
    "ContainerResourceCounters",
    "ContainerResourceKey",
    "NodeCostCounters",
    "NodeLedger",
    "NodeLedgerSnapshot",
    "WorkloadResourceKey",
]


@dataclass(frozen=True, slots=True, order=True)
class ContainerResourceKey:
    container: ContainerRef
    resource: str
    workload: tuple[str, ...]


@dataclass(frozen=True, slots=True, order=True)
class WorkloadResourceKey:
    namespace: str
    resource: str
    workload: tuple[str, ...]


@dataclass(slots=True)
class NodeCostCounters:
    cost_usd: float = 0.0
    unallocated_usd: float = 0.0


@dataclass(slots=True)
class ContainerResourceCounters:
    cost_usd: float = 0.0
    last_update: float = 0.0


@dataclass(frozen=True, slots=True)
class NodeLedgerSnapshot:
    """An immutable copy of the whole-node counters."""

    resources: Mapping[str, NodeCostCounters] = field(default_factory=dict)
    containers: Mapping[ContainerResourceKey, ContainerResourceCounters] = field(default_factory=dict)
    workloads: Mapping[WorkloadResourceKey, float] = field(default_factory=dict)


@dataclass
class NodeLedger:
    resources: dict[str, NodeCostCounters] = field(default_factory=dict)
    containers: dict[ContainerResourceKey, ContainerResourceCounters] = field(default_factory=dict)
    workloads: dict[WorkloadResourceKey, float] = field(default_factory=dict)

    def record(
        self,
        costs: Iterable[ResourceCost],
        workload_values: Mapping[ContainerRef, tuple[str, ...]],
        empty_workload: tuple[str, ...],
        now: float,
    ) -> None:
        """Add one tick's split of every resource; a container that was charged nothing gets no series."""
        for cost in costs:
            node = self.resources.setdefault(cost.resource, NodeCostCounters())
            node.cost_usd += cost.cost_usd
            node.unallocated_usd += cost.unallocated_usd
            for charged in cost.containers:
                if charged.cost_usd == 0.0:
                    continue
                workload = workload_values.get(charged.container, empty_workload)
                key = ContainerResourceKey(charged.container, cost.resource, workload)
                counters = self.containers.get(key)
                if counters is None:
                    counters = self.containers[key] = ContainerResourceCounters()
                counters.cost_usd += charged.cost_usd
                counters.last_update = now
                wkey = WorkloadResourceKey(charged.container.namespace, cost.resource, workload)
                self.workloads[wkey] = self.workloads.get(wkey, 0.0) + charged.cost_usd

    def expire(self, cutoff: float) -> int:
        """Drop container series not updated since `cutoff`; returns how many."""
        stale = [key for key, counters in self.containers.items() if counters.last_update < cutoff]
        for key in stale:
            del self.containers[key]
        return len(stale)

    def snapshot(self) -> NodeLedgerSnapshot:
        return NodeLedgerSnapshot(
            resources={k: NodeCostCounters(v.cost_usd, v.unallocated_usd) for k, v in self.resources.items()},
            containers={k: ContainerResourceCounters(v.cost_usd, v.last_update) for k, v in self.containers.items()},
            workloads=dict(self.workloads),
        )

    # --- persistence (plain values; the file I/O lives in gpucost.state) -------

    def to_state(self) -> dict[str, Any]:
        return {
            "node_costs": {resource: [c.cost_usd, c.unallocated_usd] for resource, c in self.resources.items()},
            "container_resource_costs": [
                [k.container.namespace, k.container.pod, k.container.container, k.resource, list(k.workload),
                 c.cost_usd, c.last_update]
                for k, c in self.containers.items()
            ],
            "workload_resource_costs": [[k.namespace, k.resource, list(k.workload), cost]
                                        for k, cost in self.workloads.items()],
        }

    def restore(self, state: dict[str, Any], saved_names: tuple[str, ...], wanted_names: tuple[str, ...]) -> None:
        """Add the counters of a version 3 state document; raises StateFormatError for anything else."""
        resources = field_of(state, "node_costs")
        if not isinstance(resources, dict):
            raise StateFormatError(f"node_costs: not an object: {short(resources)}")
        for name, values in resources.items():
            resource = _resource(name, "node_costs")
            cost, unallocated = numbers(values, 2, f"node_costs.{resource}")
            self.resources[resource] = NodeCostCounters(cost, unallocated)
        for index, row in enumerate(list_of(field_of(state, "container_resource_costs"), "container_resource_costs")):
            where = f"container_resource_costs[{index}]"
            cells = list_of(row, where, length=7)
            ns, pod, container = (string(cell, where) for cell in cells[:3])
            workload = remap_workload(strings(cells[4], where, length=len(saved_names)), saved_names, wanted_names)
            key = ContainerResourceKey(ContainerRef(ns, pod, container), _resource(cells[3], where), workload)
            counters = self.containers.setdefault(key, ContainerResourceCounters())
            counters.cost_usd += number(cells[5], where)
            counters.last_update = max(counters.last_update, number(cells[6], where))
        for index, row in enumerate(list_of(field_of(state, "workload_resource_costs"), "workload_resource_costs")):
            where = f"workload_resource_costs[{index}]"
            cells = list_of(row, where, length=4)
            workload = remap_workload(strings(cells[2], where, length=len(saved_names)), saved_names, wanted_names)
            wkey = WorkloadResourceKey(string(cells[0], where), _resource(cells[1], where), workload)
            self.workloads[wkey] = self.workloads.get(wkey, 0.0) + number(cells[3], where)


def _resource(value: object, where: str) -> str:
    """A `resource` label value the exporter publishes; any other would be a forged series."""
    if value not in NODE_COST_RESOURCES:
        raise StateFormatError(f"{where}: unknown resource {short(value)}")
    return str(value)
