"""The sampler's whole-node step: each tick, the node's CPU/memory/storage claims and its price in parts.

The claims come from the node-resource provider (the kubelet's
`/metrics/resource` and the pod specs), refreshed through the health board
under the provider's `name`: a failure degrades only that collector, and
`current()` still answers with the requests.  The price is quoted around the
GPU part the engine charges this tick (a MIG parent counted once: its
uncarved part plus its slices), so `node_cost{resource="gpu"}` is the GPUs'
cost counters exactly.  Without a node pricer the node is its GPUs
(split `gpu-only`); without a provider the other parts are all unallocated.
Both travel with the tick into the journal (`gpucost.booking`), which books
them with the GPU split of the same tick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

from gpucost.attribution import NodeResourceProvider
from gpucost.engine.node_tick import NodeTickInputs
from gpucost.engine.tick import TickInputs, device_ticks
from gpucost.health import HealthBoard
from gpucost.model import GpuDevice, NodeInfo, NodeResourceView, PriceQuote
from gpucost.pricing.node_parts import NodePriceParts, split_node_price
from gpucost.pricing.settings import PartWeights

__all__ = ["UNPRICED_NODE", "NodeCostStep", "NodePricer", "gpu_only", "gpu_usd_per_hour", "node_tick_inputs"]

# A node that is its GPUs has no rest to divide: these weights are never applied.
_UNUSED_WEIGHTS = PartWeights(cpu=1.0, memory=0.0)
_NO_CLAIMS = NodeResourceView()


class NodePricer(Protocol):
    """Prices a whole node in parts around its GPU part (`gpucost.pricing.node_parts.NodePartsBook`)."""

    def parts(
        self, node: NodeInfo, gpu_usd_per_hour: float, gpu_model: str = "", gpus_on_node: int = 0
    ) -> NodePriceParts: ...


def gpu_only(gpu_usd_per_hour: float, detail: str) -> NodePriceParts:
    """The node as its GPUs alone: nothing for CPU, memory or storage."""
    return split_node_price(None, gpu_usd_per_hour, _UNUSED_WEIGHTS, "gpu-only", detail)


# What a tick whose quoting failed books: the GPUs cost nothing then either (the engine finds no price).
UNPRICED_NODE = gpu_only(0.0, "no price quoted")


def gpu_usd_per_hour(devices: Sequence[GpuDevice], prices: Mapping[str, PriceQuote]) -> float:
    """What the engine charges per hour for these GPUs, by its own rules (a MIG parent keeps its uncarved part)."""
    return math.fsum(tick.price_per_hour_usd for tick in device_ticks(TickInputs(0.0, devices, {}, prices, ())))


def node_tick_inputs(parts: NodePriceParts, view: NodeResourceView) -> NodeTickInputs:
    return NodeTickInputs(parts.by_resource(), view)


class NodeCostStep:
    def __init__(
        self, resources: NodeResourceProvider | None, pricer: NodePricer | None, health: HealthBoard
    ) -> None:
        # Public for the snapshot's truncation counts: the kubelet reader reports what it cut.
        self.resources = resources
        self._pricer = pricer
        self._health = health

    def refresh(self, clock: float) -> NodeResourceView:
        """The node's claims now: refreshed under the provider's health name, the last good view on failure."""
        provider = self.resources
        if provider is None:
            return _NO_CLAIMS
        self._health.run(provider.name, lambda: provider.refresh(clock), None)
        return provider.current()

    def quote(self, node: NodeInfo, devices: Sequence[GpuDevice], prices: Mapping[str, PriceQuote]) -> NodePriceParts:
        """The node's price in parts around what its GPUs cost this tick (runs inside the pricing step)."""
        gpu = gpu_usd_per_hour(devices, prices)
        if self._pricer is None:
            return gpu_only(gpu, "no whole-node pricing configured")
        full_gpus = [device for device in devices if not device.is_mig]
        gpu_model = full_gpus[0].model if full_gpus else ""
        return self._pricer.parts(node, gpu, gpu_model, len(full_gpus))
