"""Log a training run's exact GPU cost (from the exporter's counters) to MLflow.  Extra: `[mlflow]`.

    with mlflow.start_run() as run, training_cost(run, prometheus_url=PROM, namespace="research",
                                                  job="llama-ft", epochs=10):
        train()

logs metrics `training_cost_usd`, `idle_cost_usd`, `gpu_hours`, `duration_minutes`,
`gpu_efficiency`, `cost_per_epoch`; params `instance_type`, `gpu_model`,
`num_gpus`, `pricing`; tags `team`, `model` and `gpucost.cost_status`.
When Prometheus stays unreachable after the retries, the run is tagged
`gpucost.cost_status=unavailable` and a warning is logged; training never fails
because of cost accounting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag

from gpucost.errors import NoData, SourceUnavailable, UserInputError
from gpucost.instrument.costquery import PodSelector, TimeRange, TrainingCost
from gpucost.instrument.training_cost import fetch_training_cost
from gpucost.promapi import PrometheusClient

__all__ = ["STATUS_TAG", "TrainingCostHandle", "log_cost", "log_training_cost", "training_cost"]

log = logging.getLogger(__name__)

STATUS_TAG = "gpucost.cost_status"
Instant = float | datetime


def _seconds(value: Instant) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _run_id(run: object) -> str:
    if isinstance(run, str):
        return run
    info = getattr(run, "info", None)
    run_id = getattr(info, "run_id", None)
    if not isinstance(run_id, str):
        raise UserInputError("", "run", run, "must be an MLflow run, active run or run id")
    return run_id


def _pods(namespace: str, pod_regex: str | None, job: str | None) -> PodSelector:
    if (pod_regex is None) == (job is None):
        raise UserInputError("", "pod_regex/job", (pod_regex, job), "give exactly one of pod_regex and job")
    return PodSelector.for_job(namespace, job) if job is not None else PodSelector(namespace, str(pod_regex))


def log_cost(run_id: str, cost: TrainingCost, client: Any = None) -> None:
    """Write `cost` to the run as metrics, params and tags (one batch)."""
    tracking = client or mlflow.MlflowClient()
    now_ms = int(time.time() * 1000)
    tracking.log_batch(
        run_id,
        metrics=[Metric(name, value, now_ms, 0) for name, value in cost.metrics().items()],
        params=[Param(name, value) for name, value in cost.params().items()],
        tags=[RunTag(name, value) for name, value in {**cost.tags(), STATUS_TAG: "ok"}.items()],
    )


def log_training_cost(
    run: object,
    *,
    prometheus_url: str,
    namespace: str,
    pod_regex: str | None = None,
    job: str | None = None,
    start: Instant | None = None,
    end: Instant | None = None,
    epochs: int | None = None,
    instance_type: str | None = None,
    retries: int = 4,
    backoff_seconds: float = 1.0,
) -> TrainingCost | None:
    """Query the run's GPU cost over [start, end] and log it to the MLflow run.

    `start` and `end` default to the run's own start and end (now, if it is
    still running).  Returns the cost, or None when Prometheus was unavailable
    or had no series for the pods (the run is then tagged
    `gpucost.cost_status=unavailable` or `no_data`).
    """
    run_id = _run_id(run)
    tracking = mlflow.MlflowClient()
    pods = _pods(namespace, pod_regex, job)
    if start is None or end is None:
        info = tracking.get_run(run_id).info
        start = start if start is not None else info.start_time / 1000
        end = end if end is not None else (info.end_time / 1000 if info.end_time else time.time())
    time_range = TimeRange(_seconds(start), _seconds(end))
    prometheus = PrometheusClient(prometheus_url, retries=retries, backoff_seconds=backoff_seconds)
    try:
        cost = fetch_training_cost(prometheus, pods, time_range, epochs=epochs, instance_type=instance_type)
    except SourceUnavailable as exc:  # any PrometheusApiError: a rejected query must not fail training either
        log.warning("training cost not logged for run %s: %s", run_id, exc)
        tracking.set_tag(run_id, STATUS_TAG, "unavailable")
        return None
    except NoData as exc:
        log.warning("training cost not logged for run %s: %s", run_id, exc)
        tracking.set_tag(run_id, STATUS_TAG, "no_data")
        return None
    log_cost(run_id, cost, tracking)
    return cost


@dataclass
class TrainingCostHandle:
    """What `training_cost` yields: set `epochs` when the count is known only at the end."""

    epochs: int | None
    start: float
    cost: TrainingCost | None = None


@contextmanager
def training_cost(
    run: object,
    *,
    prometheus_url: str,
    namespace: str,
    pod_regex: str | None = None,
    job: str | None = None,
    epochs: int | None = None,
    instance_type: str | None = None,
    retries: int = 4,
    backoff_seconds: float = 1.0,
) -> Iterator[TrainingCostHandle]:
    """Log the cost of the enclosed block's time range to `run` when the block exits (even on error)."""
    _pods(namespace, pod_regex, job)  # fail before training, not after
    handle = TrainingCostHandle(epochs=epochs, start=time.time())
    try:
        yield handle
    finally:
        handle.cost = log_training_cost(
            run,
            prometheus_url=prometheus_url,
            namespace=namespace,
            pod_regex=pod_regex,
            job=job,
            start=handle.start,
            end=time.time(),
            epochs=handle.epochs,
            instance_type=instance_type,
            retries=retries,
            backoff_seconds=backoff_seconds,
        )
