"""Dashboard 5, training runs: what each Job cost, how long it held how many GPUs, which runs are outliers."""

from __future__ import annotations

from gpucost.dashboards.common import (
    CLUSTER,
    RUN_OWNER_KINDS,
    Board,
    Query,
    bar_gauge_panel,
    table_panel,
    text_panel,
    timeseries_panel,
)
from gpucost.dashboards.tables import DEFAULT_RATE_WINDOW

__all__ = ["UID", "build"]

UID = "gpucost-training"
SCOPE = f'{CLUSTER}, team=~"$team", namespace=~"$namespace"'
RUNS = f'{SCOPE}, owner_kind=~"{RUN_OWNER_KINDS}"'
RUN_LABELS = "namespace, owner_kind, owner_name, team, model"
OWNERS = (
    "max by (namespace, pod, owner_kind, owner_name)"
    f' (gpucost_pod_owner_info{{{CLUSTER}, owner_kind=~"{RUN_OWNER_KINDS}"}})'
)
# The recorded run cost looks back 1d (rulegen --run-lookback); GPU time uses the same window.
LOOKBACK = "1d"


def _per_run_gpu_seconds(inner_by: str, outer: str) -> str:
    return (
        f"{outer} by ({RUN_LABELS}) ("
        f"{inner_by} (max_over_time(gpucost_container_gpu_seconds_total{{{SCOPE}}}[{LOOKBACK}]))"
        f" * on (namespace, pod) group_left (owner_kind, owner_name) {OWNERS}"
        ") / 3600"
    )


def build(rate_window: str = DEFAULT_RATE_WINDOW) -> Board:
    board = Board(
        uid=UID,
        title="GPU cost: training runs",
        description="Cost, duration and GPU-hours of each training run (Job, PyTorchJob, ...), outliers and "
        "abandoned runs.",
        variables=("cluster", "team", "namespace"),
        rate_window=rate_window,
    )
    rec = board.recorded
    run_cost = rec.select("owner_run_cost", RUNS)
    median_run_cost = rec.select("model_run_cost_median", CLUSTER)
    board.annotate(
        "Run cost over 10x its model's median",
        f'ALERTS{{{CLUSTER}, alertname="GpuJobCostAnomaly", alertstate="firing"}}',
        "red",
    )
    board.row("Runs")
    board.add(
        table_panel(
            "Runs: cost, duration, GPU-hours",
            f"One row per run (pods grouped by owner). Cost = {rec('owner_run_cost')} (sum over the run's "
            "pods of their cost in the last 1d). GPU-hours = device-seconds the pods held (max of "
            "gpucost_container_gpu_seconds_total over 1d) / 3600. Duration = the longest any one GPU was held. "
            f"x median = cost / median run cost of the same model ({rec('model_run_cost_median')}); red at 10x, "
            "the GpuJobCostAnomaly threshold.",
            "currencyUSD",
            [
                Query(f"sum by ({RUN_LABELS}) ({run_cost})", instant=True, table=True),
                Query(
                    _per_run_gpu_seconds("sum by (namespace, pod, team, model)", "sum"),
                    instant=True, table=True,
                ),
                Query(
                    _per_run_gpu_seconds("max by (namespace, pod, team, model, uuid)", "max"),
                    instant=True, table=True,
                ),
                Query(
                    f"sum by ({RUN_LABELS}) ({run_cost})"
                    f" / on (model) group_left () ({median_run_cost} > 0)",
                    instant=True, table=True,
                ),
            ],
            renames={"Value #A": "USD", "Value #B": "GPU-hours", "Value #C": "duration", "Value #D": "x median"},
            column_units={"GPU-hours": "none", "duration": "h", "x median": "none"},
            column_steps={"x median": ((None, "green"), (3, "orange"), (10, "red"))},
        ),
        w=24, h=9,
    )
    board.add(
        timeseries_panel(
            "Run cost over time",
            f"Cost so far of each run ({rec('owner_run_cost')}); a line that keeps climbing is a run still "
            "holding GPUs. Red markers: GpuJobCostAnomaly fired (run over 10x its model's median).",
            "currencyUSD",
            [Query(run_cost, "{{namespace}}/{{owner_name}}")],
        ),
        w=14, h=8,
    )
    board.add(
        bar_gauge_panel(
            "Median run cost by model",
            f"Median cost of the runs of each model over the last 1d ({rec('model_run_cost_median')}): the "
            f"baseline of the 10x anomaly alert, which needs at least 3 runs ({rec('model_runs_count')}).",
            "currencyUSD",
            [Query(median_run_cost, "{{model}}", instant=True)],
        ),
        w=10, h=8,
    )
    board.row("Abandoned runs and cost per epoch")
    idle_pods = f"{rec.select('pod_utilization', SCOPE)} < 0.05"

    board.add(
        table_panel(
            "Abandoned runs",
            f"Runs whose pods still hold GPUs that were below 5 % busy over the last {rec.span} "
            f"({rec('pod_utilization')} < 0.05, joined to gpucost_pod_owner_info): a crashed or finished "
            f"trainer that never exited. USD/h is what the pod keeps costing ({rec('pod_cost_rate')}).",
            "currencyUSD",
            [
                Query(
                    f"max by (namespace, pod, team) ({idle_pods})"
                    f" * on (namespace, pod) group_left (owner_kind, owner_name) {OWNERS}",
                    instant=True, table=True,
                ),
                Query(
                    f"sum by (namespace, pod, team) ({rec.select('pod_cost_rate', SCOPE)})"
                    f" * on (namespace, pod) group_left (owner_kind, owner_name) {OWNERS}"
                    f" and on (namespace, pod) ({idle_pods})",
                    instant=True, table=True,
                ),
            ],
            renames={"Value #A": "utilization", "Value #B": "USD/h"},
            column_units={"utilization": "percentunit"},
        ),
        w=14, h=8,
        empty_when_healthy="every run's GPUs are busy",
    )
    board.add(
        text_panel(
            "Cost per epoch",
            "Prometheus does not know epochs. The MLflow helper `gpucost.instrument.mlflow.training_cost(..., "
            "epochs=N)` logs `gpu_cost_usd`, `gpu_hours` and `cost_per_epoch` on the run when it ends; "
            "see docs/instrumentation.md. Compare runs there, and use the table on the left for their GPU time.",
        ),
        w=10, h=8,
    )
    return board
