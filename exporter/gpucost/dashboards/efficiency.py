"""Dashboard 3, GPU efficiency and waste: how busy the GPUs are and what idle time costs."""

from __future__ import annotations

from grafana_foundation_sdk.builders import heatmap
from grafana_foundation_sdk.models import heatmap as heatmap_models

from gpucost.dashboards.common import (
    CLUSTER,
    TEAMS,
    Board,
    Query,
    bar_gauge_panel,
    query_panel,
    table_panel,
    timeseries_panel,
)
from gpucost.dashboards.tables import DEFAULT_RATE_WINDOW

__all__ = ["UID", "build"]

UID = "gpucost-efficiency"
IDLE_COMPONENT = 'component="idle"'
IDLE_SINCE = f'max by (namespace, pod, team) (ALERTS_FOR_STATE{{{TEAMS}, alertname="GpuIdleWaste"}})'


def _utilization_heatmap() -> heatmap.Panel:
    return (
        query_panel(
            heatmap.Panel(),
            "GPU utilization by node and GPU",
            "One row per GPU (node / GPU index), coloured by gpucost_gpu_utilization_ratio: the fraction of each "
            "sampling interval the device was busy, as NVML reports it. Dark rows are GPUs paid for and not used.",
            "percentunit",
            [
                Query(
                    f"max by (node, gpu) (gpucost_gpu_utilization_ratio{{{CLUSTER}}}"
                    " * on (node, uuid) group_left (gpu)"
                    f" max by (node, uuid, gpu) (gpucost_gpu_info{{{CLUSTER}}}))",
                    "{{node}} / GPU {{gpu}}",
                )
            ],
        )
        .calculate(False)
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_models.HeatmapColorMode.SCHEME)
            .scheme("RdYlGn")
            .min(0)
            .max(1)
        )
    )


