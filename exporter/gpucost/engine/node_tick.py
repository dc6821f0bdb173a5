"""Split one tick of the whole node's cost by resource: the GPUs' split regrouped, CPU, memory and storage.

Pure, like `gpucost.engine.tick`: the booking hands it the GPUs' splits of the
same tick and the node's parts and claims as sampled, and gets one
`ResourceCost` per resource back (docs/node-cost.md, sections 2 and 4).

- gpu: nothing is split again.  The node's GPU cost is the sum of its devices'
  costs, the unallocated part the sum of theirs, and a container's part the sum
  of what it holds (active + idle) over devices, so the `resource="gpu"` series
  add up to the GPU families exactly.
- cpu, memory, storage: `split_resource_cost` of the part's price over the
  node's allocatable, each container claiming max(request, usage).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gpucost.engine.node_split import (
    ContainerClaim,
    ContainerResourceCost,
    ResourceCost,
    ResourceTick,
    split_resource_cost,
)
from gpucost.engine.split import DeviceCost
from gpucost.model import NODE_RESOURCES, ContainerRef, NodeResourceView

__all__ = ["GPU_RESOURCE", "NODE_COST_RESOURCES", "NodeTickInputs", "gpu_resource_cost", "resource_claims",
           "split_node_tick"]

GPU_RESOURCE = "gpu"
# The `resource` label values of the whole-node families, in the order they are published.
NODE_COST_RESOURCES: tuple[str, ...] = (GPU_RESOURCE, *NODE_RESOURCES)
# The kubelet's /metrics/resource measures no container's disk use: storage is claimed by request alone.
_REQUEST_ONLY = frozenset({"storage"})


@dataclass(frozen=True, slots=True)
class NodeTickInputs:
    """The node's price by resource (USD/h) and its claims, as sampled for one tick.

    The `gpu` price is informative only: the GPUs' cost comes from their own split.
    """

    price_per_hour_usd: Mapping[str, float] = field(default_factory=dict)
    view: NodeResourceView = field(default_factory=NodeResourceView)


def resource_claims(view: NodeResourceView, resource: str) -> tuple[ContainerClaim, ...]:
    """Every container's claim on one resource: its request (none: 0) and its measured usage (none: unknown)."""
    return tuple(
        ContainerClaim(
            item.container,
            request=item.requests.get(resource, 0.0),
            usage=None if resource in _REQUEST_ONLY else item.usage.get(resource),
        )
        for item in view.containers
    )


def gpu_resource_cost(device_costs: Sequence[DeviceCost], seconds: float) -> ResourceCost:
    """The GPUs' split of one tick as one resource; a container's `claimed` is the GPUs it held (device-seconds / s)."""
    totals: dict[ContainerRef, list[float]] = {}
    held: dict[ContainerRef, list[float]] = {}
    for device in device_costs:
        for holder in device.holders:
            totals.setdefault(holder.container, []).extend((holder.active_usd, holder.idle_usd))
            held.setdefault(holder.container, []).append(holder.gpu_seconds)
    containers = tuple(
        ContainerResourceCost(container, math.fsum(parts), math.fsum(held[container]) / seconds if seconds > 0 else 0.0)
        for container, parts in sorted(totals.items())
    )
    return ResourceCost(
        GPU_RESOURCE,
        math.fsum(device.cost_usd for device in device_costs),
        math.fsum(device.unallocated_usd for device in device_costs),
        containers,
    )


def split_node_tick(seconds: float, inputs: NodeTickInputs, device_costs: Sequence[DeviceCost]) -> list[ResourceCost]:
    """One `ResourceCost` per resource of `NODE_COST_RESOURCES`, in that order; each adds up to its cost."""
    costs = [gpu_resource_cost(device_costs, seconds)]
    for resource in NODE_RESOURCES:
        costs.append(split_resource_cost(ResourceTick(
            resource,
            inputs.price_per_hour_usd.get(resource, 0.0),
            seconds,
            inputs.view.allocatable.get(resource, 0.0),
            resource_claims(inputs.view, resource),
        )))
    return costs
