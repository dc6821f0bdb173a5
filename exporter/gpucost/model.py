"""Plain typed values that flow from the sources into the cost engine.

Sources (NVML, simulated GPUs, kubelet pod-resources, API server, price book)
turn the outside world into these frozen dataclasses; the engine takes them and
returns plain values.  Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "NODE_RESOURCES",
    "PRICING_KINDS",
    "SHARING_MODES",
    "ContainerRef",
    "ContainerResources",
    "DeviceAllocation",
    "GpuDevice",
    "GpuSample",
    "NodeInfo",
    "NodeResourceView",
    "PodMeta",
    "PriceQuote",
    "PricingKind",
    "SharingMode",
]

PricingKind = Literal["on_demand", "spot", "commitment", "on_prem", "unpriced"]
PRICING_KINDS: tuple[PricingKind, ...] = ("on_demand", "spot", "commitment", "on_prem", "unpriced")

# The node resources besides GPUs that whole-node cost splits (docs/node-cost.md), in `resource` label
# order after "gpu".  Amounts: cpu in cores, memory and storage in bytes.
NODE_RESOURCES: tuple[str, ...] = ("cpu", "memory", "storage")

SharingMode = Literal["exclusive", "time_slicing", "mps", "mig", "none"]
SHARING_MODES: tuple[SharingMode, ...] = ("exclusive", "time_slicing", "mps", "mig", "none")


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One device NVML can see: a full GPU or a MIG slice of one.

    `uuid` is NVML's (`GPU-...` or `MIG-...`); `index` is the `gpu` label
    (`"0"`, or `"0/mig3"` for a slice: parent index and GPU-instance id).
    `model` is NVML's product name as reported (`NVIDIA A100-SXM4-80GB`);
    the price book normalises it.  For a MIG slice `parent_uuid` and
    `mig_profile` (`"3g.40gb"`) are set and `mig_slices`/`parent_slices` give
    its compute fraction of the parent (3 of 7).
    """

    uuid: str
    index: str
    model: str
    memory_total_bytes: int = 0
    minor_number: int | None = None
    parent_uuid: str = ""
    mig_profile: str = ""
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    mig_slices: int = 0
    parent_slices: int = 0

    @property
    def is_mig(self) -> bool:
        return bool(self.parent_uuid)

    @property
    def price_fraction(self) -> float:
        """Share of the parent GPU's price this device carries (1.0 for a full GPU)."""
        if not self.is_mig or self.parent_slices <= 0:
            return 1.0
        return self.mig_slices / self.parent_slices


@dataclass(frozen=True, slots=True)
class GpuSample:
    """What NVML said about one device over the last sampling interval.

    `utilization` is the busy fraction (0..1) averaged over the interval, or
    None when the device could not report it.  `process_utilization` maps a
    host pid to its busy fraction (0..1) of the device when per-process
    accounting is supported; it is empty otherwise.  `energy_joules` is the
    driver's cumulative counter (it resets when the driver reloads).
    """

    uuid: str
    timestamp: float
    utilization: float | None
    memory_used_bytes: int = 0
    memory_total_bytes: int = 0
    power_watts: float | None = None
    energy_joules: float | None = None
    process_utilization: Mapping[int, float] = field(default_factory=dict)
    pids: frozenset[int] = frozenset()
    healthy: bool = True
    error: str = ""


@dataclass(frozen=True, slots=True, order=True)
class ContainerRef:
    """The pod join labels, exactly `namespace`, `pod`, `container`."""

    namespace: str
    pod: str
    container: str


@dataclass(frozen=True, slots=True)
class DeviceAllocation:
    """A container holds `share` of device `uuid` (1.0 exclusive, 1/N for one of N replicas).

    `pod_uid` lets per-process accounting match host pids (through their
    cgroup) to the container's pod.
    """

    uuid: str
    container: ContainerRef
    share: float = 1.0
    pod_uid: str = ""
    resource: str = "nvidia.com/gpu"


@dataclass(frozen=True, slots=True)
class PodMeta:
    """Labels, annotations, owner and lifetime of one pod, as the API server reported them.

    The lifetime is in unix seconds, None when the status does not say:
    `started_at` is the earliest container start (init containers included),
    `finished_at` the latest container end once every container has ended, and
    `deleted_at` the pod's `deletionTimestamp` (the moment its grace period ends).
    `container_requests` maps each container's name to its `resources.requests`
    as `NODE_RESOURCES` amounts (cpu in cores, memory and storage in bytes; a
    missing key is no request): the app containers and native sidecars (init
    containers with `restartPolicy: Always`), not the init containers that end
    before the pod starts.
    """

    namespace: str
    pod: str
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    owner_kind: str = ""
    owner_name: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    deleted_at: float | None = None
    container_requests: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What decides a node's price (its labels, as the API server or config gives them), and its size.

    `allocatable` is the node's `status.allocatable` as `NODE_RESOURCES` amounts
    (cpu in cores, memory and storage in bytes); a missing key is unknown.
    """

    name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    allocatable: Mapping[str, float] = field(default_factory=dict)

    @property
    def instance_type(self) -> str:
        return self.labels.get("node.kubernetes.io/instance-type", "")

    @property
    def region(self) -> str:
        return self.labels.get("topology.kubernetes.io/region", "")


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """The resolved hourly price of one device and where it came from.

    `pricing == "unpriced"` means the price book could not resolve a price;
    its `price_per_hour_usd` is 0 and the metrics say so explicitly.
    """

    price_per_hour_usd: float
    pricing: PricingKind
    source: str = ""
    as_of: str = ""
    detail: str = ""

    @property
    def is_priced(self) -> bool:
        return self.pricing != "unpriced"


@dataclass(frozen=True, slots=True)
class ContainerResources:
    """One container's requests and measured usage of the node's CPU, memory and local storage.

    Keys are `NODE_RESOURCES` names; cpu in cores, memory and storage in bytes.
    `requests` come from the pod spec (`resources.requests`: cpu, memory,
    ephemeral-storage); `usage` from the kubelet (cpu: average cores since the
    last reading, memory: working set).  A missing key is unknown, not zero.
    """

    container: ContainerRef
    pod_uid: str = ""
    requests: Mapping[str, float] = field(default_factory=dict)
    usage: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeResourceView:
    """The node's allocatable CPU/memory/storage and the containers that claim them, at one moment.

    `allocatable` missing a resource (or 0) means unknown: that resource's whole
    cost is then unallocated rather than guessed.  `containers` lists every
    container of every pod bound to the node that has not finished.
    """

    allocatable: Mapping[str, float] = field(default_factory=dict)
    containers: tuple[ContainerResources, ...] = ()
