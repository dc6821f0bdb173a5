"""The rules-at-scale benchmark's pieces: the synthetic history, its chunks, the rule copies, vmalert's figures."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from gpucost_bench.__main__ import _size
from gpucost_bench.fleet_history import (
    NODE_POOLS,
    FleetCounters,
    HistoryChunk,
    HistoryTotals,
    SyntheticFleet,
    write_history_chunks,
)
from gpucost_bench.rule_timing import bench_rule_files, parse_vmalert_iterations
from gpucost_testing.servers import REPO_ROOT

END = 1_800_000_000  # a fixed instant, a multiple of 60
SAMPLE = re.compile(r"^(?P<name>[a-z0-9_:]+)\{(?P<labels>.*)\} (?P<value>\S+) (?P<ts>\d+)$")


def _write(
    tmp_path: Path, chunk_samples: int, days: int = 1, nodes: int = 2
) -> tuple[list[HistoryChunk], HistoryTotals]:
    fleet = SyntheticFleet(nodes, END - days * 86400, pod_lifetime_seconds=4 * 3600)
    totals = HistoryTotals()
    chunks = list(write_history_chunks(tmp_path / f"c{chunk_samples}", fleet, END, 60, 900,
                                       FleetCounters.empty(nodes), totals, chunk_samples))
    return chunks, totals


def _body(chunk: HistoryChunk) -> list[str]:
    lines = chunk.path.read_text().splitlines()
    assert lines[-1] == "# EOF", f"{chunk.path.name} must end with # EOF for promtool"
    return lines[:-1]


def test_chunks_are_disjoint_in_time_contiguous_and_hold_the_same_samples_as_one_file(tmp_path: Path) -> None:
    chunks, totals = _write(tmp_path, chunk_samples=20_000)
    (whole,), whole_totals = _write(tmp_path, chunk_samples=10**12)

    assert len(chunks) > 3
    assert chunks[0].first_ts == whole.first_ts == END - 86400
    assert chunks[-1].last_ts == whole.last_ts == END
    for earlier, later in itertools.pairwise(chunks):
        assert later.first_ts == earlier.last_ts + 60, "each chunk starts at the step after the previous one ends"
    pieces = [line for chunk in chunks for line in _body(chunk)]
    assert pieces == _body(whole)
    assert totals.samples == whole_totals.samples == len(pieces) == sum(c.samples for c in chunks)
    assert totals.chunks == len(chunks)
    for chunk in chunks:
        stamps = {int(line.rsplit(" ", 1)[1]) for line in _body(chunk)}
        assert min(stamps) == chunk.first_ts and max(stamps) == chunk.last_ts


def test_synthetic_history_conserves_each_gpus_cost_within_one_step_per_pod_change(tmp_path: Path) -> None:
    """GPU cost = what its pods were charged + unallocated, up to one 60-s step per change of holder."""
    (chunk,), _ = _write(tmp_path, chunk_samples=10**12, days=1, nodes=3)
    last: dict[tuple[str, str], float] = {}
    holders: dict[str, set[str]] = defaultdict(set)
    for line in _body(chunk):
        match = SAMPLE.match(line)
        assert match, line
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if "uuid" not in labels:
            continue
        uuid, name = labels["uuid"], match["name"]
        if name == "gpucost_container_gpu_cost_usd_total":
            key = f"{labels['namespace']}/{labels['pod']}/{labels['component']}"
            holders[uuid].add(labels["pod"])
        elif name in ("gpucost_gpu_cost_usd_total", "gpucost_gpu_unallocated_cost_usd_total"):
            key = name
        else:
            continue
        last[(uuid, key)] = float(match["value"])  # time order: the last one is the final value
    prices = [price for _, _, price in NODE_POOLS]
    for uuid in {u for u, _ in last}:
        gpu = last[(uuid, "gpucost_gpu_cost_usd_total")]
        charged = sum(v for (u, k), v in last.items() if u == uuid and k.count("/") == 2)
        unallocated = last[(uuid, "gpucost_gpu_unallocated_cost_usd_total")]
        slack = max(prices) * 60 / 3600 * (len(holders[uuid]) + 1)
        assert gpu == pytest.approx(charged + unallocated, abs=slack), uuid
        assert gpu > 0 and charged > 0


def test_rule_copies_run_every_group_on_the_bench_interval_and_say_which_changed(tmp_path: Path) -> None:
    sources = sorted((REPO_ROOT / "rules").glob("*.yaml"))
    copies, changed = bench_rule_files(sources, tmp_path, 30)
    assert [c.name for c in copies] == [s.name for s in sources]
    for source, copy in zip(sources, copies, strict=True):
        original, bench = yaml.safe_load(source.read_text()), yaml.safe_load(copy.read_text())
        assert [g["name"] for g in bench["groups"]] == [g["name"] for g in original["groups"]]
        for before, after in zip(original["groups"], bench["groups"], strict=True):
            assert after["interval"] == "30s"
            assert after["rules"] == before["rules"], "only the interval may change"
    assert changed["gpucost.inference.rules.yaml:gpucost.inference.daily"] == "5m -> 30s"
    assert all(not key.startswith("gpucost.rules.yaml:") for key in changed), "groups without an interval: none"


def test_vmalert_iteration_summary_gives_each_groups_mean_and_worst() -> None:
    text = "\n".join([
        '# HELP vmalert_iteration_duration_seconds x',
        'vmalert_iteration_duration_seconds{group="gpucost.cost", file="/r/gpucost.rules.yaml",quantile="0.5"} 0.08',
        'vmalert_iteration_duration_seconds{group="gpucost.cost", file="/r/gpucost.rules.yaml",quantile="1"} 0.5',
        'vmalert_iteration_duration_seconds_sum{group="gpucost.cost", file="/r/gpucost.rules.yaml"} 0.9',
        'vmalert_iteration_duration_seconds_count{group="gpucost.cost", file="/r/gpucost.rules.yaml"} 3',
        'vmalert_iteration_duration_seconds_sum{group="never", file="/r/x.yaml"} 0',
        'vmalert_iteration_duration_seconds_count{group="never", file="/r/x.yaml"} 0',
        'vmalert_iteration_interval_seconds{group="gpucost.cost", file="/r/gpucost.rules.yaml"} 30',
    ])
    assert parse_vmalert_iterations(text) == {"gpucost.rules.yaml:gpucost.cost": {"mean": pytest.approx(0.3),
                                                                                 "max": 0.5}}


@pytest.mark.parametrize(("text", "expected"), [("1000x30", (1000, 30)), ("10X1", (10, 1))])
def test_rules_scale_size_flag_reads_nodes_by_days(text: str, expected: tuple[int, int]) -> None:
    assert _size(text) == expected


@pytest.mark.parametrize("text", ["1000", "0x30", "ax1", "10x-1", ""])
def test_rules_scale_size_flag_refuses_anything_else(text: str) -> None:
    with pytest.raises(Exception, match="NODESxDAYS"):
        _size(text)


def test_pod_names_are_unique_in_their_namespace_at_fleet_size() -> None:
    """Per-pod recorded series carry no node label: two pods with one name would be duplicate samples.

    (A hashed name suffix did collide at 1,000 nodes: promtool refused the history with "duplicate sample".)
    """
    fleet = SyntheticFleet(1000, END - 30 * 86400, pod_lifetime_seconds=4 * 3600)
    owner_of: dict[tuple[str, str], tuple[int, int, int]] = {}
    for t in range(END - 2 * 86400, END + 1, 1800):
        for node in range(fleet.nodes):
            for slot in range(4):
                pod = fleet.pod_at(node, slot, t)
                if pod is None:
                    continue
                generation = (t - fleet.start + fleet.phase[node][slot]) // fleet.lifetime
                key = (fleet.workloads[pod.workload].namespace, pod.name)
                assert owner_of.setdefault(key, (node, slot, generation)) == (node, slot, generation), key
    assert len(owner_of) > 40_000


def test_live_exposition_serves_the_latest_render_and_continues_the_counters(tmp_path: Path) -> None:
    import time
    import urllib.request

    from gpucost_bench.fleet_history import LiveExposition

    now = int(time.time())
    fleet = SyntheticFleet(2, now - 86400, pod_lifetime_seconds=4 * 3600)
    counters = FleetCounters.empty(2)
    list(write_history_chunks(tmp_path, fleet, now // 60 * 60, 60, 900, counters, HistoryTotals(), 10**12))
    live = LiveExposition(fleet, counters, period_seconds=0.2)
    try:
        def scrape() -> dict[str, float]:
            with urllib.request.urlopen(f"http://{live.target}/metrics", timeout=5) as response:
                text = response.read().decode()
            assert text.endswith("# EOF\n")
            return {m["labels"]: float(m["value"]) for line in text.splitlines()
                    if (m := SAMPLE.match(line)) and m["name"] == "gpucost_gpu_cost_usd_total"}

        first = scrape()
        time.sleep(1.5)  # the exposition's clock is whole seconds
        rendered = live.renders
        deadline = time.monotonic() + 10
        while live.renders < rendered + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        later = scrape()
    finally:
        live.stop()
    assert len(first) == 16 and set(later) == set(first)
    assert all(later[k] > first[k] for k in first), "counters keep growing from where the history ended"
    assert not any(thread.is_alive() for thread in live.threads)


def test_serving_pods_export_share_seconds_70_30_and_the_daily_split_history_covers_the_last_day(
    tmp_path: Path,
) -> None:
    """Serving pods' apps export share-seconds (their GPU-seconds x utilization, 70/30 between two business
    units); the split per model and business unit that the daily group integrates is written at every
    step of the last day, and only there."""
    from gpucost_bench.fleet_history import SPLIT_RECORD

    (chunk,), _ = _write(tmp_path, chunk_samples=10**12, days=2, nodes=3)
    kinds: dict[tuple[str, str], str] = {}
    gpu_seconds: dict[tuple[int, str, str], float] = defaultdict(float)
    share: dict[tuple[int, str, str], dict[str, float]] = defaultdict(dict)
    split_times: set[int] = set()
    split_labels: set[str] = set()
    for line in _body(chunk):
        match = SAMPLE.match(line)
        assert match, line
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        name, ts, value = match["name"], int(match["ts"]), float(match["value"])
        pod = (ts, labels.get("namespace", ""), labels.get("pod", ""))
        if name == "gpucost_pod_owner_info":
            kinds[pod[1:]] = labels["owner_kind"]
        elif name == "gpucost_container_gpu_seconds_total":
            gpu_seconds[pod] += value
        elif name == "gpucost_inference_gpu_share_seconds_total":
            share[pod][labels["business_unit"]] = value
        elif name == SPLIT_RECORD:
            split_times.add(ts)
            split_labels.add(match["labels"])

    serving = {pod for pod, kind in kinds.items() if kind == "Deployment"}
    assert serving and len(serving) < len(kinds), "serving and other pods both run"
    assert {pod[1:] for pod in share} == serving
    for pod, by_unit in share.items():
        assert len(by_unit) == 2
        assert sum(by_unit.values()) <= gpu_seconds[pod] + 1e-3, "share-seconds are busy GPU-seconds"
        assert sorted(by_unit.values(), reverse=True) == pytest.approx(
            [0.7 * sum(by_unit.values()), 0.3 * sum(by_unit.values())], abs=1e-5)
    assert split_times == set(range(END - 86400, END + 1, 60))
    assert all('component="active"' in labels or 'component="idle"' in labels for labels in split_labels)
    assert len(split_labels) > 10


def test_victoria_metrics_accepts_the_full_fleets_exposition_in_one_scrape() -> None:
    """At 1,000 nodes the one live target is far over VictoriaMetrics' default 16 MiB scrape limit, which
    left the first full run's VictoriaMetrics without live samples: the benchmark raises the limit."""
    import time

    from gpucost_bench.fleet_history import LiveExposition
    from gpucost_bench.rules_scale import victoria_metrics_flags

    now = int(time.time())
    live = LiveExposition(SyntheticFleet(1000, now - 86400, 4 * 3600), FleetCounters.empty(1000), period_seconds=3600)
    try:
        size = live.body_bytes
    finally:
        live.stop()
    assert size > 16 << 20
    flags = dict(flag.split("=", 1) for flag in victoria_metrics_flags(Path("scrape.yml"), size))
    assert int(flags["-promscrape.maxScrapeSize"]) >= 2 * size
    assert live.gpus == 8000
