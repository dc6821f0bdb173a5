"""Rule evaluation time at fleet scale, in a real Prometheus and in VictoriaMetrics + vmalert.

`run_rules_scale(workdir, nodes, days)`:

1. writes the synthetic history of `nodes` nodes x 8 GPUs over `days` days
   (`fleet_history`) as OpenMetrics chunk files, and backfills each with
   `promtool tsdb create-blocks-from openmetrics` while the next one is written, so the
   disk holds one or two chunks at a time whatever the size;
2. starts Prometheus on those blocks with every `rules/*.yaml` file (compaction off, so
   the machine does nothing else while the rules run), scraping the fleet live from where
   the history ends, and waits until each group has evaluated twice;
3. stops Prometheus, imports the same blocks into VictoriaMetrics with `vmctl prometheus`,
   has VictoriaMetrics scrape the same live fleet and vmalert evaluate the same rule files,
   and waits again.

Every group runs on the evaluation interval (the 5-minute `gpucost.inference.daily` too:
what a group costs does not depend on how often it runs, and the result lists the changed
intervals).  Full size (the issue's target) is the default of
`python -m gpucost_bench.rules_scale`: 1,000 nodes x 8 GPUs x 30 days.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from gpucost_bench.fleet_history import (
    GPUS_PER_NODE,
    RAW_LOOKBACK_SECONDS,
    FleetCounters,
    HistoryChunk,
    HistoryTotals,
    LiveExposition,
    SyntheticFleet,
    write_history_chunks,
)
from gpucost_bench.rule_timing import (
    bench_rule_files,
    query,
    recorded_names,
    vmalert_iteration_seconds,
    wait_for_two_evaluations,
)
from gpucost_testing.servers import (
    REPO_ROOT,
    ManagedProcess,
    require_binary,
    start_prometheus,
    start_victoria_metrics,
    start_vmalert,
    wait_for,
    write_prometheus_config,
)

__all__ = ["TARGET_SIZE", "run_rules_scale"]

RULES_DIR = REPO_ROOT / "rules"
TARGET_GROUP_SECONDS = 2.0
TARGET_SIZE = {"nodes": 1000, "gpus_per_node": GPUS_PER_NODE, "days": 30}
# ~6 GB of OpenMetrics per chunk at full size: promtool's memory for one chunk stays a few GiB.
CHUNK_SAMPLES = 25_000_000
WORKLOAD_KEY = "namespace_workload:gpucost_cost_usd_per_hour:rate5m"


@dataclass
class BackfillFigures:
    wall_seconds: float = 0.0
    promtool_seconds: float = 0.0
    blocks: int = 0


def _backfill_pipelined(chunks: Iterable[HistoryChunk], data_dir: Path, days: int) -> BackfillFigures:
    """promtool each chunk while the generator writes the next; delete each chunk once backfilled."""
    figures = BackfillFigures()
    # One block window per pass over a chunk: a window as long as the data keeps each chunk to one pass.
    max_block = f"{max(2, (days + 31) * 24)}h"
    started = time.monotonic()
    running: tuple[subprocess.Popen[str], HistoryChunk, float] | None = None

    def finish(job: tuple[subprocess.Popen[str], HistoryChunk, float]) -> None:
        process, chunk, began = job
        _, stderr = process.communicate()
        figures.promtool_seconds += time.monotonic() - began
        if process.returncode != 0:
            raise RuntimeError(f"promtool failed on {chunk.path.name} (rc {process.returncode}): {stderr[-2000:]}")
        chunk.path.unlink()

    for chunk in chunks:  # the next chunk is written here, while promtool reads the previous one
        if running is not None:
            finish(running)
        process = subprocess.Popen(
            [require_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "--quiet",
             f"--max-block-duration={max_block}", str(chunk.path), str(data_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        running = (process, chunk, time.monotonic())
    if running is not None:
        finish(running)
    figures.wall_seconds = time.monotonic() - started
    figures.blocks = sum(1 for p in data_dir.iterdir() if (p / "meta.json").exists())
    return figures


def _recorded_counts(base_url: str, names: Sequence[str], since: float) -> dict[str, int]:
    """Per recorded name, the series the rules wrote since `since` (monotonic): live output, not backfilled history."""
    window = max(1, int(time.monotonic() - since))
    counts: dict[str, int] = {}
    for name in names:
        expr = f'count(last_over_time({{__name__="{name}"}}[{window}s]))'
        result = query(base_url, expr)
        counts[name] = int(float(result[0]["value"][1])) if result else 0
    return counts


def _pod_counts(base_url: str) -> dict[str, int]:
    pods_by = "count(count by (namespace, pod) ({}))"

    def one(expr: str) -> int:
        result = query(base_url, pods_by.format(expr))
        return int(float(result[0]["value"][1])) if result else 0

    return {"pods_with_series_in_last_5m": one("gpucost_container_gpu_cost_usd_total"),
            "pods_with_series_in_last_1d": one("last_over_time(gpucost_container_gpu_cost_usd_total[1d])")}


def _summary(groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    slowest = max(groups.items(), key=lambda item: float(item[1]["evaluation_seconds"]))
    worst_seen = max(float(g["max_seen_evaluation_seconds"]) for g in groups.values())
    errors = {key: g["rule_errors"] for key, g in groups.items() if g["rule_errors"]}
    return {"slowest_group": {"group": slowest[0], "evaluation_seconds": slowest[1]["evaluation_seconds"]},
            "worst_seen_evaluation_seconds": worst_seen,
            "every_group_under_target": worst_seen < TARGET_GROUP_SECONDS,
            "groups_with_rule_errors": errors}


def _measure_prometheus(workdir: Path, data_dir: Path, rule_files: Sequence[Path], live: LiveExposition,
                        days: int, interval: int) -> dict[str, Any]:
    config = write_prometheus_config(workdir / "prometheus.yml", evaluation_interval=f"{interval}s",
                                     scrape_interval="15s", rule_files=rule_files,
                                     extra_scrape_configs=[{"job_name": "gpucost-exporter", "honor_labels": True,
                                                            "static_configs": [{"targets": [live.target]}]}])
    started = time.monotonic()
    # min = max block duration: no compaction, so nothing but the rules competes for the CPU.
    prometheus = start_prometheus(workdir, config, retention=f"{days + 35}d",
                                  extra_args=["--storage.tsdb.min-block-duration=2h",
                                              "--storage.tsdb.max-block-duration=2h"])
    assert data_dir == workdir / "tsdb", "start_prometheus keeps its TSDB in workdir/tsdb"
    try:
        startup = time.monotonic() - started
        groups = wait_for_two_evaluations(prometheus.base_url, timeout=10 * interval + 600)
        waited = time.monotonic() - started
        recorded = _recorded_counts(prometheus.base_url, recorded_names(rule_files), started)
        pods = _pod_counts(prometheus.base_url)
    finally:
        prometheus.stop(timeout=120)
    return {"seconds": {"start": round(startup, 1), "until_two_evaluations": round(waited, 1)},
            **_summary(groups), "groups": groups, "recorded_series": recorded, "pods": pods}


def victoria_metrics_flags(scrape_config: Path, exposition_bytes: int) -> list[str]:
    """VictoriaMetrics' flags for the benchmark, given the size of the fleet's live exposition."""
    return [
        f"-promscrape.config={scrape_config}",
        # The whole fleet is one target here (1,000 nodes: about 21 MB); VictoriaMetrics refuses
        # responses over 16 MiB by default, which left it without live samples in the first full run.
        f"-promscrape.maxScrapeSize={max(64 << 20, 4 * exposition_bytes)}",
        # Query the newest scrape too (the default hides the last 30 s), like Prometheus does.
        "-search.latencyOffset=0s",
        # The [1d] and [31d] ranges touch every pod of the last day; the default cap (300k) is for dashboards.
        "-search.maxUniqueTimeseries=50000000",
    ]


def _start_victoria_metrics(workdir: Path, live: LiveExposition, days: int) -> ManagedProcess:
    scrape = workdir / "vm-scrape.yml"
    scrape.write_text(yaml.safe_dump({"scrape_configs": [{
        "job_name": "gpucost-exporter", "honor_labels": True, "scrape_interval": "15s",
        "static_configs": [{"targets": [live.target]}]}]}))
    return start_victoria_metrics(workdir, retention=f"{days + 35}d",
                                  extra_args=victoria_metrics_flags(scrape, live.body_bytes))


def _wait_for_live_samples(vm: ManagedProcess, gpus: int, timeout: float) -> float:
    """Seconds until VictoriaMetrics holds a live scrape of every GPU; raises if it never does.

    Without live samples every group that reads the last 5 minutes evaluates over nothing, and
    its time says nothing about the rules.
    """
    def live_gpus() -> int:
        result = query(vm.base_url, "count(count_over_time(gpucost_gpu_info[1m]))")
        return int(float(result[0]["value"][1])) if result else 0

    started = time.monotonic()
    try:
        wait_for(lambda: live_gpus() >= gpus, timeout=timeout, interval=5.0, what=f"a live scrape of {gpus} GPUs")
    except AssertionError:
        raise RuntimeError(f"VictoriaMetrics scraped {live_gpus()} of {gpus} GPUs live in {timeout:.0f} s; its log "
                           f"ends: {vm.log_tail(2000)}") from None
    return time.monotonic() - started


def _wait_for_merges(vm: ManagedProcess, timeout: float) -> float:
    """Seconds until VictoriaMetrics has no active merges after the import (at most `timeout`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with urllib.request.urlopen(vm.base_url + "/metrics", timeout=30) as response:
            text = response.read().decode()
        active = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("vm_active_merges"))
        if active == 0:
            break
        time.sleep(2.0)
    return time.monotonic() - started


