"""The one table of the exporter's metrics: name, type, labels, help, stability.

This table is the contract between the exporter, the rules, the dashboards and
docs/metrics.md (a test checks the doc against it).  `<workload labels>` are
the configured pod-label mappings and are appended where `workload` is True.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_WORKLOAD_LABELS",
    "EXPORTER_METRICS",
    "NODE_COST_METRICS",
    "MetricSpec",
    "by_name",
]

MetricType = Literal["counter", "gauge", "info"]

DEFAULT_WORKLOAD_LABELS: tuple[str, ...] = ("team", "model", "model_version", "cost_center", "business_unit")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str
    workload: bool = False
    stability: Literal["stable", "experimental"] = "stable"

    def label_names(self, workload_labels: tuple[str, ...]) -> tuple[str, ...]:
        return self.labels + workload_labels if self.workload else self.labels


GPU_INFO = MetricSpec(
    "gpucost_gpu_info",
    "gauge",
    ("uuid", "gpu", "gpu_model", "parent_uuid", "mig_profile"),
    "GPU or MIG device seen by NVML; always 1.",
)
GPU_PRICE = MetricSpec(
    "gpucost_gpu_price_usd_per_hour",
    "gauge",
    ("uuid", "pricing"),
    "Resolved hourly price of the device in USD; pricing is on_demand, spot, commitment, on_prem or unpriced.",
)
GPU_UTILIZATION = MetricSpec(
    "gpucost_gpu_utilization_ratio",
    "gauge",
    ("uuid",),
    "Fraction of the last sampling interval the device was busy (0..1).",
)
GPU_MEMORY_USED = MetricSpec(
    "gpucost_gpu_memory_used_bytes", "gauge", ("uuid",), "Device memory in use, in bytes."
)
GPU_MEMORY_TOTAL = MetricSpec(
    "gpucost_gpu_memory_total_bytes", "gauge", ("uuid",), "Device memory in total, in bytes."
)
GPU_POWER = MetricSpec("gpucost_gpu_power_watts", "gauge", ("uuid",), "Power draw of the device, in watts.")
GPU_ENERGY = MetricSpec(
    "gpucost_gpu_energy_joules_total",
    "counter",
    ("uuid",),
    "Energy used by the device since the exporter first saw it, in joules.",
)
GPU_HEALTHY = MetricSpec(
    "gpucost_gpu_healthy",
    "gauge",
    ("uuid",),
    "1 when the last NVML sample of the device succeeded, 0 when it failed.",
)
GPU_SHARING = MetricSpec(
    "gpucost_gpu_sharing_info",
    "gauge",
    ("uuid", "mode"),
    "How the device's cost is split: exclusive, time_slicing, mps, mig or none; always 1.",
)
GPU_COST = MetricSpec(
    "gpucost_gpu_cost_usd_total",
    "counter",
    ("uuid",),
    "Cost of the device in USD since counting began (for a MIG parent: its uncarved capacity only).",
)
GPU_UNALLOCATED_COST = MetricSpec(
    "gpucost_gpu_unallocated_cost_usd_total",
    "counter",
    ("uuid",),
    "Cost of the device that no container held, in USD: all of it while no container holds it, and on a "
    "time-sliced GPU the unheld replicas' part of its idle time (busy time always goes to the holders).",
)
CONTAINER_COST = MetricSpec(
    "gpucost_container_gpu_cost_usd_total",
    "counter",
    ("namespace", "pod", "container", "uuid", "component"),
    "Cost of the device attributed to the container in USD; component is active (busy share) or idle.",
    workload=True,
)
CONTAINER_SECONDS = MetricSpec(
    "gpucost_container_gpu_seconds_total",
    "counter",
    ("namespace", "pod", "container", "uuid"),
    "Device-seconds the container held the device, times its share of the device.",
    workload=True,
)
WORKLOAD_COST = MetricSpec(
    "gpucost_workload_gpu_cost_usd_total",
    "counter",
    ("namespace", "component"),
    "Cost attributed to containers, without pod, container and uuid, so long windows survive pod churn.",
    workload=True,
)
GPU_ALLOCATED_COST = MetricSpec(
    "gpucost_gpu_allocated_cost_usd_total",
    "counter",
    ("uuid",),
    "Cost of the device attributed to containers (active + idle) in USD; unlike the per-container "
    "series it survives container retention, so allocated + unallocated == cost at every scrape.",
)
POD_OWNER_INFO = MetricSpec(
    "gpucost_pod_owner_info",
    "gauge",
    ("namespace", "pod", "owner_kind", "owner_name"),
    "Owner of a pod that holds a GPU (Deployment, Job, CronJob, StatefulSet, JobSet, PyTorchJob ...); always 1.",
)
COLLECTOR_SUCCESS = MetricSpec(
    "gpucost_exporter_collector_success",
    "gauge",
    ("collector",),
    "1 when the collector's last run succeeded, 0 when it failed.",
)
COLLECTOR_DURATION = MetricSpec(
    "gpucost_exporter_collector_duration_seconds",
    "gauge",
    ("collector",),
    "Duration of the collector's last run, in seconds.",
)
LAST_SAMPLE = MetricSpec(
    "gpucost_exporter_last_sample_timestamp_seconds",
    "gauge",
    (),
    "Unix time of the last completed sampling tick.",
)
BOOKED_UNTIL = MetricSpec(
    "gpucost_exporter_booked_until_timestamp_seconds",
    "gauge",
    (),
    "End of the last sampling tick in the cost counters, on the sampling clock (unix time with real GPUs): "
    "the counters stand at this moment, behind the last sample by the booking delay (docs/kubernetes.md); "
    "0 before the first tick is booked.",
    stability="experimental",
)
BUILD_INFO = MetricSpec("gpucost_exporter_build_info", "gauge", ("version",), "Exporter version; always 1.")
UNMAPPED_DEVICES = MetricSpec(
    "gpucost_exporter_unmapped_devices",
    "gauge",
    ("resource",),
    "Device ids the kubelet reported that could not be mapped to an NVML device.",
)
UNPRICED_DEVICES = MetricSpec(
    "gpucost_exporter_unpriced_devices",
    "gauge",
    (),
    "Devices whose price the price book could not resolve (they count no cost).",
)
SOURCE_TRUNCATED = MetricSpec(
    "gpucost_exporter_source_truncated_total",
    "counter",
    ("source", "reason"),
    "Oversized data the exporter cut from a source instead of keeping it: source apiserver with "
    "reason oversized_string (a JSON string over 256 KiB) or long_value (a kept label or annotation "
    "value over 256 characters) or invalid_quantity (a resource request that is no Kubernetes quantity), "
    "source kubelet with reason long_device_id, source kubelet_resource with reason oversized_body (a "
    "/metrics/resource body over 4 MiB) or long_value (see docs/kubernetes.md, docs/node-cost.md).",
)
ALLOCATION_EDGES = MetricSpec(
    "gpucost_exporter_allocation_edges_total",
    "counter",
    ("source",),
    "Starts and ends of GPU allocations booked, by what decided them: source apiserver (the pod's "
    "container start and end times, to the second) or kubelet_poll (the kubelet poll that first "
    "listed or no longer listed it: API server down, or the pod's status gave no time). See "
    "docs/kubernetes.md.",
    stability="experimental",
)
CATALOG_INFO = MetricSpec(
    "gpucost_pricing_catalog_info",
    "gauge",
    ("as_of", "source"),
    "Price catalog in use: its date and where it came from; always 1.",
)
CATALOG_AGE = MetricSpec(
    "gpucost_pricing_catalog_as_of_timestamp_seconds",
    "gauge",
    (),
    "Unix time of the price catalog's as_of date (for the stale-prices alert).",
)

# Whole-node cost (issue #19, docs/node-cost.md).  A parallel family, not new
# labels on the GPU families: the GPU series stay exactly as they were, and
# `resource="gpu"` below repeats a container's GPU cost summed over devices and
# components so one family adds up to the whole node.
CONTAINER_RESOURCE_COST = MetricSpec(
    "gpucost_container_cost_usd_total",
    "counter",
    ("namespace", "pod", "container", "resource"),
    "Whole-node cost attributed to the container in USD, by resource (gpu, cpu, memory, storage): cpu and "
    "memory charge the greater of request and measured usage as a share of the node's allocatable; gpu is "
    "gpucost_container_gpu_cost_usd_total summed over uuid and component.",
    workload=True,
    stability="experimental",
)
WORKLOAD_RESOURCE_COST = MetricSpec(
    "gpucost_workload_cost_usd_total",
    "counter",
    ("namespace", "resource"),
    "gpucost_container_cost_usd_total without pod and container, so long windows survive pod churn.",
    workload=True,
    stability="experimental",
)
NODE_RESOURCE_COST = MetricSpec(
    "gpucost_node_cost_usd_total",
    "counter",
    ("resource",),
    "Cost of the node's part for the resource in USD (its part of the node price times time); "
    "containers plus unallocated add up to it for every resource.",
    stability="experimental",
)
NODE_UNALLOCATED_COST = MetricSpec(
    "gpucost_node_unallocated_cost_usd_total",
    "counter",
    ("resource",),
    "Cost of the node's part for the resource that no container claimed, in USD (for gpu: "
    "gpucost_gpu_unallocated_cost_usd_total summed over the node's devices).",
    stability="experimental",
)
NODE_PRICE = MetricSpec(
    "gpucost_node_price_usd_per_hour",
    "gauge",
    ("resource", "split"),
    "The node's hourly price split by resource; the parts add up to the node's price. split names the "
    "rule that divided the non-GPU part (config-family, catalog, config-on-prem, default-family, "
    "config-default, default, gpu-only).",
    stability="experimental",
)

# The whole-node families, published after the GPU ones (docs/node-cost.md).
NODE_COST_METRICS: tuple[MetricSpec, ...] = (
    CONTAINER_RESOURCE_COST,
    WORKLOAD_RESOURCE_COST,
    NODE_RESOURCE_COST,
    NODE_UNALLOCATED_COST,
    NODE_PRICE,
)

EXPORTER_METRICS: tuple[MetricSpec, ...] = (
    GPU_INFO,
    GPU_PRICE,
    GPU_UTILIZATION,
    GPU_MEMORY_USED,
    GPU_MEMORY_TOTAL,
    GPU_POWER,
    GPU_ENERGY,
    GPU_HEALTHY,
    GPU_SHARING,
    GPU_COST,
    GPU_UNALLOCATED_COST,
    GPU_ALLOCATED_COST,
    CONTAINER_COST,
    CONTAINER_SECONDS,
    WORKLOAD_COST,
    *NODE_COST_METRICS,
    POD_OWNER_INFO,
    COLLECTOR_SUCCESS,
    COLLECTOR_DURATION,
    LAST_SAMPLE,
    BOOKED_UNTIL,
    BUILD_INFO,
    UNMAPPED_DEVICES,
    UNPRICED_DEVICES,
    SOURCE_TRUNCATED,
    ALLOCATION_EDGES,
    CATALOG_INFO,
    CATALOG_AGE,
)


def by_name(name: str) -> MetricSpec:
    for spec in EXPORTER_METRICS:
        if spec.name == name:
            return spec
    raise KeyError(name)
