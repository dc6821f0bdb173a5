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


def build() -> Board:
    board = Board(
        uid=UID,
        title="GPU cost: training runs",
        description="Cost, duration and GPU-hours of each training run (Job, PyTorchJob, ...), outliers and "
        "abandoned runs.",
        variables=("cluster", "team", "namespace"),
    )
    board.annotate(
        "Run cost over 10x its model's median",
        f'ALERTS{{{CLUSTER}, alertname="GpuJobCostAnomaly", alertstate="firing"}}',
        "red",
    )
    board.row("Runs")
    board.add(
        table_panel(
            "Runs: cost, duration, GPU-hours",
            "One row per run (pods grouped by owner). Cost = owner:gpucost_run_cost_usd:sum (sum over the run's "
            "pods of their cost in the last 1d). GPU-hours = device-seconds the pods held (max of "
            "gpucost_container_gpu_seconds_total over 1d) / 3600. Duration = the longest any one GPU was held. "
            "x median = cost / median run cost of the same model (model:gpucost_run_cost_usd:median); red at 10x, "
            "the GpuJobCostAnomaly threshold.",
            "currencyUSD",
            [
                Query(f"sum by ({RUN_LABELS}) (owner:gpucost_run_cost_usd:sum{{{RUNS}}})", instant=True, table=True),
                Query(
                    _per_run_gpu_seconds("sum by (namespace, pod, team, model)", "sum"),
                    instant=True, table=True,
                ),
                Query(
                    _per_run_gpu_seconds("max by (namespace, pod, team, model, uuid)", "max"),
                    instant=True, table=True,
                ),
                Query(
                    f"sum by ({RUN_LABELS}) (owner:gpucost_run_cost_usd:sum{{{RUNS}}})"
                    f" / on (model) group_left () (model:gpucost_run_cost_usd:median{{{CLUSTER}}} > 0)",
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
            "Cost so far of each run (owner:gpucost_run_cost_usd:sum); a line that keeps climbing is a run still "
            "holding GPUs. Red markers: GpuJobCostAnomaly fired (run over 10x its model's median).",
            "currencyUSD",
            [Query(f"owner:gpucost_run_cost_usd:sum{{{RUNS}}}", "{{namespace}}/{{owner_name}}")],
        ),
        w=14, h=8,
    )
    board.add(
        bar_gauge_panel(
            "Median run cost by model",
            "Median cost of the runs of each model over the last 1d (model:gpucost_run_cost_usd:median): the "
            "baseline of the 10x anomaly alert, which needs at least 3 runs (model:gpucost_runs:count).",
            "currencyUSD",
            [Query(f"model:gpucost_run_cost_usd:median{{{CLUSTER}}}", "{{model}}", instant=True)],
        ),
        w=10, h=8,
    )
    board.row("Abandoned runs and cost per epoch")
    board.add(
        table_panel(
            "Abandoned runs",
            "Runs whose pods still hold GPUs that were below 5 % busy over the last 5 minutes "
            "(pod:gpucost_gpu_utilization:avg5m < 0.05, joined to gpucost_pod_owner_info): a crashed or finished "
            "trainer that never exited. USD/h is what the pod keeps costing (pod:gpucost_cost_usd_per_hour:rate5m).",
            "currencyUSD",
            [
                Query(
                    f"max by (namespace, pod, team) (pod:gpucost_gpu_utilization:avg5m{{{SCOPE}}} < 0.05)"
                    f" * on (namespace, pod) group_left (owner_kind, owner_name) {OWNERS}",
                    instant=True, table=True,
                ),
                Query(
                    f"sum by (namespace, pod, team) (pod:gpucost_cost_usd_per_hour:rate5m{{{SCOPE}}})"
                    f" * on (namespace, pod) group_left (owner_kind, owner_name) {OWNERS}"
                    f" and on (namespace, pod) (pod:gpucost_gpu_utilization:avg5m{{{SCOPE}}} < 0.05)",
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
