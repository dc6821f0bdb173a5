"""The ledger: monotonic money counters, fed by the cost engine, read by the metrics.

Counters only ever grow.  A container's series stay for `retention_seconds`
after its last increment (long enough to be scraped), then are dropped; the
per-workload and per-GPU counters are kept, so long windows survive pod churn
and the per-GPU identity `allocated + unallocated == cost` holds at every
scrape even after containers are gone.

The ledger is pure (no I/O): `to_state()` / `from_state()` give plain JSON-able
values that `gpucost.state` writes to disk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpucost.engine.split import DeviceCost
from gpucost.model import ContainerRef

__all__ = [
    "ContainerCounters",
    "ContainerKey",
    "GpuCounters",
    "Ledger",
    "LedgerSnapshot",
    "StateFormatError",
    "WorkloadCounters",
    "WorkloadKey",
]

STATE_FORMAT = "gpucost-ledger"
STATE_VERSION = 1


class StateFormatError(ValueError):
    """The state file is not a gpucost ledger of a version we can read."""


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


@dataclass
class Ledger:
    workload_label_names: tuple[str, ...]
    retention_seconds: float = 600.0
    gpus: dict[str, GpuCounters] = field(default_factory=dict)
    containers: dict[ContainerKey, ContainerCounters] = field(default_factory=dict)
    workloads: dict[WorkloadKey, WorkloadCounters] = field(default_factory=dict)

    def record(
        self,
        device_cost: DeviceCost,
        workload_values: Mapping[ContainerRef, tuple[str, ...]],
        now: float,
    ) -> None:
        """Add one tick's split of one device.  Missing workload values become ""."""
        empty = ("",) * len(self.workload_label_names)
        gpu = self.gpus.setdefault(device_cost.uuid, GpuCounters())
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

    def add_energy(self, uuid: str, joules: float) -> None:
        if joules > 0.0 and math.isfinite(joules):
            self.gpus.setdefault(uuid, GpuCounters()).energy_joules += joules

    def expire(self, now: float) -> int:
        """Drop container series not updated for the retention time; returns how many."""
        cutoff = now - self.retention_seconds
        stale = [key for key, counters in self.containers.items() if counters.last_update < cutoff]
        for key in stale:
            del self.containers[key]
        return len(stale)

    def snapshot(self) -> LedgerSnapshot:
        return LedgerSnapshot(
            gpus={k: GpuCounters(v.cost_usd, v.allocated_usd, v.unallocated_usd, v.energy_joules)
                  for k, v in self.gpus.items()},
            containers={k: ContainerCounters(v.active_usd, v.idle_usd, v.gpu_seconds, v.last_update)
                        for k, v in self.containers.items()},
            workloads={k: WorkloadCounters(v.active_usd, v.idle_usd) for k, v in self.workloads.items()},
        )

    # --- persistence (plain values; the file I/O lives in gpucost.state) -------

    def to_state(self, last_tick: float) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "last_tick": last_tick,
            "workload_label_names": list(self.workload_label_names),
            "gpus": {uuid: [c.cost_usd, c.allocated_usd, c.unallocated_usd, c.energy_joules]
                     for uuid, c in self.gpus.items()},
            "containers": [
                [k.container.namespace, k.container.pod, k.container.container, k.uuid, list(k.workload),
                 c.active_usd, c.idle_usd, c.gpu_seconds, c.last_update]
                for k, c in self.containers.items()
            ],
            "workloads": [[k.namespace, list(k.workload), c.active_usd, c.idle_usd]
                          for k, c in self.workloads.items()],
        }

    @classmethod
    def from_state(
        cls, state: object, workload_label_names: tuple[str, ...], retention_seconds: float
    ) -> tuple[Ledger, float]:
        """Rebuild a ledger; raises StateFormatError for anything that is not ours.

        Returns the ledger and the time of the last tick it had counted.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise StateFormatError("not a gpucost ledger state")
        if state.get("version") != STATE_VERSION:
            raise StateFormatError(f"unsupported ledger state version {state.get('version')!r}")
        saved_names = tuple(state.get("workload_label_names", ()))
        ledger = cls(workload_label_names, retention_seconds)
        try:
            last_tick = float(state["last_tick"])
            for uuid, values in dict(state["gpus"]).items():
                cost, allocated, unallocated, energy = (_finite(v) for v in values)
                ledger.gpus[str(uuid)] = GpuCounters(cost, allocated, unallocated, energy)
            for row in state["containers"]:
                ns, pod, container, uuid, workload, active, idle, seconds, last = row
                key = ContainerKey(
                    ContainerRef(str(ns), str(pod), str(container)),
                    str(uuid),
                    _remap_workload(workload, saved_names, workload_label_names),
                )
                counters = ledger.containers.setdefault(key, ContainerCounters())
                counters.active_usd += _finite(active)
                counters.idle_usd += _finite(idle)
                counters.gpu_seconds += _finite(seconds)
                counters.last_update = max(counters.last_update, _finite(last))
            for row in state["workloads"]:
                ns, workload, active, idle = row
                wkey = WorkloadKey(str(ns), _remap_workload(workload, saved_names, workload_label_names))
                totals = ledger.workloads.setdefault(wkey, WorkloadCounters())
                totals.active_usd += _finite(active)
                totals.idle_usd += _finite(idle)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFormatError(f"malformed ledger state: {exc}") from exc
        return ledger, last_tick


def _finite(value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number) or number < 0.0:
        raise ValueError(f"counter value {value!r} is not a finite non-negative number")
    return number


def _remap_workload(values: Iterable[object], saved: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Carry workload label values across a change of the configured label names."""
    by_name = dict(zip(saved, (str(v) for v in values), strict=False))
    return tuple(by_name.get(name, "") for name in wanted)
