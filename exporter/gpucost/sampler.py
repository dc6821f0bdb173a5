"""The sampling loop: gather every source once per tick, run the engine, publish a snapshot.

Runs in a background thread.  Each source step goes through the health board
under its collector name from `gpucost.sources.registry`, so a failing source
degrades only itself.  Scrapes read `snapshot()` and never wait for a tick.
The steps, in order: the GPUs (nvml), the allocations, the metadata, the
process owners (procfs: the sampled pids' pods, turned into busy fractions per
pod so the engine gets plain numbers), the node's CPU/memory/storage claims
(`gpucost.node_cost`), the prices (the GPUs', then the node's in parts).

Each tick's inputs wait in a journal (`gpucost.booking`) until they have settled; the checkpoint
records the end of the last booked tick, so a restart charges the unbooked rest as its first gap
(no tick counted twice or lost), and `stop()` books the journal before the final checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from gpucost import __version__
from gpucost.attribution import (
    AllocationProvider,
    AllocationView,
    MetadataProvider,
    NodeResourceProvider,
    PidOwners,
    pod_busy_by_device,
    truncation_counts,
)
from gpucost.booking import Journal, JournalTick, LabelMapper
from gpucost.engine.ledger import Ledger
from gpucost.engine.tick import sharing_mode
from gpucost.errors import SourceUnavailable
from gpucost.health import HealthBoard
from gpucost.model import GpuDevice, GpuSample, NodeInfo, PriceQuote
from gpucost.node_cost import UNPRICED_NODE, NodeCostStep, NodePricer, node_tick_inputs
from gpucost.pricing.node_parts import NodePriceParts
from gpucost.snapshot import DeviceView, ExporterSnapshot, as_of_timestamp, pod_owners
from gpucost.sources.registry import NVML, PRICING, SOURCES, STATE
from gpucost.state import StateFile

__all__ = ["GpuSource", "LabelMapper", "NodePricer", "PriceSource", "Sampler", "SamplerSettings"]

log = logging.getLogger("gpucost.sampler")

UNPRICED = PriceQuote(0.0, "unpriced", detail="no price resolved yet")
# Health entries that never hold /readyz back: steps whose failure leaves the metrics right (the checkpoint
# write) and sources whose absence only coarsens one part (CPU/memory usage: requests are still charged).
NOT_GATING = frozenset(source.collector for source in SOURCES if not source.feeds_metrics or not source.gates_readiness)


class GpuSource(Protocol):
    name: str

    def start(self) -> None: ...

    def close(self) -> None: ...

    def now(self) -> float: ...

    def devices(self) -> Sequence[GpuDevice]: ...

    def sample(self, device: GpuDevice) -> GpuSample: ...


class PriceSource(Protocol):
    def quote(self, node: NodeInfo, device: GpuDevice, gpus_on_node: int) -> PriceQuote: ...

    def reload_overrides_if_changed(self) -> bool: ...

    @property
    def catalog_as_of(self) -> str: ...

    @property
    def catalog_source(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SamplerSettings:
    workload_label_names: tuple[str, ...]
    sample_interval_seconds: float = 1.0
    checkpoint_interval_seconds: float = 30.0
    retention_seconds: float = 600.0
    max_gap_seconds: float = 300.0
    device_refresh_seconds: float = 60.0
    overrides_check_seconds: float = 5.0
    init_backoff_max_seconds: float = 30.0


class Sampler:
    def __init__(
        self,
        settings: SamplerSettings,
        gpus: GpuSource,
        allocations: AllocationProvider,
        metadata: MetadataProvider,
        prices: PriceSource,
        labels: LabelMapper,
        state_file: StateFile | None = None,
        wall_clock: Callable[[], float] = time.time,
        pid_owners: PidOwners | None = None,
        node_resources: NodeResourceProvider | None = None,
        node_prices: NodePricer | None = None,
    ) -> None:
        self.settings = settings
        self._gpus = gpus
        self._allocations = allocations
        self._metadata = metadata
        self._pid_owners = pid_owners
        self._prices = prices
        self._state_file = state_file
        self._wall_clock = wall_clock
        self._health = HealthBoard()
        self._node_cost = NodeCostStep(node_resources, node_prices, self._health)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ledger = Ledger(settings.workload_label_names, settings.retention_seconds)
        self._last_tick: float | None = None
        self._restored_tick: float | None = None
        self._restore()
        # Shares the ledger and the lock: the restored ledger, never replaced after this.
        self._journal = Journal(self._ledger, self._lock, allocations, metadata, labels, self._restored_tick)
        self._devices: tuple[GpuDevice, ...] = ()
        self._devices_at = -1e18
        self._overrides_at = -1e18
        self._checkpoint_at = 0.0
        self._energy_seen: dict[str, float] = {}
        self._gpu_started = False
        self._init_backoff = 1.0
        self._next_init = 0.0
        self._version = 0
        self._snapshot = ExporterSnapshot(0, settings.workload_label_names, build_version=__version__)

    # --- lifecycle ---------------------------------------------------------------

    def _restore(self) -> None:
        if self._state_file is None:
            return
        restored = self._state_file.load(self.settings.workload_label_names, self.settings.retention_seconds)
        if restored is not None:
            self._ledger, self._restored_tick = restored
            log.info("restored counters from %s (last tick %s)", self._state_file.path,
                     datetime.fromtimestamp(self._restored_tick, tz=UTC).isoformat())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gpucost-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and write a final checkpoint (SIGTERM path)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
        self.checkpoint()
        if self._state_file is not None:
            self._state_file.release()
        if self._gpu_started:
            self._gpus.close()

    def _run(self) -> None:
        interval = self.settings.sample_interval_seconds
        next_tick = time.monotonic()
        while not self._stop.is_set():
            self.tick()
            next_tick += interval
            delay = next_tick - time.monotonic()
            if delay < 0:  # fell behind (slow source): skip missed ticks rather than burst
                next_tick = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    # --- readiness -------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._gpu_started and self._version > 0

    def readiness_problems(self) -> list[str]:
        """Why the exporter should not be in the Service yet: a source that never answered since start.

        Once a source has answered, its later faults show in the health metrics
        only: one flaky source must not pull every node's exporter out of the Service.
        """
        problems = []
        if not self._gpu_started:
            problems.append(f"gpu backend not started: {self._health.last_error(NVML.collector) or 'starting'}")
        if self._version == 0:
            problems.append("no sampling tick completed yet")
        for collector, error in self._health.never_succeeded().items():
            if collector not in NOT_GATING and not (collector == NVML.collector and not self._gpu_started):
                problems.append(f"{collector}: never answered: {error}")
        return problems

    def snapshot(self) -> ExporterSnapshot:
        return self._snapshot

    # --- one tick --------------------------------------------------------------

    def _ensure_gpu_started(self) -> bool:
        if self._gpu_started:
            return True
        now = time.monotonic()
        if now < self._next_init:
            return False

        def start() -> bool:
            self._gpus.start()
            return True

        self._gpu_started = self._health.run(NVML.collector, start, False)
        if not self._gpu_started:
            self._next_init = now + self._init_backoff
            self._init_backoff = min(self._init_backoff * 2, self.settings.init_backoff_max_seconds)
        else:
            self._init_backoff = 1.0
        return self._gpu_started

    def _sample_devices(self, clock: float) -> dict[str, GpuSample]:
        if clock - self._devices_at >= self.settings.device_refresh_seconds or not self._devices:
            self._devices = tuple(self._gpus.devices())
            self._devices_at = clock
        samples = {device.uuid: self._gpus.sample(device) for device in self._devices}
        unhealthy = [uuid for uuid, s in samples.items() if not s.healthy]
        if unhealthy and len(unhealthy) == len(samples):
            raise SourceUnavailable(f"every device failed to sample: {samples[unhealthy[0]].error}")
        return samples

    def _quote_prices(self, node: NodeInfo, clock: float) -> tuple[dict[str, PriceQuote], NodePriceParts]:
        if clock - self._overrides_at >= self.settings.overrides_check_seconds:
            self._overrides_at = clock
            self._prices.reload_overrides_if_changed()
        full_gpus = sum(1 for d in self._devices if not d.is_mig)
        prices = {d.uuid: self._prices.quote(node, d, full_gpus) for d in self._devices}
        return prices, self._node_cost.quote(node, self._devices, prices)

    def _resolve_busy(self, samples: Mapping[str, GpuSample]) -> Mapping[str, Mapping[str, float]]:
        """The procfs step: each device's per-process utilization as busy fractions per pod, looked up now."""
        if self._pid_owners is None:
            return {}
        owners = self._pid_owners
        pids = {pid for sample in samples.values() for pid in sample.process_utilization}
        no_owners: Mapping[int, str] = {}
        # On failure nothing is measured: the engine splits busy time by share, as without per-process data.
        resolved = self._health.run(owners.name, lambda: owners.pod_uids(pids), no_owners)
        return {} if resolved is no_owners else pod_busy_by_device(samples, resolved)

    def tick(self) -> None:
        if not self._ensure_gpu_started():
            self._publish({}, {}, AllocationView(), None)
            return
        clock = self._gpus.now()
        no_samples: dict[str, GpuSample] = {}
        samples = self._health.run(NVML.collector, lambda: self._sample_devices(clock), no_samples)
        devices = self._devices
        self._health.run(self._allocations.name, lambda: self._allocations.refresh(devices, clock), None)
        view = self._allocations.current()
        self._journal.metadata_current = self._health.run(self._metadata.name, lambda: self._refresh_metadata(clock),
                                                          False)
        busy_by_pod_uid = self._resolve_busy(samples)
        claims = self._node_cost.refresh(clock)
        node = self._metadata.node()
        no_prices: dict[str, PriceQuote] = {}
        prices, parts = self._health.run(PRICING.collector, lambda: self._quote_prices(node, clock),
                                         (no_prices, UNPRICED_NODE))
        seconds = self._elapsed(clock)
        if seconds > 0:
            self._journal.add(JournalTick(clock - seconds, clock, devices, samples, prices, view.allocations,
                                          busy_by_pod_uid, self._journal.workload_values(view),
                                          node_tick_inputs(parts, claims)))
        # Retention is about scrapes, which happen in wall time, not on a compressed simulated clock.
        wall = self._wall_clock()
        self._journal.book_settled(clock, wall)
        with self._lock:
            self._count_energy(samples, seconds)
            if samples is not no_samples:  # only a device list that NVML just gave says which GPUs are gone
                self._ledger.mark_present((d.uuid for d in devices), wall)
            self._ledger.expire(wall)
        self._last_tick = clock
        self._publish(samples, prices, view, parts)
        if clock - self._checkpoint_at >= self.settings.checkpoint_interval_seconds:
            self.checkpoint()

    def _refresh_metadata(self, clock: float) -> bool:
        self._metadata.refresh(clock)
        return True

    def flush(self) -> None:
        """Book every journaled tick with what is known now (on stop, before the final checkpoint)."""
        if not self._journal.book_all(self._wall_clock()):
            return
        with self._lock:
            ledger = self._ledger.snapshot()
        self._version += 1
        self._snapshot = replace(self._snapshot, version=self._version, ledger=ledger,
                                 allocation_edges=dict(self._journal.edges),
                                 booked_until_timestamp=self._journal.booked_until or 0.0)

    def _elapsed(self, clock: float) -> float:
        if self._last_tick is not None:
            return max(0.0, clock - self._last_tick)
        if self._restored_tick is not None:
            # The GPUs cost money while the exporter restarted: charge the gap (bounded)
            # with what we see now, so totals still match elapsed time.
            gap = clock - self._restored_tick
            if 0 < gap <= self.settings.max_gap_seconds:
                return gap
            if gap > self.settings.max_gap_seconds:
                log.warning("state file is %.0fs old, more than max gap %.0fs: the gap is not charged",
                            gap, self.settings.max_gap_seconds)
        return 0.0

    def _count_energy(self, samples: Mapping[str, GpuSample], seconds: float) -> None:
        for uuid, sample in samples.items():
            if not sample.healthy:
                continue
            if sample.energy_joules is not None:
                previous = self._energy_seen.get(uuid)
                self._energy_seen[uuid] = sample.energy_joules
                if previous is not None:
                    # The driver's counter restarts when the driver reloads: count from zero then.
                    delta = sample.energy_joules - previous
                    self._ledger.add_energy(uuid, delta if delta >= 0 else sample.energy_joules)
            elif sample.power_watts is not None:
                self._ledger.add_energy(uuid, sample.power_watts * seconds)

    def _publish(
        self,
        samples: Mapping[str, GpuSample],
        prices: Mapping[str, PriceQuote],
        view: AllocationView,
        node_price: NodePriceParts | None,
    ) -> None:
        parents = {d.parent_uuid for d in self._devices if d.is_mig}
        views = tuple(
            DeviceView(
                device=d,
                sample=samples.get(d.uuid),
                price=prices.get(d.uuid, UNPRICED),
                sharing_mode=view.sharing_modes.get(d.uuid)
                or sharing_mode(d, [a for a in view.allocations if a.uuid == d.uuid], d.uuid in parents),
            )
            for d in self._devices
        )
        owners = pod_owners(view.allocations, self._metadata.pod)
        with self._lock:
            ledger = self._ledger.snapshot()
        self._version += 1
        self._snapshot = ExporterSnapshot(
            version=self._version,
            workload_label_names=self.settings.workload_label_names,
            devices=views,
            ledger=ledger,
            health=self._health.snapshot(),
            last_sample_timestamp=self._wall_clock(),
            unmapped_devices=dict(view.unmapped),
            owners=owners,
            catalog_as_of=self._prices.catalog_as_of,
            catalog_source=self._prices.catalog_source,
            catalog_as_of_timestamp=as_of_timestamp(self._prices.catalog_as_of),
            build_version=__version__,
            source_truncated=truncation_counts(self._allocations, self._metadata, self._node_cost.resources),
            allocation_edges=dict(self._journal.edges),
            booked_until_timestamp=self._journal.booked_until or 0.0,
            node_price=node_price,
        )

    def checkpoint(self) -> None:
        """Save the ledger with the end of its last booked tick: a restart charges the journaled rest."""
        if self._state_file is None:
            return
        with self._lock:
            booked_until = self._journal.booked_until
            if booked_until is None:
                return
            try:
                self._state_file.save(self._ledger, booked_until)
            except OSError as exc:
                # The text is stable across attempts (no temp file name): one log line per change, not per tick.
                self._health.record(STATE.collector, False, 0.0, str(exc))
                return
        self._health.record(STATE.collector, True, 0.0)
        self._checkpoint_at = self._last_tick if self._last_tick is not None else booked_until
