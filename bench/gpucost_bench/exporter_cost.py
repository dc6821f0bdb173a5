"""What the exporter costs: scrape latency and bytes against stock prometheus_client, RSS and CPU of the process.

Two nodes: 8 GPUs x 8 containers (one exclusive container per GPU) and
8 GPUs x 64 containers (8 time-sliced replicas per GPU), every container with
both cost components and all five workload labels.

- in process: `SnapshotRenderer.render` on a new snapshot version every call
  (it renders every time: the worst case) against `generate_latest` over the
  same series in a fresh `CollectorRegistry` of stock `Counter`/`Gauge`.
- over HTTP: the real exporter (cached bytes between ticks) against the stock
  client's own HTTP server serving the same series from its own process.
- the process: the real `gpucost-exporter --nvml.backend=simulated`, 8 GPUs,
  1 s sampling, scraped every 15 s as Prometheus would; RSS and CPU time read
  from /proc over the window.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from gpucost.metrics.render import SnapshotRenderer
from gpucost.metrics.series import snapshot_series
from gpucost_bench.baseline_server import build_registry, series_to_json
from gpucost_bench.fixtures import GPUS, bench_snapshot, write_scenario

__all__ = ["ExporterWatch", "import_cost_mib", "render_costs", "run_exporter_cost", "status_kib"]

TARGET_RENDER_RATIO = 0.25
TARGET_RSS_MIB = 100.0
TARGET_CPU_PERCENT_OF_CORE = 1.0
CASES = {"8x8": 1, "8x64": 8}  # name -> containers per GPU
# What the exporter imports for its API server client (gRPC for the kubelet comes on top).
KUBERNETES_CLIENT_IMPORT = "import gpucost.sources.kube_http"


def _percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": cuts[49] * 1e3, "p99_ms": cuts[98] * 1e3, "mean_ms": statistics.fmean(samples) * 1e3}


def render_costs(per_gpu: int, iterations: int) -> dict[str, Any]:
    """In-process: our renderer on a new version each call against generate_latest."""
    snapshot = bench_snapshot(per_gpu)
    renderer = SnapshotRenderer()
    ours: list[float] = []
    body = b""
    for version in range(iterations + 1):
        fresh = dataclasses.replace(snapshot, version=version + 2)
        started = time.perf_counter()
        body = renderer.render(fresh)
        if version:  # the first render fills the label cache, as the exporter's first scrape does
            ours.append(time.perf_counter() - started)
    registry = build_registry(snapshot_series(snapshot), snapshot.workload_label_names)
    stock: list[float] = []
    stock_body = b""
    for _ in range(iterations + 1):
        started = time.perf_counter()
        stock_body = generate_latest(registry)
        stock.append(time.perf_counter() - started)
    stock = stock[1:]
    ours_p = _percentiles(ours)
    stock_p = _percentiles(stock)
    return {
        "containers": per_gpu * GPUS,
        "samples": body.count(b"\n") - body.count(b"\n#"),
        "iterations": iterations,
        "gpucost_render": {**ours_p, "bytes": len(body)},
        "baseline_generate_latest": {**stock_p, "bytes": len(stock_body)},
        "ratio_p50": ours_p["p50_ms"] / stock_p["p50_ms"],
        "ratio_p99": ours_p["p99_ms"] / stock_p["p99_ms"],
        "ratio_bytes": len(body) / len(stock_body),
    }


def _scrape(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def _scrape_many(url: str, count: int) -> dict[str, Any]:
    for _ in range(5):
        _scrape(url)
    timings: list[float] = []
    size = 0
    for _ in range(count):
        elapsed, size = _scrape(url)
        timings.append(elapsed)
    return {**_percentiles(timings), "bytes": size, "scrapes": count}


def _wait_for_series(url: str, needle: bytes, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as response:
            if needle in response.read():
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url} never showed {needle!r}")


def http_costs(workdir: Path, name: str, per_gpu: int, scrapes: int) -> dict[str, Any]:
    """The real exporter over HTTP against the stock client's HTTP server, same series, separate processes."""
    from gpucost_testing.processes import free_port
    from gpucost_testing.servers import ManagedProcess, start_exporter

    case_dir = workdir / f"http-{name}"
    case_dir.mkdir(parents=True, exist_ok=True)
    scenario = write_scenario(case_dir / "scenario.yaml", per_gpu)
    args = ["--nvml.backend=simulated", f"--simulate.scenario={scenario}", "--sample.interval=1s",
            f"--state.file={case_dir / 'state.json'}", "--log.level=warn"]
    snapshot = bench_snapshot(per_gpu)
    rows_file = case_dir / "baseline-rows.json"
    rows_file.write_text(json.dumps(series_to_json(snapshot_series(snapshot), snapshot.workload_label_names)))
    port = free_port()
    baseline = ManagedProcess("baseline", [sys.executable, "-m", "gpucost_bench.baseline_server", str(rows_file),
                                           str(port)], case_dir / "baseline.log", port=port).start()
    with start_exporter(case_dir, args) as exporter, baseline:
        baseline.wait_http("/metrics", timeout=30)
        url = exporter.base_url + "/metrics"
        _wait_for_series(url, b"gpucost_container_gpu_cost_usd_total{")
        ours = _scrape_many(url, scrapes)
        stock = _scrape_many(baseline.base_url + "/metrics", scrapes)
    return {
        "gpucost_exporter": ours,
        "baseline_prometheus_client_http": stock,
        "ratio_p50": ours["p50_ms"] / stock["p50_ms"],
        "ratio_p99": ours["p99_ms"] / stock["p99_ms"],
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    """A `/proc/<pid>/status` figure in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


def import_cost_mib(statement: str) -> dict[str, float]:
    """RSS that `statement` (imports) adds to a fresh process that already imported the exporter."""
    code = (
        "import pathlib, gpucost.cli.exporter, gpucost.app\n"
        "def rss():\n"
        "    for line in pathlib.Path('/proc/self/status').read_text().splitlines():\n"
        "        if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024\n"
        "before = rss()\n"
        f"{statement}\n"
        "print(before, rss())\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    before, after = (float(v) for v in output.stdout.split())
    return {"rss_before_mib": before, "rss_after_mib": after, "import_mib": after - before}


class ExporterWatch:
    """The real exporter, sampled at 1 s for a window, scraped every 15 s; RSS and CPU from /proc."""

    def __init__(self, workdir: Path, window_seconds: float) -> None:
        from gpucost_testing.servers import start_exporter

        self.window_seconds = window_seconds
        watch_dir = workdir / "watch"
        watch_dir.mkdir(parents=True, exist_ok=True)
        scenario = write_scenario(watch_dir / "scenario.yaml", 1)
        self._exporter = start_exporter(watch_dir, [
            "--nvml.backend=simulated", f"--simulate.scenario={scenario}", "--sample.interval=1s",
            f"--state.file={watch_dir / 'state.json'}", "--log.level=warn"])
        assert self._exporter.process is not None
        self._pid = self._exporter.process.pid
        time.sleep(5.0)  # imports done, first ticks and first render behind us
        self._stop = threading.Event()
        self._scrapes = 0
        self._scraper = threading.Thread(target=self._scrape_loop, name="bench-scraper", daemon=True)
        self._started = time.monotonic()
        self._cpu_start = _cpu_seconds(self._pid)
        self._scraper.start()

    def _scrape_loop(self) -> None:
        url = self._exporter.base_url + "/metrics"
        while not self._stop.wait(15.0):
            _scrape(url)
            self._scrapes += 1

    def finish(self) -> dict[str, Any]:
        remaining = self.window_seconds - (time.monotonic() - self._started)
        if remaining > 0:
            time.sleep(remaining)
        elapsed = time.monotonic() - self._started
        cpu = _cpu_seconds(self._pid) - self._cpu_start
        rss_kib, hwm_kib = status_kib(self._pid, "VmRSS"), status_kib(self._pid, "VmHWM")
        self._stop.set()
        self._scraper.join(timeout=20)
        self._exporter.stop()
        cpu_percent = cpu / elapsed * 100.0
        return {
            "window_seconds": elapsed,
            "sample_interval_seconds": 1.0,
            "scrapes": self._scrapes,
            "cpu_seconds": cpu,
            "cpu_percent_of_one_core": cpu_percent,
            "rss_mib": rss_kib / 1024,
            "peak_rss_mib": hwm_kib / 1024,
            "targets": {"rss_mib": TARGET_RSS_MIB, "cpu_percent_of_one_core": TARGET_CPU_PERCENT_OF_CORE},
            "passed": hwm_kib / 1024 <= TARGET_RSS_MIB and cpu_percent < TARGET_CPU_PERCENT_OF_CORE,
        }


def run_exporter_cost(workdir: Path, quick: bool, watch: ExporterWatch | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    own_watch = watch or ExporterWatch(workdir, 60.0 if quick else 300.0)
    iterations, scrapes = (200, 200) if quick else (1000, 1000)
    in_process = {name: render_costs(per_gpu, iterations) for name, per_gpu in CASES.items()}
    over_http = {name: http_costs(workdir, name, per_gpu, scrapes) for name, per_gpu in CASES.items()}
    process = own_watch.finish()
    kubernetes = import_cost_mib(KUBERNETES_CLIENT_IMPORT)
    process["rss_with_kubernetes_client_mib"] = process["peak_rss_mib"] + kubernetes["import_mib"]
    worst_ratio = max(case["ratio_p50"] for case in in_process.values())
    return {
        "benchmark": "exporter_cost",
        "in_process_render": in_process,
        "http_scrape": over_http,
        "process": process,
        "kubernetes_client": {**kubernetes, "client": "lightkube and httpx2, gpucost.sources.kube_http",
                              "method": "import cost measured in a separate process, "
                              "added to the simulated exporter's peak RSS"},
        "targets": {"render_ratio_p50": TARGET_RENDER_RATIO, "rss_mib": TARGET_RSS_MIB,
                    "cpu_percent_of_one_core": TARGET_CPU_PERCENT_OF_CORE},
        "passed": worst_ratio <= TARGET_RENDER_RATIO and bool(process["passed"]),
        "wall_seconds": time.perf_counter() - started,
    }
