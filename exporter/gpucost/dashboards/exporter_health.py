"""Dashboard 6, exporter health: are the numbers on the other dashboards complete and fresh."""

from __future__ import annotations

from gpucost.dashboards.common import CLUSTER, Board, Query, stat_panel, table_panel, timeseries_panel
from gpucost.dashboards.tables import DEFAULT_RATE_WINDOW

__all__ = ["UID", "build"]

UID = "gpucost-exporter-health"
JOBS = f'{CLUSTER}, job=~".*gpucost.*"'
DAY = 86400


def build(rate_window: str = DEFAULT_RATE_WINDOW) -> Board:
    board = Board(
        uid=UID,
        title="GPU cost: exporter health",
        description="Whether every node's exporter is scraped, its collectors succeed, every GPU is priced and "
        "mapped, and the budgets sidecar syncs.",
        variables=("cluster",),
        rate_window=rate_window,
    )
    board.row("Exporters")
    board.add(
        stat_panel(
            "Targets up",
            "Share of the gpucost scrape targets (jobs matching .*gpucost.*) Prometheus reached on its last scrape "
            "(avg of up). Below 100 %: GpuCostExporterDown; that node's cost is not being recorded.",
            "percentunit",
            [Query(f"avg(up{{{JOBS}}})", instant=True)],
            steps=((None, "red"), (0.99, "green")),
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Unpriced devices",
            "GPUs whose price the exporters could not resolve (sum of gpucost_exporter_unpriced_devices); "
            "they count no cost. See docs/pricing.md.",
            "none",
            [Query(f"sum(gpucost_exporter_unpriced_devices{{{CLUSTER}}})", instant=True)],
            steps=((None, "green"), (1, "red")),
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Unmapped devices",
            "Device ids the kubelet reported that no NVML device matched (sum of gpucost_exporter_unmapped_devices; "
            "0 while exporters report none). Their pods' cost is unallocated.",
            "none",
            [
                Query(
                    f"sum(gpucost_exporter_unmapped_devices{{{CLUSTER}}})"
                    f" or 0 * sum(gpucost_exporter_build_info{{{CLUSTER}}})",
                    instant=True,
                )
            ],
            steps=((None, "green"), (1, "red")),
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Price catalog age",
            "Age of the oldest price catalog in use: now minus gpucost_pricing_catalog_as_of_timestamp_seconds. "
            "Orange after 60 days; GpuCostPricesStale fires after 90.",
            "s",
            [Query(f"time() - min(gpucost_pricing_catalog_as_of_timestamp_seconds{{{CLUSTER}}})", instant=True)],
            steps=((None, "green"), (60 * DAY, "orange"), (90 * DAY, "red")),
        ),
        w=4, h=4,
    )
    board.add(
        stat_panel(
            "Oldest sample",
            "Now minus the oldest gpucost_exporter_last_sample_timestamp_seconds: how stale the slowest exporter's "
            "sampling loop is (normally one sampling interval).",
            "s",
            [Query(f"time() - min(gpucost_exporter_last_sample_timestamp_seconds{{{CLUSTER}}})", instant=True)],
            steps=((None, "green"), (30, "orange"), (120, "red")),
        ),
        w=4, h=4,
    )
    board.add(
        table_panel(
            "Exporter versions",
            "Number of exporters per version (count of gpucost_exporter_build_info by version).",
            "none",
            [Query(f"count by (version) (gpucost_exporter_build_info{{{CLUSTER}}})", instant=True, table=True)],
            renames={"Value": "exporters"},
        ),
        w=4, h=4,
    )
    board.add(
        timeseries_panel(
            "Collector success",
            "Lowest gpucost_exporter_collector_success per collector over all exporters: 1 when every exporter's "
            "last run of it succeeded, 0 when one failed (GpuCostCollectorFailing after 15m).",
            "none",
            [Query(f"min by (collector) (gpucost_exporter_collector_success{{{CLUSTER}}})", "{{collector}}")],
            steps=((None, "red"), (1, "green")),
        ),
        w=8, h=8,
    )
    board.add(
        timeseries_panel(
            "Collector duration",
            "Longest last-run duration per collector over all exporters "
            "(max of gpucost_exporter_collector_duration_seconds).",
            "s",
            [Query(f"max by (collector) (gpucost_exporter_collector_duration_seconds{{{CLUSTER}}})",
                   "{{collector}}")],
        ),
        w=8, h=8,
    )
    board.add(
        timeseries_panel(
            "Scrape duration",
            "How long Prometheus took to scrape each gpucost target (scrape_duration_seconds). A scrape serves a "
            "pre-rendered snapshot, so this stays in milliseconds.",
            "s",
            [Query(f"scrape_duration_seconds{{{JOBS}}}", "{{job}} {{instance}}")],
        ),
        w=8, h=8,
    )
    board.row("Budgets sidecar")
    board.add(
        timeseries_panel(
            "Cloud providers up",
            "gpucost_budgets_provider_up per provider and feature (budgets, prices, spend): 1 when the sidecar's "
            "last call to that cloud API succeeded.",
            "none",
            [Query(f"min by (provider, feature) (gpucost_budgets_provider_up{{{CLUSTER}}})",
                   "{{provider}} {{feature}}")],
            steps=((None, "red"), (1, "green")),
        ),
        w=12, h=7,
    )
    board.add(
        stat_panel(
            "Price sync age",
            "Now minus the last successful price sync per provider "
            "(gpucost_price_sync_last_success_timestamp_seconds). Orange after 2 days, red after 7.",
            "s",
            [Query(f"time() - max by (provider) (gpucost_price_sync_last_success_timestamp_seconds{{{CLUSTER}}})",
                   "{{provider}}", instant=True)],
            steps=((None, "green"), (2 * DAY, "orange"), (7 * DAY, "red")),
        ),
        w=6, h=7,
    )
    board.add(
        stat_panel(
            "Budget config valid",
            "gpucost_budgets_config_valid: 1 when the sidecar's budgets file passed validation, 0 when it "
            "kept the last good one.",
            "none",
            [Query(f"min(gpucost_budgets_config_valid{{{CLUSTER}}})", instant=True)],
            steps=((None, "red"), (1, "green")),
        ),
        w=6, h=7,
    )
    return board
