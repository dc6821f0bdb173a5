"""Scoring a live-node replay: each pod's charge against the truth, next to two common methods; labels, devices.

The truth is share x life (and the device's price x share x life).  The two methods
scored on the same pods: request x hours at 1-minute resolution (a pod seen at a minute
sample pays the whole minute at one GPU's price) and utilization x price (the pod's own
busy time at its device's price).  Also: the container cost booked with a workload label
empty that the pod carried (or inherited from its namespace) from its start,
conservation per device (allocated + unallocated against cost) and whether every pod
was charged.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpucost.config import ExporterConfig
from gpucost.engine.ledger import GpuCounters
from gpucost.model import NodeInfo, PodMeta
from gpucost.pricing.book import PriceBook
from gpucost.pricing.settings import PricingSettings
from gpucost.sources.workload_labels import DEFAULT_WORKLOAD_LABEL_CONFIG, WorkloadLabelMapper
from gpucost_bench.live_node_inputs import kube_time
from gpucost_bench.live_node_replay import FLUSH_SECONDS, SCRAPE_INTERVAL_SECONDS, Replay, Scrapes, sampler_settings
from gpucost_bench.live_trace import (
    NODE_LABELS,
    NODE_NAME,
    SHORT_POD_SECONDS,
    LiveNodeTrace,
    LivePod,
    request_hours_samples,
)

__all__ = ["METHODS", "TARGET_LOST_LABEL_SHARE", "TARGET_MEAN_ERROR_PCT", "score"]

TARGET_MEAN_ERROR_PCT = 1.0
TARGET_LOST_LABEL_SHARE = 0.0
REQUEST_HOURS_RESOLUTION_SECONDS = 60.0
SECONDS_PER_HOUR = 3600.0
# The result file keeps this many pods' rows (the short pods gpucost charged worst), not all of them.
WORST_PODS_KEPT = 10


@dataclass(slots=True)
class _PodCharge:
    gpu_seconds: float = 0.0
    usd: float = 0.0
    lost_label_usd: float = 0.0
    wrong_label_usd: float = 0.0
    lost_labels: set[str] = field(default_factory=set)


def _truth_prices(trace: LiveNodeTrace) -> dict[str, float]:
    """Each device's hourly price for the trace's node labels, asked of the price book directly."""
    book = PriceBook.from_settings(PricingSettings())
    node = NodeInfo(NODE_NAME, dict(NODE_LABELS))
    full_gpus = sum(1 for device in trace.devices if not device.is_mig)
    return {device.uuid: book.quote(node, device, full_gpus).price_per_hour_usd for device in trace.devices}


def _expected_labels(trace: LiveNodeTrace) -> dict[tuple[str, str], tuple[str, ...]]:
    """Each pod's workload label values from its labels at its start (and its namespace's)."""
    mapper = WorkloadLabelMapper()
    return {
        (pod.namespace, pod.name): mapper.values(
            PodMeta(pod.namespace, pod.name, pod.uid, labels=dict(pod.labels)),
            trace.namespace_labels.get(pod.namespace, {}),
        )
        for pod in trace.pods
    }


def _charges(
    trace: LiveNodeTrace, scrapes: Scrapes
) -> tuple[dict[tuple[str, str], _PodCharge], dict[str, float], float]:
    """Per pod: what the ledger charged, and the part with a lost or wrong label; plus strangers' cost."""
    expected = _expected_labels(trace)
    names = DEFAULT_WORKLOAD_LABEL_CONFIG.label_names
    charges = {key: _PodCharge() for key in expected}
    lost_by_label = dict.fromkeys(names, 0.0)
    strangers_usd = 0.0
    for key, seen in scrapes.containers.items():
        counters = seen.total
        usd = counters.active_usd + counters.idle_usd
        pod_key = (key.container.namespace, key.container.pod)
        if pod_key not in charges:
            strangers_usd += usd
            continue
        charge = charges[pod_key]
        charge.gpu_seconds += counters.gpu_seconds
        charge.usd += usd
        lost = {name for name, got, want in zip(names, key.workload, expected[pod_key], strict=True)
                if want and not got}
        wrong = any(got and got != want for got, want in zip(key.workload, expected[pod_key], strict=True))
        if lost:
            charge.lost_label_usd += usd
            charge.lost_labels |= lost
            for name in lost:
                lost_by_label[name] += usd
        if wrong:
            charge.wrong_label_usd += usd
    return charges, lost_by_label, strangers_usd


def _error_pct(estimate: float, truth: float) -> float:
    return (estimate - truth) / truth * 100.0 if truth > 0.0 else 0.0


