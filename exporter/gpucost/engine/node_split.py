"""Split one node resource's cost (CPU or memory) for one tick between containers and unallocated.

Pure, like `gpucost.engine.split`: plain values in, plain values out.

For a resource whose part of the node price is P $/h, over a tick of T
seconds, the cost is C = P*T/3600.  A is the node's allocatable amount of the
resource (cores, bytes): the price is spread over what pods can be given, so
the kubelet's and the system's reservations are carried by the pods rather
than left over.  Each container claims

    claim_i = max(request_i, usage_i)

so a container pays for what it reserved even when it idles, and for what it
used beyond its request (burst into capacity no one else reserved).

- Sum(claim) <= A: container i pays C * claim_i / A, and the unclaimed rest
  C * (A - Sum(claim)) / A is the node's unallocated cost.
- Sum(claim) > A (usage above requests on a busy node: over-commit): the claims
  are scaled down proportionally, exactly as `split.py` scales an
  over-subscribed GPU: container i pays C * claim_i / Sum(claim) and nothing is
  unallocated.  The containers together never pay more than the node.
- A unknown (0): nothing says how much of the node a claim is, so all of C is
  unallocated rather than guessed.

The parts always add up to C (conservation); tests/unit/test_node_split.py
proves it and the rules above with hypothesis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gpucost.model import ContainerRef

__all__ = [
    "SECONDS_PER_HOUR",
    "ContainerClaim",
    "ContainerResourceCost",
    "ResourceCost",
    "ResourceTick",
    "split_resource_cost",
]

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class ContainerClaim:
    """A container's request and measured usage of the resource, in the resource's unit.

    `usage` is the average over the tick for CPU (cores) and the working set
    for memory (bytes); None when the kubelet did not report it.
    """

    container: ContainerRef
    request: float = 0.0
    usage: float | None = None

    @property
    def claimed(self) -> float:
        return max(_amount(self.request), _amount(self.usage))


@dataclass(frozen=True, slots=True)
class ResourceTick:
    resource: str
    price_per_hour_usd: float
    seconds: float
    allocatable: float
    claims: Sequence[ContainerClaim] = ()


@dataclass(frozen=True, slots=True)
class ContainerResourceCost:
    container: ContainerRef
    cost_usd: float
    claimed: float


@dataclass(frozen=True, slots=True)
class ResourceCost:
    resource: str
    cost_usd: float
    unallocated_usd: float
    containers: tuple[ContainerResourceCost, ...]

    @property
    def allocated_usd(self) -> float:
        return math.fsum(container.cost_usd for container in self.containers)


def _amount(value: float | None) -> float:
    """A request or usage as a non-negative finite number; unknown, NaN or negative count as nothing."""
    if value is None or not math.isfinite(value) or value < 0.0:
        return 0.0
    return value


def _merge_claims(claims: Sequence[ContainerClaim]) -> list[tuple[ContainerRef, float]]:
    """One claim per container, in container order: a container listed twice claims both amounts."""
    merged: dict[ContainerRef, float] = {}
    for claim in claims:
        merged[claim.container] = merged.get(claim.container, 0.0) + claim.claimed
    return sorted(merged.items())


def split_resource_cost(tick: ResourceTick) -> ResourceCost:
    """Split the tick's cost of one resource; containers + unallocated add up to the resource's cost."""
    seconds = _amount(tick.seconds)
    cost = _amount(tick.price_per_hour_usd) * seconds / SECONDS_PER_HOUR
    allocatable = _amount(tick.allocatable)
    claims = [(container, claimed) for container, claimed in _merge_claims(tick.claims) if claimed > 0.0]
    if not claims or allocatable == 0.0 or cost == 0.0:
        charged = tuple(ContainerResourceCost(container, 0.0, claimed) for container, claimed in claims)
        return ResourceCost(tick.resource, cost, cost, charged)
    claimed_total = math.fsum(claimed for _, claimed in claims)
    # Over-commit: the claims together are the whole node, never more.
    denominator = max(claimed_total, allocatable)
    charged = tuple(
        ContainerResourceCost(container, cost * (claimed / denominator), claimed) for container, claimed in claims
    )
    # Computed as the remainder so the parts add up to `cost`; on a fully claimed node it is rounding only.
    unallocated = max(cost - math.fsum(item.cost_usd for item in charged), 0.0)
    return ResourceCost(tick.resource, cost, unallocated, charged)
