"""The ledger: monotonic money counters, fed by the cost engine, read by the metrics.

Counters only ever grow.  A container's series stay for `retention_seconds`
after its last increment (long enough to be scraped), then are dropped; the
per-workload and per-GPU counters are kept, so long windows survive pod churn
and the per-GPU identity `allocated + unallocated == cost` holds at every
scrape even after containers are gone.  The whole-node counters by resource
(`gpucost.engine.node_ledger`) follow the same rules.

The ledger is pure (no I/O): `to_state()` / `from_state()` give plain JSON-able
values that `gpucost.state` writes to disk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpucost.engine.node_ledger import NodeLedger, NodeLedgerSnapshot
from gpucost.engine.node_split import ResourceCost
from gpucost.engine.split import DeviceCost
from gpucost.engine.state_fields import (
    ForeignStateError,
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
    "READABLE_VERSIONS",
    "STATE_VERSION",
    "ContainerCounters",
    "ContainerKey",
    "ForeignStateError",
    "GpuCounters",
    "Ledger",
    "LedgerSnapshot",
    "StateFormatError",
    "WorkloadCounters",
    "WorkloadKey",
]

STATE_FORMAT = "gpucost-ledger"
# Version 2 added the owner (node name, GPUs present) and each GPU's last-seen time;
# version 3 the whole-node counters (older files start them at 0).
STATE_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


@dataclass(frozen=True, slots=True, order=True)
class ContainerKey:
    container: ContainerRef
    uuid: str
    workload: tuple[str, ...]


@dataclass(frozen=True, slots=True, order=True)
class WorkloadKey:
    namespace: str
    workload: tuple[str, ...]


@dataclass(slots=True)
class GpuCounters:
    cost_usd: float = 0.0
    allocated_usd: float = 0.0
    unallocated_usd: float = 0.0
    energy_joules: float = 0.0
    # Wall time the GPU was last on this node; a gone GPU's series expire like a gone container's.
    last_seen: float = 0.0


@dataclass(slots=True)
class ContainerCounters:
    active_usd: float = 0.0
    idle_usd: float = 0.0
    gpu_seconds: float = 0.0
    last_update: float = 0.0


@dataclass(slots=True)
class WorkloadCounters:
    active_usd: float = 0.0
    idle_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """An immutable copy of every counter, taken between ticks."""

    gpus: Mapping[str, GpuCounters]
    containers: Mapping[ContainerKey, ContainerCounters]
    workloads: Mapping[WorkloadKey, WorkloadCounters]
    node: NodeLedgerSnapshot = field(default_factory=NodeLedgerSnapshot)


@dataclass
class Ledger:
    workload_label_names: tuple[str, ...]
    retention_seconds: float = 600.0
    gpus: dict[str, GpuCounters] = field(default_factory=dict)
    containers: dict[ContainerKey, ContainerCounters] = field(default_factory=dict)
    workloads: dict[WorkloadKey, WorkloadCounters] = field(default_factory=dict)
    # The GPUs on the node at the last look; None until someone looked (then no GPU is known to be gone).
    present: frozenset[str] | None = None
    node: NodeLedger = field(default_factory=NodeLedger)

    def record(
        self,
        device_cost: DeviceCost,
        workload_values: Mapping[ContainerRef, tuple[str, ...]],
        now: float,
    ) -> None:
        """Add one tick's split of one device.  Missing workload values become ""."""
        empty = ("",) * len(self.workload_label_names)
        gpu = self.gpus.setdefault(device_cost.uuid, GpuCounters())
        gpu.last_seen = max(gpu.last_seen, now)
        gpu.cost_usd += device_cost.cost_usd
        gpu.unallocated_usd += device_cost.unallocated_usd
        for holder in device_cost.holders:
            workload = workload_values.get(holder.container, empty)
            gpu.allocated_usd += holder.active_usd + holder.idle_usd
            key = ContainerKey(holder.container, device_cost.uuid, workload)
            counters = self.containers.get(key)
            if counters is None:
                counters = self.containers[key] = ContainerCounters()
            counters.active_usd += holder.active_usd
            counters.idle_usd += holder.idle_usd
            counters.gpu_seconds += holder.gpu_seconds
            counters.last_update = now
            wkey = WorkloadKey(holder.container.namespace, workload)
            totals = self.workloads.get(wkey)
            if totals is None:
                totals = self.workloads[wkey] = WorkloadCounters()
            totals.active_usd += holder.active_usd
            totals.idle_usd += holder.idle_usd

    def record_node(
        self, costs: Iterable[ResourceCost], workload_values: Mapping[ContainerRef, tuple[str, ...]], now: float
    ) -> None:
        """Add one tick's whole-node split (every resource, gpu included).  Missing workload values become ""."""
        self.node.record(costs, workload_values, ("",) * len(self.workload_label_names), now)

    def add_energy(self, uuid: str, joules: float) -> None:
        if joules > 0.0 and math.isfinite(joules):
            self.gpus.setdefault(uuid, GpuCounters()).energy_joules += joules

    def mark_present(self, uuids: Iterable[str], now: float) -> None:
        """The GPUs on the node now: they stay exported; any other GPU starts its retention countdown."""
        self.present = frozenset(uuids)
        for uuid in self.present:
            gpu = self.gpus.get(uuid)
            if gpu is not None:
                gpu.last_seen = max(gpu.last_seen, now)

    def expire(self, now: float) -> int:
        """Drop container series not updated, and gone GPUs not seen, for the retention time; returns how many."""
        cutoff = now - self.retention_seconds
        stale = [key for key, counters in self.containers.items() if counters.last_update < cutoff]
        for key in stale:
            del self.containers[key]
        gone: list[str] = []
        if self.present is not None:
            gone = [uuid for uuid, gpu in self.gpus.items() if uuid not in self.present and gpu.last_seen < cutoff]
        for uuid in gone:
            del self.gpus[uuid]
        return len(stale) + len(gone) + self.node.expire(cutoff)

    def snapshot(self) -> LedgerSnapshot:
        return LedgerSnapshot(
            gpus={k: GpuCounters(v.cost_usd, v.allocated_usd, v.unallocated_usd, v.energy_joules, v.last_seen)
                  for k, v in self.gpus.items()},
            containers={k: ContainerCounters(v.active_usd, v.idle_usd, v.gpu_seconds, v.last_update)
                        for k, v in self.containers.items()},
            workloads={k: WorkloadCounters(v.active_usd, v.idle_usd) for k, v in self.workloads.items()},
            node=self.node.snapshot(),
        )

    # --- persistence (plain values; the file I/O lives in gpucost.state) -------

    def to_state(self, last_tick: float, node_name: str = "") -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "node": node_name,
            "gpus_present": None if self.present is None else sorted(self.present),
            "last_tick": last_tick,
            "workload_label_names": list(self.workload_label_names),
            "gpus": {uuid: [c.cost_usd, c.allocated_usd, c.unallocated_usd, c.energy_joules, c.last_seen]
                     for uuid, c in self.gpus.items()},
            "containers": [
                [k.container.namespace, k.container.pod, k.container.container, k.uuid, list(k.workload),
                 c.active_usd, c.idle_usd, c.gpu_seconds, c.last_update]
                for k, c in self.containers.items()
            ],
            "workloads": [[k.namespace, list(k.workload), c.active_usd, c.idle_usd]
                          for k, c in self.workloads.items()],
            **self.node.to_state(),
        }

    @classmethod
    def from_state(
        cls,
        state: object,
        workload_label_names: tuple[str, ...],
        retention_seconds: float,
        node_name: str | None = None,
    ) -> tuple[Ledger, float]:
        """Rebuild a ledger; raises StateFormatError (and nothing else) for anything that is not ours.

        Every field is type-checked: the file may be anything (a crash, a bad disk,
        a hand edit), and one exception escaping here would crash every start.
        With `node_name`, a checkpoint written on another node raises ForeignStateError.
        Returns the ledger and the time of the last tick it had counted.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise StateFormatError("not a gpucost ledger state")
        version = state.get("version")
        if type(version) is not int or version not in READABLE_VERSIONS:
            raise StateFormatError(f"unsupported ledger state version {short(version)}")
        saved_names = strings(field_of(state, "workload_label_names"), "workload_label_names")
        last_tick = number(field_of(state, "last_tick"), "last_tick")
        if version >= 2:
            saved_node = field_of(state, "node")
            if not isinstance(saved_node, str):
                raise StateFormatError(f"node: not a string: {short(saved_node)}")
            if node_name is not None and saved_node != node_name:
                raise ForeignStateError(f"written on node {saved_node!r}, this is node {node_name!r}")
        ledger = cls(workload_label_names, retention_seconds)
        ledger._restore_gpus(state, version, last_tick)
        ledger._restore_containers(list_of(field_of(state, "containers"), "containers"), saved_names)
        ledger._restore_workloads(list_of(field_of(state, "workloads"), "workloads"), saved_names)
        if version >= 3:
            ledger.node.restore(state, saved_names, workload_label_names)
        return ledger, last_tick

    def _restore_gpus(self, state: dict[str, Any], version: int, last_tick: float) -> None:
        gpus = field_of(state, "gpus")
        if not isinstance(gpus, dict):
            raise StateFormatError(f"gpus: not an object: {short(gpus)}")
        # Version 1 did not record when a GPU was last seen: count it as seen at the last tick.
        width = 5 if version >= 2 else 4
        for uuid, values in gpus.items():
            counters = numbers(values, width, f"gpus.{uuid}")
            last_seen = counters[4] if version >= 2 else last_tick
            self.gpus[uuid] = GpuCounters(counters[0], counters[1], counters[2], counters[3], last_seen)
        if version >= 2:
            present = field_of(state, "gpus_present")
            self.present = None if present is None else frozenset(strings(present, "gpus_present"))

    def _restore_containers(self, rows: list[Any], saved_names: tuple[str, ...]) -> None:
        for index, row in enumerate(rows):
            where = f"containers[{index}]"
            cells = list_of(row, where, length=9)
            ns, pod, container, uuid = (string(cell, where) for cell in cells[:4])
            workload = strings(cells[4], where, length=len(saved_names))
            active, idle, seconds, last = (number(cell, where) for cell in cells[5:])
            key = ContainerKey(ContainerRef(ns, pod, container), uuid,
                               remap_workload(workload, saved_names, self.workload_label_names))
            counters = self.containers.setdefault(key, ContainerCounters())
            counters.active_usd += active
            counters.idle_usd += idle
            counters.gpu_seconds += seconds
            counters.last_update = max(counters.last_update, last)

    def _restore_workloads(self, rows: list[Any], saved_names: tuple[str, ...]) -> None:
        for index, row in enumerate(rows):
            where = f"workloads[{index}]"
            cells = list_of(row, where, length=4)
            ns = string(cells[0], where)
            workload = strings(cells[1], where, length=len(saved_names))
            active, idle = number(cells[2], where), number(cells[3], where)
            wkey = WorkloadKey(ns, remap_workload(workload, saved_names, self.workload_label_names))
            totals = self.workloads.setdefault(wkey, WorkloadCounters())
            totals.active_usd += active
            totals.idle_usd += idle