def _pod_row(pod: LivePod, charge: _PodCharge, prices: Mapping[str, float], full_price: float) -> dict[str, Any]:
    """One pod's charge by each method, as the cost of holding its device: price x GPU-seconds.

    gpucost's held cost is its GPU-seconds counter at the device's price, so its
    error is the GPU-seconds error whatever the active/idle split does with the
    money; `gpucost_container_usd` is what its container series actually carry.
    """
    price = prices[pod.slot.device_uuid]
    truth_usd = price * pod.truth_gpu_seconds / SECONDS_PER_HOUR
    gpucost_usd = price * charge.gpu_seconds / SECONDS_PER_HOUR
    request_hours_usd = (request_hours_samples(pod, REQUEST_HOURS_RESOLUTION_SECONDS)
                         * REQUEST_HOURS_RESOLUTION_SECONDS / SECONDS_PER_HOUR * full_price)
    utilization_usd = price * pod.busy_seconds() / SECONDS_PER_HOUR
    return {
        "pod": f"{pod.namespace}/{pod.name}",
        "kind": pod.kind,
        "device_id": pod.slot.device_id,
        "id_form": pod.slot.id_form,
        "share": pod.slot.share,
        "start_seconds": round(pod.start, 3),
        "end_seconds": round(pod.end, 3),
        "life_seconds": round(pod.life_seconds, 3),
        "truth_gpu_seconds": pod.truth_gpu_seconds,
        "gpucost_gpu_seconds": charge.gpu_seconds,
        "truth_usd": truth_usd,
        "gpucost_usd": gpucost_usd,
        "gpucost_error_pct": _error_pct(gpucost_usd, truth_usd),
        "request_hours_1m_usd": request_hours_usd,
        "request_hours_1m_error_pct": _error_pct(request_hours_usd, truth_usd),
        "utilization_times_price_usd": utilization_usd,
        "utilization_times_price_error_pct": _error_pct(utilization_usd, truth_usd),
        "gpucost_container_usd": charge.usd,
        "lost_label_usd": charge.lost_label_usd,
        "lost_labels": sorted(charge.lost_labels),
    }


METHODS = ("gpucost", "request_hours_1m", "utilization_times_price")


def _percentile_95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def _error_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    stats: dict[str, Any] = {"pods": len(rows)}
    for method in METHODS:
        errors = [float(row[f"{method}_error_pct"]) for row in rows]
        absolute = [abs(error) for error in errors]
        stats[method] = {
            "mean_abs_error_pct": statistics.fmean(absolute) if absolute else 0.0,
            "p95_abs_error_pct": _percentile_95(absolute),
            "max_abs_error_pct": max(absolute, default=0.0),
            "mean_signed_error_pct": statistics.fmean(errors) if errors else 0.0,
        }
    return stats


def _device_checks(
    trace: LiveNodeTrace, gpus: Mapping[str, GpuCounters], prices: Mapping[str, float], charged_seconds: float
) -> dict[str, Any]:
    per_device: dict[str, dict[str, float | str]] = {}
    for device in trace.devices:
        counters = gpus.get(device.uuid, GpuCounters())
        residual = counters.allocated_usd + counters.unallocated_usd - counters.cost_usd
        per_device[device.uuid] = {
            "gpu": device.index,
            "cost_usd": counters.cost_usd,
            "allocated_usd": counters.allocated_usd,
            "unallocated_usd": counters.unallocated_usd,
            "conservation_residual_usd": residual,
            "conservation_relative": abs(residual) / counters.cost_usd if counters.cost_usd else 0.0,
        }
    # A MIG GPU's price is its parent's (uncarved) part plus its slices': compare each physical GPU whole.
    price_differences = []
    for device in trace.devices:
        if device.is_mig:
            continue
        node_part = [d for d in trace.devices if device.uuid in (d.uuid, d.parent_uuid)]
        booked = sum(float(per_device[d.uuid]["cost_usd"]) for d in node_part)
        expected = prices[device.uuid] * charged_seconds / SECONDS_PER_HOUR
        price_differences.append(abs(booked - expected) / expected if expected else 0.0)
    return {
        "per_device": per_device,
        "conservation_max_abs_usd": max(abs(float(d["conservation_residual_usd"])) for d in per_device.values()),
        "conservation_max_relative": max(float(d["conservation_relative"]) for d in per_device.values()),
        "gpu_cost_vs_price_max_relative_difference": max(price_differences),
        "unallocated_usd": sum(float(d["unallocated_usd"]) for d in per_device.values()),
    }


