"""Every dashboard query runs against a real Prometheus that scraped the simulated exporter.

One simulated 8-GPU node (1 s sampling) and a static exposition (the budgets sidecar's
series for team research, the scorecard's savings of both teams) are scraped every 2 s;
all of rules/ is evaluated every 2 s.
Each panel target, with the dashboard variables replaced by real values, must parse and
return data, unless its generator marks it "empty when healthy".

Month-to-date reads 5-minute and hourly tiles at wall-clock-aligned steps, which a fresh
Prometheus only has after the next 5-minute boundary.  So that the test does not wait up
to 5 minutes, the last 70 minutes of the two tile series are backfilled with promtool
(constant rates of the demo's two teams) before Prometheus starts; the rules continue them.
The static exposition also carries whole-node cost (issue #19) of the CPU and memory of the two
teams' pods and of the node, counting up from the module's import, so the whole-node panels have
parts besides the exporter's GPUs; their month-to-date tiles are backfilled the same way.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.contract import recorded
from gpucost.dashboards import boards
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply
from gpucost_testing.servers import (
    REPO_ROOT,
    ManagedProcess,
    http_get_json,
    require_binary,
    start_exporter,
    start_prometheus,
    wait_for,
    write_prometheus_config,
)

pytestmark = pytest.mark.integration

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"
RULE_FILES = sorted((REPO_ROOT / "rules").glob("*.yaml"))
# What Grafana would put in for the variables on the demo cluster.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$__interval": "2s",
    "$cluster": ".*",
    "$model": ".*",
    "$namespace": ".*",
}
SINGLE_TEAM = "research"
RANGE_SECONDS = 60
# (namespace, team, model) -> USD/h of the tiles backfilled before Prometheus starts.
BACKFILL_RATES = {("research", "research", "llama-70b"): 16.0, ("search", "search", "ranker"): 4.1}
BACKFILL_MINUTES = 70
# The whole node costs this much more than its GPUs in the backfilled tiles.
WHOLE_NODE_FACTOR = 1.25
NODE = "ip-10-0-12-34.ec2.internal"
# (namespace, team, model) -> USD/h of CPU and of memory in the static exposition.
NODE_PART_RATES = {("research", "research", "llama-70b"): (2.0, 1.5), ("search", "search", "ranker"): (0.5, 0.25)}
STARTED = time.time()


def backfill_tiles(tsdb: Path, end: float) -> None:
    """Write the month-to-date tile series for the last BACKFILL_MINUTES into `tsdb` as blocks."""
    lines = []
    # A constant rate in USD/h is also the increase over one hour.
    tiles = (
        ("namespace_team_model_cost_rate", 1.0),
        ("namespace_team_model_spend_increase1h", 1.0),
        ("namespace_team_model_whole_node_cost_rate", WHOLE_NODE_FACTOR),
        ("namespace_team_model_whole_node_spend_increase1h", WHOLE_NODE_FACTOR),
    )
    for key, factor in tiles:
        record = recorded.name(key)
        lines.append(f"# TYPE {record} gauge")
        for (namespace, team, model), gpu_rate in BACKFILL_RATES.items():
            rate = gpu_rate * factor
            for minute in range(BACKFILL_MINUTES, 0, -1):
                at = end - minute * 60
                lines.append(f'{record}{{namespace="{namespace}",team="{team}",model="{model}"}} '
                             f"{rate} {at:.3f}")
    lines.append("# EOF")
    source = tsdb.parent / "tiles.om"
    source.write_text("\n".join(lines) + "\n")
    tsdb.mkdir(parents=True, exist_ok=True)
    subprocess.run([require_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
                   check=True, capture_output=True, timeout=60)


def budgets_exposition() -> str:
    """The gpucost-budgets sidecar's series for one healthy monthly budget of team research."""
    now = time.time()
    lines = [
        'gpucost_budget_usd{budget="research-monthly",team="research",model="",namespace="",'
        'cost_center="cc-4411",cluster="",slack_channel="#research-gpu",resources="gpu"} 16000',
        'gpucost_budget_usd{budget="research-node",team="research",model="",namespace="",'
        'cost_center="cc-4411",cluster="",slack_channel="#research-gpu",resources="node"} 22000',
        *(f'gpucost_budget_threshold_ratio{{budget="research-monthly",threshold="{t}"}} {t}'
          for t in ("0.5", "0.8", "1", "1.25")),
        *(f'gpucost_budget_threshold_ratio{{budget="research-node",threshold="{t}"}} {t}' for t in ("0.8", "1")),
        'gpucost_budgets_provider_up{provider="aws",feature="budgets"} 1',
        'gpucost_budgets_provider_up{provider="aws",feature="prices"} 1',
        f'gpucost_price_sync_last_success_timestamp_seconds{{provider="aws"}} {now - 3600:.0f}',
        "gpucost_budgets_config_valid 1",
    ]
    return "\n".join(lines) + "\n"


def scorecard_exposition() -> str:
    """`gpucost scorecard --serve`'s savings of the demo's two teams: two levers and their compounded total."""
    savings = {("research", "llama-70b"): (4000, 2500, 5500), ("search", "ranker"): (900, 300, 1100)}
    lines = [
        f'gpucost_savings_potential_usd_per_month{{team="{team}",model="{model}",lever="{lever}",'
        f'confidence="estimate"}} {usd}'
        for (team, model), amounts in savings.items()
        for lever, usd in zip(("spot", "right_size", "combined"), amounts, strict=True)
    ]
    return "\n".join(lines) + "\n"


