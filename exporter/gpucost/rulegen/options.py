"""The options of the generated rules: every window and threshold, validated once."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpucost.durations import DurationError, parse_simple_duration
from gpucost.metrics.names import DEFAULT_WORKLOAD_LABELS

__all__ = ["RuleOptions", "duration_seconds"]

# A job name the chart can set and a selector can quote without escaping.
_JOB = re.compile(r"^[A-Za-z0-9_.:/-]+$")


def duration_seconds(duration: str) -> int:
    """Seconds in a simple Prometheus duration such as `5m`; raises ValueError otherwise.

    Simple because the text goes into record names (`rate5m`) and range selectors as written.
    """
    try:
        return parse_simple_duration(duration)
    except DurationError:
        raise ValueError(f"duration {duration!r} must be a number followed by s, m, h or d") from None


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """Every window and threshold of the rules; the defaults produce the committed files."""

    rate_window: str = "5m"
    workload_labels: tuple[str, ...] = DEFAULT_WORKLOAD_LABELS
    budget_for: str = "1m"
    forecast_for: str = "1h"
    anomaly_factor: float = 10.0
    anomaly_min_usd_per_hour: float = 5.0
    anomaly_for: str = "15m"
    job_anomaly_factor: float = 10.0
    job_anomaly_min_usd: float = 50.0
    job_anomaly_min_runs: int = 3
    job_anomaly_for: str = "5m"
    run_lookback: str = "1d"
    run_owner_kinds: str = "Job|PyTorchJob|TFJob|MPIJob|XGBoostJob|RayJob"
    idle_utilization: float = 0.05
    idle_for: str = "2h"
    unallocated_usd_per_hour: float = 10.0
    unallocated_for: str = "6h"
    prices_stale_days: int = 90
    unattributed_share: float = 0.1
    unattributed_for: str = "1h"
    exporter_down_for: str = "5m"
    # The exact `job` label of the exporter's targets: the chart's ServiceMonitor/PodMonitor
    # set it (value exporter.scrapeJobName); absent() needs an exact name, not a regex.
    exporter_job: str = "gpucost-exporter"
    collector_failing_for: str = "15m"
    unpriced_for: str = "15m"
    dashboard_url: str = "https://grafana.example.com/d/gpucost-team-budget/gpucost-team-budget"
    runbook_base_url: str = "https://github.com/gpucost/gpucost/blob/main/docs/runbooks.md"

    def __post_init__(self) -> None:
        for name in (
            "rate_window", "budget_for", "forecast_for", "anomaly_for", "job_anomaly_for",
            "run_lookback", "idle_for", "unallocated_for", "unattributed_for",
            "exporter_down_for", "collector_failing_for", "unpriced_for",
        ):
            duration_seconds(getattr(self, name))
        window = duration_seconds(self.rate_window)
        if not 0 < window <= 300 or 3600 % window:
            # The current hour of month-to-date spend integrates the recorded rate every
            # rate_window: the window must tile the hour and stay within the 5m lookback delta.
            raise ValueError("rate_window must divide 1h and be at most 5m")
        if not _JOB.match(self.exporter_job):
            raise ValueError(f"exporter_job {self.exporter_job!r} must be letters, digits and _ . : / -")
        for label in ("team", "model"):
            if label not in self.workload_labels:
                raise ValueError(f"workload_labels must contain {label!r}")
