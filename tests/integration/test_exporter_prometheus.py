"""Exporter core acceptance, against a real Prometheus.

One simulated 8-GPU node runs for a little over two minutes and is restarted
(SIGTERM, start again) in the middle.  Two real Prometheus servers scrape it:
one every 5 s, one every 60 s (to show a 40-second job is charged exactly
although it lived less than one scrape interval).
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from gpucost_testing.servers import (
    REPO_ROOT,
    ManagedProcess,
    free_port,
    prom_query,
    prom_scalar,
    start_exporter,
    start_prometheus,
    wait_for,
    write_prometheus_config,
)

pytestmark = pytest.mark.integration

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"
JOB_POD = "eval-llama-70b-mmlu-6q2wz"
JOB_SECONDS = 40.0
RUN_SECONDS = 135.0
RESTART_AT = 75.0


@dataclass
class Run:
    prom5: ManagedProcess
    prom60: ManagedProcess
    started: float
    restart_wall: float
    exporter_logs: list[str]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("exporter-e2e")
    scenario = yaml.safe_load(SCENARIO.read_text())
    started = time.time()
    # Anchor the scenario to wall time so a restarted exporter continues the same timeline.
    scenario["start_time"] = started
    scenario_file = workdir / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario))
    port = free_port()
    args = [
        "--nvml.backend=simulated",
        f"--simulate.scenario={scenario_file}",
        f"--state.file={workdir / 'state.json'}",
        "--sample.interval=1s",
    ]
    exporter = start_exporter(workdir, args, port=port, name="exporter-a")
    target = f"127.0.0.1:{port}"
    proms = []
    for interval in ("5s", "60s"):
        pdir = workdir / f"prom{interval}"
        pdir.mkdir()
        config = write_prometheus_config(pdir / "prometheus.yml", scrape_targets=[target],
                                         scrape_interval=interval, target_labels={"node": "sim-node"})
        proms.append(start_prometheus(pdir, config))
    logs = []
    try:
        time.sleep(max(0.0, started + RESTART_AT - time.time()))
        exporter.signal(signal.SIGTERM)
        assert exporter.process is not None
        assert exporter.process.wait(timeout=20) == 0
        logs.append(exporter.log_text())
        restart_wall = time.time()
        exporter = start_exporter(workdir, args, port=port, name="exporter-b")
        time.sleep(max(0.0, started + RUN_SECONDS - time.time()))
        # One last scrape of the 60 s Prometheus happens on its own schedule; give it time.
        yield Run(proms[0], proms[1], started, restart_wall, logs)
    finally:
        exporter.stop()
        logs.append(exporter.log_text())
        for prom in proms:
            prom.stop()


def test_attributed_plus_unallocated_cost_equals_gpu_cost_in_prometheus(run: Run) -> None:
    expr = (
        "abs(sum(gpucost_container_gpu_cost_usd_total) + sum(gpucost_gpu_unallocated_cost_usd_total)"
        " - sum(gpucost_gpu_cost_usd_total))"
    )
    assert prom_scalar(run.prom5, expr) < 1e-6
    per_gpu = prom_query(
        run.prom5,
        "abs(gpucost_gpu_allocated_cost_usd_total + gpucost_gpu_unallocated_cost_usd_total"
        " - gpucost_gpu_cost_usd_total)",
    )
    assert len(per_gpu) == 8
    assert max(float(r["value"][1]) for r in per_gpu) < 1e-9


def test_each_gpu_costs_its_price_times_elapsed_time_across_a_restart(run: Run) -> None:
    now = time.time()
    # Counter values and the exporter's own sample time, from the same scrapes.
    early = run.started + 15
    cost_early = {r["metric"]["uuid"]: float(r["value"][1])
                  for r in prom_query(run.prom5, "gpucost_gpu_cost_usd_total", at=early)}
    cost_late = {r["metric"]["uuid"]: float(r["value"][1])
                 for r in prom_query(run.prom5, "gpucost_gpu_cost_usd_total", at=now)}
    ts_early = prom_scalar(run.prom5, "gpucost_exporter_last_sample_timestamp_seconds", at=early)
    ts_late = prom_scalar(run.prom5, "gpucost_exporter_last_sample_timestamp_seconds", at=now)
    prices = {r["metric"]["uuid"]: float(r["value"][1])
              for r in prom_query(run.prom5, "gpucost_gpu_price_usd_per_hour", at=now)}
    assert ts_late - ts_early > 100, "the run must span the restart"
    assert len(cost_late) == 8
    for uuid, price in prices.items():
        expected = price * (ts_late - ts_early) / 3600.0
        assert cost_late[uuid] - cost_early[uuid] == pytest.approx(expected, rel=0.005), uuid


def test_no_counter_goes_backwards_across_the_restart(run: Run) -> None:
    for metric in ("gpucost_gpu_cost_usd_total", "gpucost_container_gpu_cost_usd_total",
                   "gpucost_workload_gpu_cost_usd_total", "gpucost_gpu_energy_joules_total"):
        resets = prom_query(run.prom5, f"resets({metric}[10m])")
        assert resets, metric
        assert all(float(r["value"][1]) == 0 for r in resets), (metric, resets)


def test_a_forty_second_job_is_charged_forty_seconds_with_a_sixty_second_scrape(run: Run) -> None:
    seconds_expr = f'sum(max_over_time(gpucost_container_gpu_seconds_total{{pod="{JOB_POD}"}}[10m]))'
    # The first 60 s scrape after the job ended can fall in the restart's gap (a slow start under load);
    # the ended job's final counters stay exposed, so the next scrape, up to 60 s later, must bring them.
    with contextlib.suppress(AssertionError):
        wait_for(lambda: prom_scalar(run.prom60, seconds_expr) >= JOB_SECONDS - 1.0, timeout=75.0, interval=2.0,
                 what="a 60 s scrape showing the ended job's final GPU-seconds")
    charged = prom_scalar(
        run.prom60,
        f'sum(max_over_time(gpucost_container_gpu_cost_usd_total{{pod="{JOB_POD}"}}[10m]))',
    )
    seconds = prom_scalar(run.prom60, seconds_expr)
    price = prom_scalar(
        run.prom60,
        'max(gpucost_gpu_price_usd_per_hour{uuid="GPU-5fb08163-d274-43ac-8f65-80c1a2435e65"})',
    )
    assert seconds == pytest.approx(JOB_SECONDS, abs=1.0)
    assert charged == pytest.approx(price * JOB_SECONDS / 3600.0, abs=price * 1.0 / 3600.0)


def test_restarted_exporter_restored_its_counters_from_the_state_file(run: Run) -> None:
    assert run.exporter_logs, "the first exporter's log was captured"
    restored = prom_scalar(run.prom5, "min(gpucost_gpu_cost_usd_total)", at=run.restart_wall + 10)
    before = prom_scalar(run.prom5, "min(gpucost_gpu_cost_usd_total)", at=run.restart_wall - 1)
    assert restored >= before > 0
