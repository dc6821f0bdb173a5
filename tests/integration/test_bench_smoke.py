"""`python -m gpucost_bench --quick` writes its results; gpucost's attribution stays within 0.5 % per team.

No timing is asserted here: speed is reported by `make bench` as ratios, not tested.
The accuracy bound is a correctness property of the engine, so it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpucost_testing.bench_runs import run_quick_bench

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-results")
    run_quick_bench("accuracy,exporter_cost", out)
    return out


def test_each_benchmark_writes_one_json_file_with_the_machine_it_ran_on(results: Path) -> None:
    assert sorted(p.name for p in results.glob("*.json")) == ["accuracy.json", "exporter_cost.json"]
    for path in results.glob("*.json"):
        document = json.loads(path.read_text())
        assert document["mode"] == "quick"
        assert {"cpu_count", "python", "platform", "date_utc"} <= set(document["machine"])


def test_exporter_cost_reports_both_nodes_both_paths_and_the_process(results: Path) -> None:
    document = json.loads((results / "exporter_cost.json").read_text())
    for path in ("in_process_render", "http_scrape"):
        assert set(document[path]) == {"8x8", "8x64"}
        for case in document[path].values():
            assert {"ratio_p50", "ratio_p99"} <= set(case)
    assert {"cpu_percent_of_one_core", "rss_mib", "peak_rss_mib", "rss_with_kubernetes_client_mib"} <= set(
        document["process"]
    )


def test_gpucost_attribution_is_within_half_a_percent_of_ground_truth_for_every_team(results: Path) -> None:
    document = json.loads((results / "accuracy.json").read_text())
    assert len(document["teams"]) >= 3
    errors = {team: row["gpucost_error_pct"] for team, row in document["teams"].items()}
    assert all(abs(error) <= 0.5 for error in errors.values()), errors
    # The same trace, the alternatives: their errors are reported, and they are not small.
    assert document["max_abs_team_error_pct"]["request_hours_1m"] > 0.5
    assert document["max_abs_team_error_pct"]["utilization_times_price"] > 0.5
