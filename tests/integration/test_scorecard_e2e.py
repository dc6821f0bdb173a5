"""The scorecard end to end: simulated node -> real exporter -> real Prometheus with rules -> scorecard.

The scenario is built here with constant utilization and memory so the
expected scorecard follows from it by hand (prices from the catalog):

* research/llama (Job): 2 A100-80GB at 80 % busy, 70 GiB -> idle 20 %, no cheaper GPU fits.
* search/ranker (ReplicaSet, serves requests): 1 A100-80GB at 25 % busy, 12 GiB
  -> idle 75 %, fits a T4 (16 GiB x 0.8 headroom), 25 % duplicate requests
  (a tiny exposition of the middleware's counters).
* one GPU unallocated.  The node is an on-demand p4de.24xlarge in us-east-1,
  for which the catalog has no spot price: AWS's default 60 % discount applies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.pricing.catalog import shipped_catalog
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply
from gpucost_testing.servers import (
    REPO_ROOT,
    ManagedProcess,
    free_port,
    start_exporter,
    start_prometheus,
    wait_for,
    write_prometheus_config,
)

pytestmark = pytest.mark.integration

# The commitment lever's tiles are a subquery `[window:tile]`: its first tile reaches back one tile
# before the window, so the warm-up must cover a tile plus the first scrape's delay (20 s did not:
# about one run in ten saw a short first tile and a low steady baseline).
WARMUP_SECONDS = 30.0
WINDOW_SECONDS = 60.0
TILE_SECONDS = 20.0
REQUESTS_PER_SECOND = 40.0
DUPLICATES_PER_SECOND = 10.0
HOURS_PER_MONTH = 730.0


def _gpu(index: int, utilization: float, memory_gib: int) -> dict[str, Any]:
    return {
        "uuid": f"GPU-00000000-0000-4000-8000-00000000000{index}",
        "index": index,
        "model": "NVIDIA A100-SXM4-80GB",
        "memory": "81920MiB",
        "timeline": [{"at": 0, "utilization": utilization, "memory_used": f"{memory_gib}GiB", "power_watts": 200}],
    }


def _pod(name: str, labels: dict[str, str], owner_kind: str, devices: list[int], utilization: float) -> dict[str, Any]:
    uuids = [f"GPU-00000000-0000-4000-8000-00000000000{i}" for i in devices]
    return {
        "namespace": labels["team"], "name": name, "uid": f"uid-{name}", "labels": labels,
        "owner": {"kind": owner_kind, "name": name.rsplit("-", 1)[0]},
        "containers": [{"name": "main", "devices": uuids,
                        "processes": [{"pid": 1000 + 10 * devices[0] + i, "device": u, "utilization": utilization}
                                      for i, u in enumerate(uuids)]}],
    }


SCENARIO: dict[str, Any] = {
    "node": {"name": "sim-node", "labels": {
        "node.kubernetes.io/instance-type": "p4de.24xlarge",
        "topology.kubernetes.io/region": "us-east-1",
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
    }},
    "gpus": [_gpu(0, 0.8, 70), _gpu(1, 0.8, 70), _gpu(2, 0.25, 12), _gpu(3, 0.0, 0)],
    "pods": [
        _pod("llama-pretrain-0", {"team": "research", "model": "llama"}, "Job", [0, 1], 0.8),
        _pod("ranker-abc12", {"team": "search", "model": "ranker"}, "ReplicaSet", [2], 0.25),
    ],
}


def expected_scorecard() -> dict[tuple[str, str], dict[str, float]]:
    """USD/month per (team, model) and lever, computed from the scenario and the catalog alone."""
    catalog = shipped_catalog()
    node = catalog.instance_type("aws", "p4de.24xlarge")
    assert node is not None
    price = node.regions["us-east-1"].on_demand_usd_per_hour / node.gpu_count
    spot_discount = catalog.spot_discounts["aws"].percent / 100
    models = catalog.gpu_models
    a100, t4 = models.get("A100-80GB"), models.get("T4")
    assert a100 is not None and t4 is not None
    assert a100.reference_usd_per_gpu_hour is not None and t4.reference_usd_per_gpu_hour is not None

    def month(cost_per_hour: float, shares: dict[str, float]) -> dict[str, float]:
        remaining = 1.0
        for share in shares.values():
            remaining *= 1 - share
        result = {lever: share * cost_per_hour * HOURS_PER_MONTH for lever, share in shares.items()}
        result["combined"] = (1 - remaining) * cost_per_hour * HOURS_PER_MONTH
        return result

    llama = month(2 * price, {"idle_release": 0.2, "right_size": 0.0, "caching": 0.0, "quantization": 0.0,
                              "spot": spot_discount, "commitment": 0.3})
    ranker = month(price, {
        "idle_release": 0.75,
        "right_size": 1 - t4.reference_usd_per_gpu_hour / a100.reference_usd_per_gpu_hour,
        "caching": DUPLICATES_PER_SECOND / REQUESTS_PER_SECOND,
        "quantization": 0.25 * (1 - 1 / 3),
        "spot": spot_discount,
        "commitment": 0.3,
    })
    return {("research", "llama"): llama, ("search", "ranker"): ranker}


class _InferenceApp:
    """The middleware's request counters of a ranker replica, growing at a fixed rate."""

    def __init__(self) -> None:
        self.started = time.time()

    def scrape(self, request: RecordedRequest) -> Reply:
        elapsed = time.time() - self.started
        labels = 'model="ranker",model_version="1",business_unit="search"'
        body = (
            "# TYPE gpucost_inference_requests_total counter\n"
            f'gpucost_inference_requests_total{{{labels},status="2xx"}} {REQUESTS_PER_SECOND * elapsed}\n'
            "# TYPE gpucost_inference_duplicate_requests_total counter\n"
            f"gpucost_inference_duplicate_requests_total{{{labels}}} {DUPLICATES_PER_SECOND * elapsed}\n"
        ).encode()
        return Reply(200, body, "text/plain; version=0.0.4")