def _trace_summary(trace: LiveNodeTrace) -> dict[str, Any]:
    pods = trace.pods
    return {
        "seed": trace.seed,
        "horizon_seconds": trace.shape.horizon_seconds,
        "gpus": sum(1 for device in trace.devices if not device.is_mig),
        "devices": len(trace.devices),
        "pods": len(pods),
        "short_pods": sum(1 for pod in pods if pod.kind == "short"),
        "long_pods": sum(1 for pod in pods if pod.kind == "long"),
        "abandoned_pods": sum(1 for pod in pods if pod.kind == "abandoned"),
        "short_pod_seconds": list(SHORT_POD_SECONDS),
        "time_sliced_replicas": sum(1 for slot in trace.slots if slot.id_form == "replica"),
        "mig_slices": [d.mig_profile for d in trace.devices if d.is_mig],
        "device_id_forms": sorted({slot.id_form for slot in trace.slots}),
        "namespaces": {name: dict(labels) for name, labels in trace.namespace_labels.items()},
        "events": len(trace.events()),
    }


def _label_summary(charges: Mapping[tuple[str, str], _PodCharge], lost_by_label: Mapping[str, float],
                   container_usd: float) -> dict[str, Any]:
    lost_usd = sum(charge.lost_label_usd for charge in charges.values())
    return {
        "container_cost_usd": container_usd,
        "lost_label_usd": lost_usd,
        "lost_label_share": lost_usd / container_usd if container_usd else 0.0,
        "lost_label_pods": sum(1 for charge in charges.values() if charge.lost_label_usd > 0.0),
        "lost_label_usd_by_label": dict(lost_by_label),
        "wrong_label_usd": sum(charge.wrong_label_usd for charge in charges.values()),
    }


def _totals(rows: Sequence[Mapping[str, Any]], container_usd: float) -> dict[str, float]:
    totals = {f"{name}_usd": sum(float(row[f"{name}_usd"]) for row in rows) for name in ("truth", *METHODS)}
    return {**totals, "gpucost_container_usd": container_usd}


def score(trace: LiveNodeTrace, result: Replay) -> dict[str, Any]:
    """The replay's ledger against the trace: per-pod errors, labels, coverage, devices, targets."""
    prices = _truth_prices(trace)
    full_price = max(prices.values())
    charges, lost_by_label, strangers_usd = _charges(trace, result.scrapes)
    rows = [_pod_row(pod, charges[(pod.namespace, pod.name)], prices, full_price) for pod in trace.pods]
    short = [row for row in rows if row["kind"] == "short"]
    short_stats = _error_stats(short)
    container_usd = sum(float(row["gpucost_container_usd"]) for row in rows) + strangers_usd
    labels = _label_summary(charges, lost_by_label, container_usd)
    missed = [row["pod"] for row in rows if float(row["gpucost_gpu_seconds"]) <= 0.0]
    settings = sampler_settings()
    return {
        "trace": _trace_summary(trace),
        "settings": {
            "pod_resources_interval_seconds": ExporterConfig().kubernetes.pod_resources_interval_seconds,
            "sample_interval_seconds": settings.sample_interval_seconds,
            "retention_seconds": settings.retention_seconds,
            "scrape_interval_seconds": SCRAPE_INTERVAL_SECONDS,
            "flush_seconds": FLUSH_SECONDS,
            "epoch_utc": kube_time(0.0),
        },
        "replay": {"ticks": result.ticks, "charged_seconds": result.charged_seconds,
                   "watch_syncs": result.watch_syncs, "scrapes": result.scrapes.count,
                   "wall_seconds": result.wall_seconds, "source_health": dict(sorted(result.scrapes.health.items()))},
        "short_pods": short_stats,
        "all_pods": _error_stats(rows),
        "worst_short_pods": sorted(short, key=lambda row: -abs(float(row["gpucost_error_pct"])))[:WORST_PODS_KEPT],
        "labels": labels,
        "coverage": {
            "pods_charged": len(rows) - len(missed),
            "pods_missed": missed,
            "unknown_container_usd": strangers_usd,
            "most_unmapped_device_ids": result.scrapes.most_unmapped_ids,
        },
        "devices": _device_checks(trace, result.scrapes.gpus, prices, result.charged_seconds),
        "totals": _totals(rows, container_usd),
        "target": {"mean_error_pct": TARGET_MEAN_ERROR_PCT, "lost_label_share": TARGET_LOST_LABEL_SHARE},
        "passed": {
            "mean_error": short_stats["gpucost"]["mean_abs_error_pct"] <= TARGET_MEAN_ERROR_PCT,
            "lost_label_share": labels["lost_label_share"] <= TARGET_LOST_LABEL_SHARE,
        },
        "per_pod": rows,
    }
