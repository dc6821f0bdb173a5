"""Flatten a snapshot into (metric spec, [(label values, value)]) rows.

Both the fast text renderer and the prometheus_client collector read these
rows, so the two can never disagree on names, labels or values.
"""

from __future__ import annotations

from collections.abc import Iterator

from gpucost.engine.node_tick import NODE_COST_RESOURCES
from gpucost.metrics import names
from gpucost.metrics.names import MetricSpec
from gpucost.snapshot import ExporterSnapshot

__all__ = ["Row", "Series", "snapshot_series"]

Row = tuple[tuple[str, ...], float]
Series = tuple[MetricSpec, list[Row]]


def _device_series(snapshot: ExporterSnapshot) -> Iterator[Series]:
    info: list[Row] = []
    price: list[Row] = []
    utilization: list[Row] = []
    memory_used: list[Row] = []
    memory_total: list[Row] = []
    power: list[Row] = []
    healthy: list[Row] = []
    sharing: list[Row] = []
    for view in snapshot.devices:
        device, sample = view.device, view.sample
        uuid = device.uuid
        info.append(((uuid, device.index, device.model, device.parent_uuid, device.mig_profile), 1.0))
        price.append(((uuid, view.price.pricing), view.price.price_per_hour_usd))
        sharing.append(((uuid, view.sharing_mode), 1.0))
        healthy.append(((uuid,), 1.0 if sample is not None and sample.healthy else 0.0))
        if sample is None or not sample.healthy:
            continue
        if sample.utilization is not None:
            utilization.append(((uuid,), sample.utilization))
        memory_used.append(((uuid,), float(sample.memory_used_bytes)))
        memory_total.append(((uuid,), float(sample.memory_total_bytes or device.memory_total_bytes)))
        if sample.power_watts is not None:
            power.append(((uuid,), sample.power_watts))
    yield names.GPU_INFO, info
    yield names.GPU_PRICE, price
    yield names.GPU_UTILIZATION, utilization
    yield names.GPU_MEMORY_USED, memory_used
    yield names.GPU_MEMORY_TOTAL, memory_total
    yield names.GPU_POWER, power
    yield names.GPU_HEALTHY, healthy
    yield names.GPU_SHARING, sharing


def _ledger_series(snapshot: ExporterSnapshot) -> Iterator[Series]:
    ledger = snapshot.ledger
    gpus = sorted(ledger.gpus.items())
    # NVML reports no energy for MIG slices (the board's energy is the parent's): no flat-zero series.
    slices = {view.device.uuid for view in snapshot.devices if view.device.is_mig}
    yield names.GPU_ENERGY, [((uuid,), c.energy_joules) for uuid, c in gpus if uuid not in slices]
    yield names.GPU_COST, [((uuid,), c.cost_usd) for uuid, c in gpus]
    yield names.GPU_ALLOCATED_COST, [((uuid,), c.allocated_usd) for uuid, c in gpus]
    yield names.GPU_UNALLOCATED_COST, [((uuid,), c.unallocated_usd) for uuid, c in gpus]
    cost_rows: list[Row] = []
    seconds_rows: list[Row] = []
    for key, counters in sorted(ledger.containers.items()):
        ref = key.container
        base = (ref.namespace, ref.pod, ref.container, key.uuid)
        cost_rows.append(((*base, "active", *key.workload), counters.active_usd))
        cost_rows.append(((*base, "idle", *key.workload), counters.idle_usd))
        seconds_rows.append(((*base, *key.workload), counters.gpu_seconds))
    yield names.CONTAINER_COST, cost_rows
    yield names.CONTAINER_SECONDS, seconds_rows
    workload_rows: list[Row] = []
    for wkey, totals in sorted(ledger.workloads.items()):
        workload_rows.append(((wkey.namespace, "active", *wkey.workload), totals.active_usd))
        workload_rows.append(((wkey.namespace, "idle", *wkey.workload), totals.idle_usd))
    yield names.WORKLOAD_COST, workload_rows


def _node_cost_series(snapshot: ExporterSnapshot) -> Iterator[Series]:
    node = snapshot.ledger.node
    yield names.CONTAINER_RESOURCE_COST, [
        ((key.container.namespace, key.container.pod, key.container.container, key.resource, *key.workload),
         counters.cost_usd)
        for key, counters in sorted(node.containers.items())
    ]
    yield names.WORKLOAD_RESOURCE_COST, [((key.namespace, key.resource, *key.workload), cost)
                                         for key, cost in sorted(node.workloads.items())]
    booked = [(resource, node.resources[resource]) for resource in NODE_COST_RESOURCES if resource in node.resources]
    yield names.NODE_RESOURCE_COST, [((resource,), counters.cost_usd) for resource, counters in booked]
    yield names.NODE_UNALLOCATED_COST, [((resource,), counters.unallocated_usd) for resource, counters in booked]
    price = snapshot.node_price
    # Every resource, zero parts included: "storage 0" says the split gave it nothing, not that it is unknown.
    yield names.NODE_PRICE, [] if price is None else [
        ((resource, price.split), usd_per_hour) for resource, usd_per_hour in price.by_resource().items()
    ]


def _exporter_series(snapshot: ExporterSnapshot) -> Iterator[Series]:
    yield names.POD_OWNER_INFO, [((o.namespace, o.pod, o.kind, o.name), 1.0) for o in snapshot.owners]
    yield names.COLLECTOR_SUCCESS, [((h.collector,), 1.0 if h.success else 0.0) for h in snapshot.health]
    yield names.COLLECTOR_DURATION, [((h.collector,), h.duration_seconds) for h in snapshot.health]
    no_labels: tuple[str, ...] = ()
    yield names.LAST_SAMPLE, [(no_labels, snapshot.last_sample_timestamp)] if snapshot.last_sample_timestamp else []
    yield names.BOOKED_UNTIL, [(no_labels, snapshot.booked_until_timestamp)]
    yield names.BUILD_INFO, [((snapshot.build_version,), 1.0)]
    yield names.UNMAPPED_DEVICES, [((resource,), float(count))
                                   for resource, count in sorted(snapshot.unmapped_devices.items())]
    unpriced = sum(1 for view in snapshot.devices if not view.price.is_priced)
    yield names.UNPRICED_DEVICES, [(no_labels, float(unpriced))]
    yield names.SOURCE_TRUNCATED, [((source, reason), float(count))
                                   for (source, reason), count in sorted(snapshot.source_truncated.items())]
    yield names.ALLOCATION_EDGES, [((source,), float(count))
                                   for source, count in sorted(snapshot.allocation_edges.items())]
    if snapshot.catalog_as_of or snapshot.catalog_source:
        yield names.CATALOG_INFO, [((snapshot.catalog_as_of, snapshot.catalog_source), 1.0)]
    else:
        yield names.CATALOG_INFO, []
    age: list[Row] = [(no_labels, snapshot.catalog_as_of_timestamp)] if snapshot.catalog_as_of_timestamp else []
    yield names.CATALOG_AGE, age


def snapshot_series(snapshot: ExporterSnapshot) -> list[Series]:
    """Every metric of the table, in table order, with its rows (possibly none)."""
    produced = {spec.name: rows for gen in (_device_series, _ledger_series, _node_cost_series, _exporter_series)
                for spec, rows in gen(snapshot)}
    return [(spec, produced.get(spec.name, [])) for spec in names.EXPORTER_METRICS]