def _run_on_terminal(argv: Sequence[str]) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as its stdio; its exit code and the tail of what it printed.

    vmctl 1.79 exits 1 ("inappropriate ioctl for device") when its output is not a terminal,
    even with -s and the progress bar off.
    """
    master, child_end = pty.openpty()
    process = subprocess.Popen(argv, stdin=child_end, stdout=child_end, stderr=child_end, start_new_session=True)
    os.close(child_end)
    tail = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        tail = (tail + data)[-8192:]
    os.close(master)
    return process.wait(), tail.decode(errors="replace")


def _measure_victoria_metrics(workdir: Path, data_dir: Path, rule_files: Sequence[Path], live: LiveExposition,
                              days: int, interval: int) -> dict[str, Any]:
    vm_dir = workdir / "victoria-metrics"
    vm_dir.mkdir(parents=True, exist_ok=True)
    vm = _start_victoria_metrics(vm_dir, live, days)
    vmalert: ManagedProcess | None = None
    try:
        started = time.monotonic()
        returncode, output = _run_on_terminal(
            [require_binary("vmctl"), "prometheus", "-s", "--vm-disable-progress-bar",
             f"--prom-snapshot={data_dir}", f"--vm-addr={vm.base_url}", "--vm-concurrency=2"])
        if returncode != 0:
            raise RuntimeError(f"vmctl prometheus failed (rc {returncode}): {output[-2000:]}")
        import_seconds = time.monotonic() - started
        merge_seconds = _wait_for_merges(vm, timeout=600)
        live_seconds = _wait_for_live_samples(vm, live.gpus, timeout=300)
        vmalert = start_vmalert(vm_dir, vm, rule_files, evaluation_interval=f"{interval}s")
        evaluating = time.monotonic()
        groups = wait_for_two_evaluations(vmalert.base_url, timeout=10 * interval + 600)
        waited = time.monotonic() - evaluating
        for key, figures in vmalert_iteration_seconds(vmalert.base_url).items():
            if key in groups:
                groups[key]["evaluation_seconds"] = round(figures["mean"], 4)
                groups[key]["max_seen_evaluation_seconds"] = round(figures["max"], 4)
        # Rules that read what another rule of the same group records see it one iteration later in
        # vmalert (its writes go out by remote write): wait a few more before counting what was recorded.
        time.sleep(4 * interval)
        recorded = _recorded_counts(vm.base_url, recorded_names(rule_files), evaluating)
        pods = _pod_counts(vm.base_url)
    finally:
        if vmalert is not None:
            vmalert.stop()
        vm.stop(timeout=120)
    return {"seconds": {"vmctl_import": round(import_seconds, 1), "merges_after_import": round(merge_seconds, 1),
                        "until_live_samples": round(live_seconds, 1), "until_two_evaluations": round(waited, 1)},
            **_summary(groups), "groups": groups, "recorded_series": recorded, "pods": pods}


def run_rules_scale(
    workdir: Path,
    nodes: int,
    days: int,
    *,
    step_seconds: int = 60,
    history_step_seconds: int = 900,
    pod_lifetime_hours: float = 4.0,
    evaluation_interval_seconds: int = 30,
    chunk_samples: int = CHUNK_SAMPLES,
    victoria_metrics: bool = True,
) -> dict[str, Any]:
    """Generate, backfill, evaluate in Prometheus, then in VictoriaMetrics; return the figures (plain JSON)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    history_step_seconds = max(step_seconds, history_step_seconds // step_seconds * step_seconds)
    # Blocks end at now: the head refuses samples older than the newest block ("out of bounds").
    end = int(time.time()) // step_seconds * step_seconds
    fleet = SyntheticFleet(nodes, end - days * 86400, int(pod_lifetime_hours * 3600))
    counters, totals = FleetCounters.empty(nodes), HistoryTotals()
    data_dir = workdir / "tsdb"
    data_dir.mkdir()
    chunks = write_history_chunks(workdir / "history", fleet, end, step_seconds, history_step_seconds, counters,
                                  totals, chunk_samples)
    backfill = _backfill_pipelined(chunks, data_dir, days)
    input_series, distinct_pods, serving_pods = len(counters.series), len(counters.pods), len(counters.serving_pods)
    rule_files, changed_intervals = bench_rule_files(sorted(RULES_DIR.glob("*.yaml")), workdir / "rules",
                                                     evaluation_interval_seconds)

    # From here on the fleet is scraped live, as after a real backfill: series stay fresh however long that took.
    live = LiveExposition(fleet, counters)
    try:
        prometheus = _measure_prometheus(workdir, data_dir, rule_files, live, days, evaluation_interval_seconds)
        vm: dict[str, Any] | str = "not run (--no-victoria-metrics)"
        if victoria_metrics:
            vm = _measure_victoria_metrics(workdir, data_dir, rule_files, live, days, evaluation_interval_seconds)
    finally:
        live.stop()

    return {
        "size": {"nodes": nodes, "gpus": nodes * GPUS_PER_NODE, "days": days, "step_seconds": step_seconds,
                 "history_step_seconds": history_step_seconds,
                 "full_resolution_hours": RAW_LOOKBACK_SECONDS / 3600,
                 "pod_lifetime_hours": pod_lifetime_hours, "evaluation_interval_seconds": evaluation_interval_seconds,
                 "data_end_utc": datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "group_intervals_changed": changed_intervals},
        "input": {"series": input_series, "samples": totals.samples,
                  "recorded_history_samples": totals.recorded_history_samples,
                  "openmetrics_mib": round(totals.bytes / 2**20, 1), "chunks": totals.chunks,
                  "blocks": backfill.blocks, "distinct_pods": distinct_pods, "serving_pods": serving_pods,
                  "workloads_in_catalog": len(fleet.workloads)},
        "seconds": {"generate": round(totals.write_seconds, 1), "promtool": round(backfill.promtool_seconds, 1),
                    "generate_and_backfill_wall": round(backfill.wall_seconds, 1)},
        "prometheus": prometheus,
        "victoriametrics": vm,
        "target": {**TARGET_SIZE, "group_evaluation_seconds_max": TARGET_GROUP_SECONDS,
                   "this_run_is_target_size": nodes >= TARGET_SIZE["nodes"] and days >= TARGET_SIZE["days"]},
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpucost_bench.rules_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=TARGET_SIZE["nodes"])
    parser.add_argument("--days", type=int, default=TARGET_SIZE["days"])
    parser.add_argument("--step", type=int, default=60, help="sample step of the recent raw data, seconds")
    parser.add_argument("--history-step", type=int, default=900, help="sample step of older raw data, seconds")
    parser.add_argument("--no-victoria-metrics", action="store_true", help="measure Prometheus only")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gpucost-rules-scale"),
                        help="emptied first; needs about 1 GB per 100 node-days free")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    result = run_rules_scale(args.workdir, args.nodes, args.days, step_seconds=args.step,
                             history_step_seconds=args.history_step, victoria_metrics=not args.no_victoria_metrics)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
