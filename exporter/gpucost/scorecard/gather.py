"""Reading the window's measurements for each team and model from Prometheus.

The queries read the exporter's counters and gauges (and the recorded
`pod_owner:gpucost_cost_usd:sum` for workload kinds) over `[window]`; the
joins between devices and workloads happen here in Python so each step stays
a plain, testable mapping.  The client (`gpucost.promapi`) returns typed samples.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from gpucost.pricing import normalize_gpu_model
from gpucost.pricing.catalog import Catalog, shipped_catalog
from gpucost.promapi import PrometheusClient, Sample
from gpucost.scorecard.levers import WorkloadKind, WorkloadUsage
from gpucost.scorecard.prices import spot_price_ratio

__all__ = ["SERVING_OWNER_KINDS", "TRAINING_OWNER_KINDS", "GatherSettings", "gather_usage"]

TRAINING_OWNER_KINDS = frozenset({"Job", "CronJob", "PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "RayJob", "JobSet"})
SERVING_OWNER_KINDS = frozenset({"ReplicaSet", "Deployment", "StatefulSet", "InferenceService", "RayService"})
GIB = 1024.0**3


@dataclass(frozen=True, slots=True)
class GatherSettings:
    window_seconds: float = 7 * 86400.0
    tile_seconds: float = 3600.0
    """Length of the spend tiles whose minimum is the steady baseline (commitment lever)."""
    at: float | None = None
    """Evaluation time (unix seconds); None for now."""
    team: str | None = None
    instance_type: str = ""
    region: str = ""
    """Used for GPUs whose price series carry no `instance_type` / `region` target label."""


Key = tuple[str, str]


def _vector(client: PrometheusClient, expr: str, at: float | None) -> list[Sample]:
    """The samples with a finite value: a NaN ratio or an infinite rate would poison every sum they enter."""
    return [sample for sample in client.query(expr, at) if math.isfinite(sample.value)]


def _key(labels: Mapping[str, str]) -> Key:
    return labels.get("team", ""), labels.get("model", "")


def gather_usage(client: PrometheusClient, settings: GatherSettings,
                 catalog: Catalog | None = None) -> list[WorkloadUsage]:
    """One `WorkloadUsage` per (team, model) with spend in the window."""
    catalog = catalog or shipped_catalog()
    w = f"{round(settings.window_seconds)}s"
    tile = f"{round(settings.tile_seconds)}s"
    at = settings.at
    hours = settings.window_seconds / 3600.0
    team_filter = f'team="{settings.team}"' if settings.team else ""
    workload_counter = f"gpucost_workload_gpu_cost_usd_total{{{team_filter}}}"
    container_counter = f"gpucost_container_gpu_cost_usd_total{{{team_filter}}}"

    components: dict[Key, dict[str, float]] = defaultdict(dict)
    for labels, value in _vector(client, f"sum by (team, model, component) (increase({workload_counter}[{w}]))", at):
        components[_key(labels)][labels.get("component", "")] = value / hours

    pricing_rows = _vector(
        client,
        f"sum by (team, model, pricing, instance_type, region) (increase({container_counter}[{w}])"
        " * on (uuid) group_left (pricing, instance_type, region)"
        " group by (uuid, pricing, instance_type, region) (gpucost_gpu_price_usd_per_hour))",
        at,
    )
    per_pricing: dict[Key, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    node_spend: dict[Key, dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    for labels, value in pricing_rows:
        per_pricing[_key(labels)][labels.get("pricing", "")] += value
        node = (labels.get("instance_type") or settings.instance_type, labels.get("region") or settings.region)
        node_spend[_key(labels)][node] += value

    peaks = _device_peaks(client, w, at)
    holders: dict[Key, set[str]] = defaultdict(set)
    for labels, _ in _vector(client, f"group by (uuid, team, model) (increase({container_counter}[{w}]) > 0)", at):
        holders[_key(labels)].add(labels.get("uuid", ""))

    kinds: dict[Key, set[str]] = defaultdict(set)
    owners = f"group by (team, model, owner_kind) (last_over_time(pod_owner:gpucost_cost_usd:sum[{w}]))"
    for labels, _ in _vector(client, owners, at):
        kinds[_key(labels)].add(labels.get("owner_kind", ""))

    requests = {labels.get("model", ""): value for labels, value in _vector(
        client, f"sum by (model) (increase(gpucost_inference_requests_total[{w}]))", at)}
    duplicates = {labels.get("model", ""): value for labels, value in _vector(
        client, f"sum by (model) (increase(gpucost_inference_duplicate_requests_total[{w}]))", at)}

    tile_expr = f"(sum by (team, model) (increase({workload_counter}[{tile}])))[{w}:{tile}]"
    minimum = {_key(lb): v for lb, v in _vector(client, f"min_over_time({tile_expr})", at)}
    tiles = {_key(lb): v for lb, v in _vector(client, f"count_over_time({tile_expr})", at)}
    full_tiles = math.floor(settings.window_seconds / settings.tile_seconds)

    usages: list[WorkloadUsage] = []
    for key, parts in components.items():
        active, idle = parts.get("active", 0.0), parts.get("idle", 0.0)
        if active + idle <= 0:
            continue
        pricing = per_pricing.get(key, {})
        priced_total = sum(pricing.values())
        on_demand_share = pricing.get("on_demand", 0.0) / priced_total if priced_total > 0 else 0.0
        ratio: tuple[float, bool] | None = None
        if node_spend.get(key):
            (instance_type, region), _ = max(node_spend[key].items(), key=lambda item: item[1])
            ratio = spot_price_ratio(catalog, instance_type, region)
        gpu_model, peak_memory, peak_util = _workload_peaks(holders.get(key, set()), peaks)
        kind = _kind(kinds.get(key, set()), key[1] in requests)
        model_requests = requests.get(key[1], 0.0)
        duplicate_ratio = duplicates.get(key[1], 0.0) / model_requests if model_requests > 0 else None
        steady = minimum.get(key, 0.0) if tiles.get(key, 0.0) >= full_tiles else 0.0
        usages.append(WorkloadUsage(
            team=key[0], model=key[1],
            cost_usd_per_hour=active + idle, active_usd_per_hour=active, idle_usd_per_hour=idle,
            on_demand_share=on_demand_share,
            spot_price_ratio=ratio[0] if ratio else None,
            spot_from_catalog_price=ratio[1] if ratio else False,
            kind=kind, gpu_model=gpu_model, peak_memory_gib=peak_memory, peak_utilization=peak_util,
            inference_share=1.0 if kind == "inference" else 0.0,
            duplicate_ratio=duplicate_ratio,
            min_hourly_usd=steady / (settings.tile_seconds / 3600.0),
        ))
    return usages


@dataclass(frozen=True, slots=True)
class DevicePeak:
    gpu_model: str | None
    is_mig: bool
    memory_gib: float | None
    utilization: float | None


def _device_peaks(client: PrometheusClient, w: str, at: float | None) -> dict[str, DevicePeak]:
    memory = {lb.get("uuid", ""): v for lb, v in _vector(
        client, f"max by (uuid) (max_over_time(gpucost_gpu_memory_used_bytes[{w}]))", at)}
    utilization = {lb.get("uuid", ""): v for lb, v in _vector(
        client, f"max by (uuid) (max_over_time(gpucost_gpu_utilization_ratio[{w}]))", at)}
    peaks: dict[str, DevicePeak] = {}
    info = f"group by (uuid, gpu_model, mig_profile) (last_over_time(gpucost_gpu_info[{w}]))"
    for labels, _ in _vector(client, info, at):
        uuid = labels.get("uuid", "")
        mem = memory.get(uuid)
        peaks[uuid] = DevicePeak(
            normalize_gpu_model(labels.get("gpu_model", "")), bool(labels.get("mig_profile")),
            mem / GIB if mem is not None else None, utilization.get(uuid),
        )
    return peaks


def _workload_peaks(uuids: set[str], peaks: Mapping[str, DevicePeak]) -> tuple[str | None, float | None, float | None]:
    """One GPU model and the highest peaks over the workload's devices; (None, ...) when mixed or MIG."""
    devices = [peaks[u] for u in uuids if u in peaks]
    models = {d.gpu_model for d in devices}
    if not devices or len(models) != 1 or any(d.is_mig for d in devices):
        return None, None, None
    memories = [d.memory_gib for d in devices]
    utils = [d.utilization for d in devices]
    if any(m is None for m in memories) or any(u is None for u in utils):
        return None, None, None
    return models.pop(), max(m for m in memories if m is not None), max(u for u in utils if u is not None)


def _kind(owner_kinds: set[str], serves_requests: bool) -> WorkloadKind:
    if serves_requests or owner_kinds & SERVING_OWNER_KINDS:
        return "inference"
    if owner_kinds & TRAINING_OWNER_KINDS:
        return "training"
    return "unknown"