def node_cost_exposition() -> str:
    """Whole-node cost counters of the CPU and memory of the demo's two teams' pods and of the node.

    The node's CPU and memory cost 20 % more than its pods claim; the rest is unallocated.
    """
    hours = (time.time() - STARTED) / 3600
    lines = []
    for (namespace, team, model), parts in NODE_PART_RATES.items():
        for resource, rate in zip(("cpu", "memory"), parts, strict=True):
            lines.append(
                f'gpucost_workload_cost_usd_total{{namespace="{namespace}",resource="{resource}",team="{team}",'
                f'model="{model}",model_version="",cost_center="",business_unit="",node="{NODE}"}} {rate * hours}'
            )
    for index, resource in enumerate(("cpu", "memory")):
        claimed = sum(parts[index] for parts in NODE_PART_RATES.values())
        lines.append(f'gpucost_node_cost_usd_total{{resource="{resource}",node="{NODE}"}} {1.2 * claimed * hours}')
        lines.append(
            f'gpucost_node_unallocated_cost_usd_total{{resource="{resource}",node="{NODE}"}} {0.2 * claimed * hours}'
        )
    return "\n".join(lines) + "\n"


def scrape_budgets(request: RecordedRequest) -> Reply:
    body = budgets_exposition() + scorecard_exposition() + node_cost_exposition()
    return Reply(200, body.encode(), "text/plain; version=0.0.4")



@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    expr: str
    instant: bool
    step: str
    may_be_empty: bool


def substitute(expr: str, team: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr.replace("$team", team)


def dashboard_targets() -> list[Target]:
    targets = []
    for uid, board in boards().items():
        document = board.build()
        team = SINGLE_TEAM if board.single_team else ".*"
        for panel in document["panels"]:
            for target in panel.get("targets", []):
                targets.append(Target(
                    dashboard=uid,
                    panel=panel["title"],
                    expr=substitute(target["expr"], team),
                    instant=bool(target.get("instant")),
                    step=target.get("interval") or "2s",
                    may_be_empty=panel["title"] in board.empty_when_healthy,
                ))
        for annotation in document["annotations"].get("list", []):
            if "expr" in annotation:
                targets.append(Target(uid, annotation["name"], substitute(annotation["expr"], team), False, "2s", True))
    return targets


def run_query(prometheus: ManagedProcess, target: Target) -> list[dict[str, Any]]:
    now = time.time()
    if target.instant:
        answer = http_get_json(prometheus.base_url + "/api/v1/query", {"query": target.expr, "time": f"{now:.3f}"})
    else:
        answer = http_get_json(prometheus.base_url + "/api/v1/query_range", {
            "query": target.expr, "start": f"{now - RANGE_SECONDS:.3f}", "end": f"{now:.3f}", "step": target.step,
        })
    assert answer["status"] == "success", (target, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    workdir = tmp_path_factory.mktemp("dashboards-e2e")
    scenario = yaml.safe_load(SCENARIO.read_text())
    scenario["start_time"] = time.time()
    scenario_file = workdir / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario))
    budgets = HttpFixture({("GET", "/metrics"): scrape_budgets}, name="budgets-exposition").start()
    exporter = start_exporter(workdir, [
        "--nvml.backend=simulated",
        f"--simulate.scenario={scenario_file}",
        f"--state.file={workdir / 'state.json'}",
        "--sample.interval=1s",
    ])
    budgets_job = {
        "job_name": "gpucost-budgets",
        "honor_labels": True,
        "scrape_interval": "2s",
        "static_configs": [{"targets": [budgets.target]}],
    }
    config = write_prometheus_config(
        workdir / "prometheus.yml",
        scrape_targets=[f"127.0.0.1:{exporter.port}"],
        scrape_interval="2s",
        evaluation_interval="2s",
        rule_files=RULE_FILES,
        job_name="gpucost-exporter",
        target_labels={"node": NODE, "node_pool": "p4d-on-demand"},
        extra_scrape_configs=[budgets_job],
    )
    backfill_tiles(workdir / "tsdb", time.time())
    prom = start_prometheus(workdir, config)
    try:
        yield prom
    finally:
        prom.stop()
        exporter.stop()
        budgets.stop()


def test_every_panel_query_parses_and_returns_data_on_the_demo_cluster(prometheus: ManagedProcess) -> None:
    targets = dashboard_targets()
    assert len(targets) > 60

    def still_empty() -> list[str]:
        return [f"{t.dashboard} / {t.panel}: {t.expr}" for t in targets
                if not t.may_be_empty and not run_query(prometheus, t)]

    missing: list[str] = []

    def all_answered() -> bool:
        missing[:] = still_empty()
        return not missing

    try:
        wait_for(all_answered, timeout=90, interval=3, what="every panel to return data")
    except AssertionError:
        pytest.fail("panels without data on the demo cluster:\n" + "\n".join(missing))
    # Marked panels still have to be valid PromQL (run_query asserts status success).
    for target in targets:
        if target.may_be_empty:
            run_query(prometheus, target)


def test_variable_queries_list_the_demo_teams_and_models(prometheus: ManagedProcess) -> None:
    document = boards()["gpucost-overview"].build()
    queries = {v["name"]: v["query"] for v in document["templating"]["list"] if v["type"] == "query"}

    def values(name: str) -> set[str]:
        selector, label = substitute(queries[name], ".*").removeprefix("label_values(").rsplit(",", 1)
        answer = http_get_json(prometheus.base_url + f"/api/v1/label/{label.strip(' )')}/values",
                               {"match[]": selector})
        return set(answer["data"])

    wait_for(lambda: {"research", "search"} <= values("team"), timeout=60, what="teams")
    assert {"llama-70b", "ranker"} <= values("model")
    assert {"research", "search"} <= values("namespace")
