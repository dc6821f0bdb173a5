"""`python -m gpucost_bench --quick --only live_node`: the report's structure and its internal consistency.

The accuracy target (mean error of the short pods <= 1 %, no lost labels) is
what the benchmark reports, not what this test asserts.  What is asserted
holds for any correct exporter: money is conserved per device, every container
series was read before it expired, every pod was charged, every device id was
mapped, no pod was charged beyond the time the kubelet listed it, and the
summary figures are the per-pod rows' own.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

import pytest

from gpucost.config import ExporterConfig
from gpucost_bench.live_node import DEFAULT_SEED, TARGET_LOST_LABEL_SHARE, TARGET_MEAN_ERROR_PCT, replay, score
from gpucost_bench.live_trace import QUICK_SHAPE, LiveNodeTrace, generate_live_node
from gpucost_bench.report import render_figures
from gpucost_testing.bench_runs import run_quick_bench

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

METHODS = ("gpucost", "request_hours_1m", "utilization_times_price")


@pytest.fixture(scope="module")
def trace() -> LiveNodeTrace:
    return generate_live_node(DEFAULT_SEED, QUICK_SHAPE)


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The result file `python -m gpucost_bench --quick` writes."""
    out = tmp_path_factory.mktemp("bench-live-node")
    run_quick_bench("live_node", out)
    assert sorted(p.name for p in out.glob("*.json")) == ["live_node.json"]
    loaded: dict[str, Any] = json.loads((out / "live_node.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def scored(trace: LiveNodeTrace) -> dict[str, Any]:
    """The same quick trace replayed in this process, with the per-pod rows the result file leaves out."""
    return score(trace, replay(trace))


def _rows_by_pod(scored: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["pod"]: row for row in scored["per_pod"]}


def test_the_quick_run_replays_the_quick_trace_at_the_default_settings(
    document: dict[str, Any], trace: LiveNodeTrace
) -> None:
    assert document["mode"] == "quick"
    assert document["trace"]["pods"] == len(trace.pods)
    assert document["trace"]["device_id_forms"] == ["gke-minor", "gpu-uuid", "mig-legacy", "mig-uuid", "replica"]
    defaults = ExporterConfig()
    assert document["settings"]["pod_resources_interval_seconds"] == defaults.kubernetes.pod_resources_interval_seconds
    assert document["settings"]["sample_interval_seconds"] == defaults.sample_interval_seconds == 1.0
    assert document["replay"]["ticks"] >= QUICK_SHAPE.horizon_seconds
    assert document["replay"]["source_health"] == {
        "apiserver": True, "nvml": True, "podresources": True, "pricing": True
    }
    assert "per_pod" not in document
    assert 0 < len(document["worst_short_pods"]) <= 10


def test_every_pod_is_charged_and_every_device_id_is_mapped(document: dict[str, Any]) -> None:
    coverage = document["coverage"]
    assert coverage["pods_missed"] == []
    assert coverage["pods_charged"] == document["trace"]["pods"]
    assert coverage["unknown_container_usd"] == 0.0
    assert coverage["most_unmapped_device_ids"] == 0


def test_allocated_plus_unallocated_is_each_devices_cost_and_matches_its_price(document: dict[str, Any]) -> None:
    devices = document["devices"]
    assert len(devices["per_device"]) == document["trace"]["devices"]
    for uuid, device in devices["per_device"].items():
        parts = device["allocated_usd"] + device["unallocated_usd"]
        assert parts == pytest.approx(device["cost_usd"], rel=1e-9, abs=1e-12), uuid
        assert device["cost_usd"] > 0.0, uuid
    assert devices["conservation_max_relative"] <= 1e-9
    assert devices["gpu_cost_vs_price_max_relative_difference"] <= 1e-9


def test_the_scraped_container_series_add_up_to_what_the_devices_allocated(
    document: dict[str, Any], scored: dict[str, Any]
) -> None:
    # A container series that expired between two reads would be missing from the left-hand sides.
    for result in (document, scored):
        allocated = sum(device["allocated_usd"] for device in result["devices"]["per_device"].values())
        assert result["labels"]["container_cost_usd"] == pytest.approx(allocated, rel=1e-9)
        assert result["totals"]["gpucost_container_usd"] == pytest.approx(allocated, rel=1e-9)
    per_pod = sum(row["gpucost_container_usd"] for row in scored["per_pod"])
    assert per_pod == pytest.approx(scored["labels"]["container_cost_usd"], rel=1e-9)


def test_the_in_process_replay_finds_what_the_command_found(document: dict[str, Any], scored: dict[str, Any]) -> None:
    for part in ("short_pods", "all_pods", "labels", "coverage", "totals", "passed"):
        # The replay is deterministic: the watch is waited for, so real time never decides what a tick sees.
        assert scored[part] == document[part], part


def test_each_pods_truth_is_its_share_times_its_life(scored: dict[str, Any], trace: LiveNodeTrace) -> None:
    rows = _rows_by_pod(scored)
    assert len(rows) == len(trace.pods)
    for pod in trace.pods:
        row = rows[f"{pod.namespace}/{pod.name}"]
        assert row["truth_gpu_seconds"] == pytest.approx(pod.slot.share * (pod.end - pod.start))
        assert row["kind"] == pod.kind


def test_no_pod_is_charged_beyond_the_time_the_kubelet_listed_it(scored: dict[str, Any], trace: LiveNodeTrace) -> None:
    # The kubelet is asked once per poll interval and a tick charges the second before it:
    # whatever the exporter does with the API server's times, a pod cannot hold its device
    # for longer than from its admission to one poll and one tick past its unlisting.
    poll = scored["settings"]["pod_resources_interval_seconds"]
    rows = _rows_by_pod(scored)
    for pod in trace.pods:
        listed = pod.event_times["unlisted"] - pod.event_times["admitted"] + poll + 1.0
        assert rows[f"{pod.namespace}/{pod.name}"]["gpucost_gpu_seconds"] <= pod.slot.share * listed + 1e-9


def test_the_summary_is_computed_from_the_per_pod_rows(scored: dict[str, Any]) -> None:
    short = [row for row in scored["per_pod"] if row["kind"] == "short"]
    assert scored["short_pods"]["pods"] == len(short) == QUICK_SHAPE.short_pods
    for method in METHODS:
        errors = [abs(row[f"{method}_error_pct"]) for row in short]
        assert scored["short_pods"][method]["mean_abs_error_pct"] == pytest.approx(statistics.fmean(errors))
        assert scored["short_pods"][method]["max_abs_error_pct"] == pytest.approx(max(errors))
    for row in short:
        expected = (row["gpucost_gpu_seconds"] - row["truth_gpu_seconds"]) / row["truth_gpu_seconds"] * 100.0
        assert math.isclose(row["gpucost_error_pct"], expected, rel_tol=1e-9, abs_tol=1e-9)
    worst = max(abs(row["gpucost_error_pct"]) for row in short)
    assert abs(scored["worst_short_pods"][0]["gpucost_error_pct"]) == worst
    labels = scored["labels"]
    assert labels["lost_label_usd"] == pytest.approx(sum(row["lost_label_usd"] for row in scored["per_pod"]))
    assert labels["lost_label_share"] == pytest.approx(labels["lost_label_usd"] / labels["container_cost_usd"])
    assert labels["wrong_label_usd"] == 0.0


def test_the_targets_are_reported_and_judged_from_the_figures(document: dict[str, Any]) -> None:
    assert document["target"] == {"mean_error_pct": TARGET_MEAN_ERROR_PCT, "lost_label_share": TARGET_LOST_LABEL_SHARE}
    mean_error = document["short_pods"]["gpucost"]["mean_abs_error_pct"]
    assert document["passed"]["mean_error"] is (mean_error <= TARGET_MEAN_ERROR_PCT)
    assert document["passed"]["lost_label_share"] is (document["labels"]["lost_label_share"] <= 0.0)


def test_the_docs_section_renders_every_method_and_both_verdicts(document: dict[str, Any]) -> None:
    text = render_figures({"live_node": document})
    assert "### Live node: short pods, exact edges" in text
    for name in ("| gpucost |", "| request x hours, 1 min |", "| utilization x price |"):
        assert name in text
    assert text.count("met**") == 2
    assert f"Pods charged: {document['trace']['pods']} of {document['trace']['pods']}" in text
