"""The dashboards follow the rules' rate window: one option renames the series in both (#18).

Rules and dashboards are rendered into a temp dir through their real generators
(`python -m gpucost.rulegen` and `python -m gpucost.dashboards`, each with `--rate-window`);
every recorded series a dashboard names must be one the rules at that window record, and
the dashboard sources never spell a recorded name themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gpucost.contract import recorded
from gpucost.dashboards import rendered
from gpucost.dashboards.__main__ import main as dashboards_main
from gpucost.rulegen.__main__ import main as rulegen_main
from gpucost_testing.servers import REPO_ROOT

DASHBOARD_SOURCES = sorted((REPO_ROOT / "exporter/gpucost/dashboards").glob("*.py"))
# A recorded name has the shape level:metric:operation.
RECORDED_NAME = re.compile(r"(?<![A-Za-z0-9_:])[a-z_]+:[a-z0-9_]+:[a-z0-9_]+(?![A-Za-z0-9_:])")
# A window suffix written by hand, even in a string split over two lines (":rate5m", "avg5m").
WINDOW_SUFFIX = re.compile(r":(?:rate|avg|ratio)\d|\b(?:rate|avg)\d+[smh]\b")


def spelled_series(text: str) -> set[str]:
    return set(RECORDED_NAME.findall(text)) | set(WINDOW_SUFFIX.findall(text))


def render_rules(out: Path, rate_window: str) -> set[str]:
    """Every `record:` name of the rule files rulegen writes at `rate_window`."""
    assert rulegen_main(["--out", str(out), "--rate-window", rate_window]) == 0
    records = set()
    for path in sorted(out.glob("*.yaml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            records |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return records


def render_dashboards(out: Path, rate_window: str) -> set[str]:
    """Every recorded name the dashboards written at `rate_window` mention (queries and texts)."""
    assert dashboards_main(["--out", str(out), "--rate-window", rate_window]) == 0
    files = sorted(out.glob("*.json"))
    assert len(files) == 7
    return {name for path in files for name in RECORDED_NAME.findall(path.read_text(encoding="utf-8"))}


def test_the_dashboard_sources_spell_no_recorded_series_name() -> None:
    assert DASHBOARD_SOURCES
    spelled = {path.name: spelled_series(path.read_text(encoding="utf-8")) for path in DASHBOARD_SOURCES}
    assert {name: found for name, found in spelled.items() if found} == {}, (
        "ask gpucost.contract.recorded (board.recorded(key)) instead of writing the name"
    )


def test_the_source_scan_finds_a_hand_written_name() -> None:
    assert spelled_series('f"sum(team:gpucost_cost_usd_per_hour:rate5m{{{TEAMS}}})"') >= {
        "team:gpucost_cost_usd_per_hour:rate5m"
    }
    assert spelled_series('"sum by (model) (model_business_unit:gpucost_inference_cost_usd_per_hour"\n":rate5m)"')
    assert "pod:gpucost_gpu_utilization:avg30s" in spelled_series("(pod:gpucost_gpu_utilization:avg30s)")
    assert spelled_series('f"{rec(\'pod_cost_rate\')} over {rec.span}"') == set()


@pytest.mark.parametrize("rate_window", ["30s", "1m", "5m"])
def test_rules_and_dashboards_rendered_at_one_window_name_the_same_series(tmp_path: Path, rate_window: str) -> None:
    records = render_rules(tmp_path / "rules", rate_window)
    used = render_dashboards(tmp_path / "dashboards", rate_window)
    assert records <= recorded.names(rate_window), "a rule records a series the table does not hold"
    assert used - records == set(), f"dashboards at {rate_window} query series the {rate_window} rules never record"
    # The same series as the committed (5m) dashboards, each renamed through the table.
    committed = {name for text in rendered().values() for name in RECORDED_NAME.findall(text)}
    keys = {series.key for series in recorded.RECORDED_SERIES if series.name() in committed}
    assert used == {recorded.name(key, rate_window) for key in keys}
    assert recorded.name("team_cost_rate", rate_window) in used


def test_the_default_window_renders_the_committed_dashboards(tmp_path: Path) -> None:
    render_dashboards(tmp_path, "5m")
    for path in sorted(tmp_path.glob("*.json")):
        assert path.read_text(encoding="utf-8") == (REPO_ROOT / "dashboards" / path.name).read_text(encoding="utf-8")


def test_a_window_the_rules_reject_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dashboards_main(["--out", str(tmp_path), "--rate-window", "7m"]) == 2
    assert "rate_window" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json"))
