"""Run a `QueryPlan` against Prometheus and return the run's `TrainingCost` (shared by MLflow and CLI)."""

from __future__ import annotations

import time

from gpucost.errors import NoData
from gpucost.instrument.costquery import (
    JobRangePlan,
    PodSelector,
    QueryPlan,
    TimeRange,
    TrainingCost,
    run_labels,
    summarize,
)
from gpucost.promapi import PrometheusClient

__all__ = ["fetch_job_time_range", "fetch_training_cost"]


def fetch_training_cost(
    client: PrometheusClient,
    pods: PodSelector,
    time_range: TimeRange,
    *,
    epochs: int | None = None,
    instance_type: str | None = None,
) -> TrainingCost:
    """Cost of `pods` over `time_range`; raises NoData when no cost series matched."""
    plan = QueryPlan(pods, time_range)
    at = time_range.end
    labels = run_labels(client.query(plan.pod_labels(), at).samples)
    return summarize(
        time_range,
        cost_by_component=client.query(plan.cost_by_component(), at).samples,
        gpu_seconds=client.query(plan.gpu_seconds(), at).samples,
        labels=labels,
        gpu_info=client.query(plan.gpu_info(labels.uuids), at).samples if labels.uuids else (),
        gpu_pricing=client.query(plan.gpu_pricing(labels.uuids), at).samples if labels.uuids else (),
        epochs=epochs,
        instance_type=instance_type,
    )


def fetch_job_time_range(
    client: PrometheusClient, plan: JobRangePlan, now: float | None = None
) -> TimeRange:
    """From the first to the last sample of the Job pods' cost series."""
    now = time.time() if now is None else now
    last = [*client.query(plan.last_sample(now), now), *client.query(plan.latest_sample(now), now)]
    if not last:
        raise NoData(f"no cost series for pods {plan.pods.pod_regex!r} in namespace {plan.pods.namespace!r}")
    coarse_first = client.query(plan.first_sample_coarse(now), now).samples
    # none before the last step: the series are younger than one step
    coarse = coarse_first[0].value if coarse_first else now
    raw = client.query_matrix(plan.raw_samples_before(coarse), now)
    first = min([coarse, *(point.at for series in raw for point in series.points)])
    return TimeRange(first, max(sample.value for sample in last))