@dataclass
class Run:
    prometheus: ManagedProcess
    at: float
    workdir: Path


def scorecard_cli(run: Run, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "gpucost.scorecard", "--prometheus", run.prometheus.base_url,
            "--days", str(WINDOW_SECONDS / 86400), "--tile-hours", str(TILE_SECONDS / 3600), "--at", str(run.at), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("scorecard-e2e")
    started = time.time()
    scenario_file = workdir / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump({**SCENARIO, "start_time": started}))
    app = HttpFixture({("GET", "/metrics"): _InferenceApp().scrape}, name="ranker-app").start()
    port = free_port()
    exporter = start_exporter(workdir, ["--nvml.backend=simulated", f"--simulate.scenario={scenario_file}",
                                        f"--state.file={workdir / 'state.json'}", "--sample.interval=250ms"],
                              port=port)
    config = write_prometheus_config(
        workdir / "prometheus.yml", scrape_targets=[f"127.0.0.1:{port}"], scrape_interval="2s",
        evaluation_interval="2s", rule_files=[REPO_ROOT / "rules/gpucost.rules.yaml"],
        target_labels={"node": "sim-node", "instance_type": "p4de.24xlarge", "region": "us-east-1"},
        extra_scrape_configs=[{"job_name": "ranker", "scrape_interval": "2s", "static_configs": [
            {"targets": [app.target],
             "labels": {"namespace": "search", "pod": "ranker-abc12"}}]}],
    )
    prometheus = start_prometheus(workdir, config)
    try:
        # Count the warm-up from Prometheus's first scrape, not from the test's start: on a loaded
        # machine the servers take long to come up, and a window reaching back before the first
        # scrape sees a short first tile (the commitment lever's minimum hour then comes out low).
        scraping = time.time()
        time.sleep(max(0.0, scraping + WARMUP_SECONDS + WINDOW_SECONDS + 3 - time.time()))
        yield Run(prometheus, time.time() - 2, workdir)
    finally:
        prometheus.stop()
        exporter.stop()
        app.stop()


def test_scorecard_matches_the_scenario_within_one_percent(run: Run) -> None:
    result = scorecard_cli(run, "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    got = {(w["team"], w["model"]): {**{lever["lever"]: lever["usd_per_month"] for lever in w["levers"]},
                                     "combined": w["combined"]["usd_per_month"]}
           for w in document["workloads"]}
    expected = expected_scorecard()
    assert set(got) == set(expected)
    for key, levers in expected.items():
        for lever, usd in levers.items():
            assert got[key][lever] == pytest.approx(usd, rel=0.01, abs=0.5), (key, lever, got[key][lever], usd)
    ranker = next(w for w in document["workloads"] if w["model"] == "ranker")
    assert ranker["kind"] == "inference"
    assert "T4" in next(lv for lv in ranker["levers"] if lv["lever"] == "right_size")["detail"]
    assert document["combined_usd_per_month"] <= document["baseline_usd_per_month"]


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.levers: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img" and found.get("src"):
            self.images.append(str(found["src"]))
        if tag == "tr" and found.get("data-lever"):
            self.levers.add(str(found["data-lever"]))


def test_html_report_renders_offline_with_charts_and_every_lever(run: Run) -> None:
    out = run.workdir / "report"
    result = scorecard_cli(run, "--format", "html", "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = out / "index.html"
    parser = _Structure()
    parser.feed(page.read_text())
    assert parser.levers == {"idle_release", "right_size", "caching", "quantization", "spot", "commitment"}
    assert len(parser.images) == 2
    for image in parser.images:
        data = (out / image).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, image
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("HTML check: structural validation (chromium not on PATH): html parsed, 2 PNGs non-empty, 6 levers")
        return
    shot = run.workdir / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", f"--screenshot={shot}", "--window-size=1200,1600",
                    page.as_uri()], capture_output=True, timeout=60, check=True)
    assert shot.stat().st_size > 10_000
    print(f"HTML check: Chromium screenshot {shot} ({shot.stat().st_size} bytes) plus structural validation")


def test_serve_exports_savings_potential_per_team_model_and_lever(run: Run) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "gpucost.scorecard", "--prometheus", run.prometheus.base_url, "--serve",
            f"--web.listen-address=127.0.0.1:{port}", "--days", str(WINDOW_SECONDS / 86400),
            "--tile-hours", str(TILE_SECONDS / 3600), "--recompute-minutes", "1"]
    server = ManagedProcess("scorecard", argv, run.workdir / "scorecard.log", port=port, cwd=REPO_ROOT).start()
    try:
        def scrape() -> str:
            try:
                with urllib.request.urlopen(server.base_url + "/metrics", timeout=2) as response:
                    text: str = response.read().decode()
            except OSError:
                return ""
            # A sample line, not the HELP text (which names lever="combined" too): before the first
            # computation the endpoint already answers with HELP and TYPE only.
            samples = [line for line in text.splitlines() if line.startswith("gpucost_savings_potential")]
            return text if any('lever="combined"' in line for line in samples) else ""

        text = wait_for(scrape, timeout=30, what="savings metrics")
        assert 'gpucost_savings_potential_usd_per_month{confidence="measured",lever="idle_release",' \
               'model="ranker",team="search"}' in text
        assert 'lever="quantization"' in text and 'confidence="estimate"' in text
    finally:
        server.stop()
