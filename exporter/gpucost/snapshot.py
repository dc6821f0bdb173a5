"""The immutable picture of one completed sampling tick, which a scrape renders.

The sampler builds one of these after every tick; the metrics layer reads it
and nothing else, so a scrape never touches NVML, the kubelet or the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gpucost.engine.edges import EDGE_SOURCES
from gpucost.engine.ledger import LedgerSnapshot
from gpucost.model import DeviceAllocation, GpuDevice, GpuSample, PodMeta, PriceQuote, SharingMode
from gpucost.pricing.node_parts import NodePriceParts
from gpucost.truncation import zero_counts

__all__ = ["CollectorHealth", "DeviceView", "ExporterSnapshot", "PodOwner", "as_of_timestamp", "pod_owners"]


def as_of_timestamp(as_of: str) -> float:
    """Unix time of a catalog's `as_of` date (UTC unless it says otherwise); 0 when it is not a date."""
    try:
        parsed = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class DeviceView:
    device: GpuDevice
    sample: GpuSample | None
    price: PriceQuote
    sharing_mode: SharingMode


@dataclass(frozen=True, slots=True)
class CollectorHealth:
    collector: str
    success: bool
    duration_seconds: float


@dataclass(frozen=True, slots=True)
class PodOwner:
    namespace: str
    pod: str
    kind: str
    name: str


def pod_owners(
    allocations: Iterable[DeviceAllocation], pod_meta: Callable[[str, str], PodMeta | None]
) -> tuple[PodOwner, ...]:
    """The owner of every pod holding a device, once per pod, sorted; pods without a known owner are left out."""
    seen: dict[tuple[str, str], PodOwner] = {}
    for allocation in allocations:
        key = (allocation.container.namespace, allocation.container.pod)
        if key in seen:
            continue
        pod = pod_meta(*key)
        if pod is not None and pod.owner_kind:
            seen[key] = PodOwner(key[0], key[1], pod.owner_kind, pod.owner_name)
    return tuple(seen[k] for k in sorted(seen))


@dataclass(frozen=True, slots=True)
class ExporterSnapshot:
    version: int
    workload_label_names: tuple[str, ...]
    devices: tuple[DeviceView, ...] = ()
    ledger: LedgerSnapshot = field(default_factory=lambda: LedgerSnapshot({}, {}, {}))
    health: tuple[CollectorHealth, ...] = ()
    last_sample_timestamp: float = 0.0
    # End of the last tick booked into the ledger, on the sampler's clock; 0 before the first.
    booked_until_timestamp: float = 0.0
    unmapped_devices: Mapping[str, int] = field(default_factory=dict)
    owners: tuple[PodOwner, ...] = ()
    catalog_as_of: str = ""
    catalog_source: str = ""
    catalog_as_of_timestamp: float = 0.0
    build_version: str = ""
    # (source, reason) -> how often the sources cut oversized data; every known cut, from zero.
    source_truncated: Mapping[tuple[str, str], int] = field(default_factory=zero_counts)
    # Allocation start and end edges booked so far, by who decided them (apiserver, kubelet_poll).
    allocation_edges: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(EDGE_SOURCES, 0))
    # The node's price in parts as last quoted; None before the first quote.
    node_price: NodePriceParts | None = None
