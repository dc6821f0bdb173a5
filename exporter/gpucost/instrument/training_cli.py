"""`gpucost training-cost`: print (and optionally log to MLflow) the GPU cost of a finished Job.

Mounted by the admin CLI with `add_parser(subparsers)`; `run(args)` returns the
exit code (0 ok, 1 no data or Prometheus unavailable, 2 bad input).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gpucost.errors import NoData, SourceUnavailable, UserInputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "training-cost",
        help="GPU cost of a finished Kubernetes Job, from the exporter's counters",
        description=(
            "Cost of the Job's pods (NAME-<5 chars>, NAME-<index>-<5 chars>) from the first to the last"
            " sample of their cost series."
        ),
    )
    parser.add_argument("--job", required=True, metavar="NAMESPACE/NAME", help="the Kubernetes Job")
    parser.add_argument("--mlflow-run", metavar="ID", help="also log the cost to this MLflow run")
    parser.add_argument("--prometheus", default="http://localhost:9090", metavar="URL")
    parser.add_argument("--epochs", type=int, help="to log cost_per_epoch")
    parser.add_argument("--instance-type", help="when the series carry no node_instance_type label")
    parser.add_argument(
        "--lookback", type=int, default=7 * 86400, metavar="SECONDS", help="how far back to look for the Job"
    )
    parser.set_defaults(handler=run)
    return parser


def _print_cost(job: str, cost: Any) -> None:
    print(f"job              {job}")
    for name, value in cost.metrics().items():
        print(f"{name:<16} {value:.6g}")
    for name, text in {**cost.params(), **cost.tags()}.items():
        print(f"{name:<16} {text}")


def run(args: argparse.Namespace) -> int:
    from gpucost.instrument.costquery import JobRangePlan, PodSelector
    from gpucost.instrument.training_cost import fetch_job_time_range, fetch_training_cost
    from gpucost.promapi import PrometheusClient

    try:
        pods = PodSelector.parse_job(args.job)
        client = PrometheusClient(args.prometheus, retries=4, backoff_seconds=1.0)
        time_range = fetch_job_time_range(client, JobRangePlan(pods, lookback_seconds=args.lookback))
        cost = fetch_training_cost(client, pods, time_range, epochs=args.epochs, instance_type=args.instance_type)
    except UserInputError as exc:
        print(f"gpucost training-cost: {exc.one_line()}", file=sys.stderr)
        return 2
    except (NoData, SourceUnavailable) as exc:  # SourceUnavailable: any PrometheusApiError
        print(f"gpucost training-cost: {exc}", file=sys.stderr)
        return 1
    _print_cost(args.job, cost)
    if args.mlflow_run:
        from gpucost.instrument.mlflow import log_cost

        log_cost(args.mlflow_run, cost)
        print(f"logged to MLflow run {args.mlflow_run}")
    return 0
