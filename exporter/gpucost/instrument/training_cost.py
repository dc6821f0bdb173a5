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
    parse_sample_times,
    parse_vector,
    run_labels,
    summarize,
)
from gpucost.instrument.promclient import PrometheusClient

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
    labels = run_labels(parse_vector(client.query(plan.pod_labels(), at)))
    return summarize(
        time_range,
        cost_by_component=parse_vector(client.query(plan.cost_by_component(), at)),
        gpu_seconds=parse_vector(client.query(plan.gpu_seconds(), at)),
        labels=labels,
        gpu_info=parse_vector(client.query(plan.gpu_info(labels.uuids), at)) if labels.uuids else [],
        gpu_pricing=parse_vector(client.query(plan.gpu_pricing(labels.uuids), at)) if labels.uuids else [],
        epochs=epochs,
        instance_type=instance_type,
    )


def fetch_job_time_range(
    client: PrometheusClient, plan: JobRangePlan, now: float | None = None
) -> TimeRange:
    """From the first to the last sample of the Job pods' cost series."""
    now = time.time() if now is None else now
    last = parse_vector(client.query(plan.last_sample(now), now))
    last += parse_vector(client.query(plan.latest_sample(now), now))
    if not last:
        raise NoData(f"no cost series for pods {plan.pods.pod_regex!r} in namespace {plan.pods.namespace!r}")
    coarse_first = parse_vector(client.query(plan.first_sample_coarse(now), now))
    # none before the last step: the series are younger than one step
    coarse = coarse_first[0].value if coarse_first else now
    raw_times = parse_sample_times(client.query(plan.raw_samples_before(coarse), now))
    first = min([coarse, *raw_times])
    return TimeRange(first, max(s.value for s in last))