def build(rate_window: str = DEFAULT_RATE_WINDOW) -> Board:
    board = Board(
        uid=UID,
        title="GPU cost: efficiency and waste",
        description="How busy the GPUs are, what idle and unallocated GPUs cost, and how GPUs are shared.",
        variables=("cluster", "team"),
        rate_window=rate_window,
    )
    rec = board.recorded
    board.row("Utilization")
    board.add(_utilization_heatmap(), w=24, h=9)
    board.row("Idle cost")
    board.add(
        timeseries_panel(
            "Idle cost by team (USD/h)",
            "Cost per hour of GPUs the team's pods hold while they are not busy "
            f"({rec.select('team_component_cost_rate', IDLE_COMPONENT)}), stacked.",
            "currencyUSD",
            [Query(f"sum by (team) ({rec.select('team_component_cost_rate', f'{TEAMS}, {IDLE_COMPONENT}')})",
                   "{{team}}")],
            stacked=True,
        ),
        w=12, h=8,
    )
    board.add(
        bar_gauge_panel(
            "GPU efficiency by team and model",
            f"Active / (active + idle) cost per team and model ({rec('team_model_efficiency')}): the share "
            "of the money spent while the GPUs were busy. Red below 30 %, green above 60 %.",
            "percentunit",
            [Query(f"sort({rec.select('team_model_efficiency', TEAMS)})", "{{team}} / {{model}}", instant=True)],
            steps=((None, "red"), (0.3, "orange"), (0.6, "green")),
            max_value=1,
        ),
        w=12, h=8,
    )
    board.add(
        table_panel(
            "GPUs idle for 2h or more",
            "Pods whose GPUs have been below 5 % utilization for at least 2 hours (the GpuIdleWaste alert: "
            f"{rec('pod_utilization')} < 0.05). Hours = now minus the time the alert became active "
            f"(ALERTS_FOR_STATE); USD = the pod's current USD/h ({rec('pod_cost_rate')}) times "
            "those hours.",
            "currencyUSD",
            [
                Query(f"(time() - {IDLE_SINCE}) / 3600 >= 2", instant=True, table=True),
                Query(
                    f"sum by (namespace, pod, team) ({rec.select('pod_cost_rate', TEAMS)})"
                    f" * on (namespace, pod, team) ((time() - {IDLE_SINCE}) / 3600 >= 2)",
                    instant=True, table=True,
                ),
            ],
            renames={"Value #A": "idle hours", "Value #B": "USD while idle"},
            column_units={"idle hours": "h"},
        ),
        w=12, h=8,
        empty_when_healthy="no pod has held an idle GPU for 2 hours",
    )
    board.add(
        table_panel(
            f"Pod GPU utilization ({rate_window} average)",
            f"For each pod holding GPUs, the highest {rec.adjective} average utilization of its GPUs "
            f"({rec('pod_utilization')}), lowest first: the candidates for the idle list.",
            "percentunit",
            [Query(f"sort({rec.select('pod_utilization', TEAMS)})", instant=True, table=True)],
            renames={"Value": "utilization"},
            column_steps={"utilization": ((None, "red"), (0.05, "orange"), (0.3, "green"))},
        ),
        w=12, h=8,
    )
    board.row("Unallocated GPUs")
    board.add(
        timeseries_panel(
            "Unallocated cost by node pool (USD/h)",
            f"Cost per hour of GPUs no pod holds, by node pool ({rec('node_pool_unallocated_rate')}; "
            "node_pool is a scrape target label). Not filtered by team: nobody owns these GPUs.",
            "currencyUSD",
            [Query(f"sum by (node_pool) ({rec.select('node_pool_unallocated_rate', CLUSTER)})", "{{node_pool}}")],
            stacked=True,
        ),
        w=12, h=8,
    )
    board.add(
        bar_gauge_panel(
            "Idle + unallocated share by node pool",
            f"(idle + unallocated cost) / total GPU cost of each node pool ({rec('node_pool_idle_share')}).",
            "percentunit",
            [Query(rec.select("node_pool_idle_share", CLUSTER), "{{node_pool}}", instant=True)],
            steps=((None, "green"), (0.2, "orange"), (0.5, "red")),
            max_value=1,
        ),
        w=12, h=4,
    )
    board.add(
        table_panel(
            "Unallocated cost by node and GPU model",
            "Cost per hour of unallocated GPUs per node and GPU model "
            f"({rec('node_gpu_model_unallocated_rate')}), highest first.",
            "currencyUSD",
            [Query(f"sort_desc({rec.select('node_gpu_model_unallocated_rate', CLUSTER)})", instant=True, table=True)],
            renames={"Value": "USD/h"},
        ),
        w=12, h=4,
    )
    board.row("Sharing (MIG, time-slicing, MPS)")
    board.add(
        bar_gauge_panel(
            "GPUs by sharing mode",
            "Number of devices per sharing mode (gpucost_gpu_sharing_info): exclusive (one container), "
            "time_slicing, mps, mig, or none (no container).",
            "none",
            [Query(f"count by (mode) (gpucost_gpu_sharing_info{{{CLUSTER}}})", "{{mode}}", instant=True)],
        ),
        w=8, h=8,
    )
    board.add(
        table_panel(
            "Devices, sharing and price",
            "Each GPU or MIG device with its sharing mode (gpucost_gpu_sharing_info), model and MIG profile "
            "(gpucost_gpu_info) and its resolved price (gpucost_gpu_price_usd_per_hour).",
            "currencyUSD",
            [
                Query(
                    f"max by (node, uuid, mode) (gpucost_gpu_sharing_info{{{CLUSTER}}})"
                    " * on (node, uuid) group_left (gpu, gpu_model, mig_profile)"
                    f" max by (node, uuid, gpu, gpu_model, mig_profile) (gpucost_gpu_info{{{CLUSTER}}})"
                    " * on (node, uuid) group_left (pricing)"
                    f" max by (node, uuid, pricing) (gpucost_gpu_price_usd_per_hour{{{CLUSTER}}})",
                    instant=True, table=True,
                )
            ],
            renames={"Value": "USD/h"},
        ),
        w=16, h=8,
    )
    return board
