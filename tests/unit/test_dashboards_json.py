"""The committed Grafana dashboards: generated, importable as-is, and consistent."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpucost.contract import tiers
from gpucost.dashboards import BUILDERS, rendered
from gpucost.dashboards.__main__ import main as dashboards_main
from gpucost_testing.servers import REPO_ROOT

DASHBOARD_DIR = REPO_ROOT / "dashboards"
UIDS = {
    "gpucost-overview",
    "gpucost-team-budget",
    "gpucost-efficiency",
    "gpucost-inference",
    "gpucost-training",
    "gpucost-exporter-health",
    "gpucost-savings",
}
WITHOUT_UNIT = {"row", "text"}
# A label matcher whose value is a literal, e.g. team="research"; `team=""` (unattributed) is allowed.
LITERAL_SCOPE = re.compile(r'\b(cluster|team|namespace|model|node|pod)\s*(=~|=|!=|!~)\s*"(?!\$)([^"]+)"')


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DASHBOARD_DIR / f"{name}.json").read_text())
    return document


def all_panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in document["panels"]:
        yield panel
        yield from panel.get("panels", [])


@pytest.fixture(params=sorted(UIDS))
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_the_seven_dashboards_are_generated_by_one_generator_with_stable_uids() -> None:
    assert set(BUILDERS) == UIDS
    assert {path.stem for path in DASHBOARD_DIR.glob("*.json")} == UIDS
    for uid in UIDS:
        assert load(uid)["uid"] == uid


def test_every_dashboard_has_the_same_schema_version() -> None:
    versions = {uid: load(uid)["schemaVersion"] for uid in UIDS}
    assert len(set(versions.values())) == 1, versions


def test_the_savings_dashboard_shows_the_scorecard_in_dollars_and_never_adds_levers_to_combined() -> None:
    document = load("gpucost-savings")
    variables = [v["name"] for v in document["templating"]["list"]]
    assert variables == ["datasource", "cluster", "team"]
    for panel in all_panels(document):
        assert panel["fieldConfig"]["defaults"]["unit"] == "currencyUSD", panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert "gpucost_savings_potential_usd_per_month" in expr, panel["title"]
            # Each query reads either the compounded total or the single levers, never both.
            assert ('lever="combined"' in expr) != ('lever!="combined"' in expr), expr


def test_committed_json_equals_the_generator_output() -> None:
    for filename, text in rendered().items():
        committed = (DASHBOARD_DIR / filename).read_text(encoding="utf-8")
        assert committed == text, f"dashboards/{filename} drifted from the generator; run `make dashboards`"


def test_check_mode_reports_a_drifted_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dashboards_main(["--out", str(tmp_path)]) == 0
    assert dashboards_main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "gpucost-overview.json").write_text("{}")
    assert dashboards_main(["--out", str(tmp_path), "--check"]) == 1
    assert "gpucost-overview.json is stale" in capsys.readouterr().err


def test_json_is_importable_as_is_into_grafana_10(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 36
    assert "__inputs" not in dashboard
    assert "__requires" not in dashboard
    assert dashboard["title"]
    assert dashboard["editable"] is True
    assert dashboard.get("id") is None


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), ids
    assert all(isinstance(panel_id, int) and panel_id > 0 for panel_id in ids)


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in all_panels(dashboard):
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0, panel["title"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r} at {(x, y)}"
                taken[(x, y)] = panel["title"]


def test_every_panel_has_a_title_description_and_unit(dashboard: dict[str, Any]) -> None:
    for panel in all_panels(dashboard):
        assert panel.get("title"), panel
        if panel["type"] in WITHOUT_UNIT:
            continue
        assert len(panel.get("description", "")) > 40, panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert panel["targets"], panel["title"]


def test_money_and_shares_use_grafana_units(dashboard: dict[str, Any]) -> None:
    for panel in all_panels(dashboard):
        if panel["type"] in WITHOUT_UNIT:
            continue
        unit = panel["fieldConfig"]["defaults"]["unit"]
        title = panel["title"]
        if "USD" in title or ("cost" in title.lower() and "share" not in title.lower()):
            assert unit == "currencyUSD", title
        if "share" in title.lower() or "efficiency" in title.lower() or "used" in title.lower():
            assert unit == "percentunit", title


def test_datasource_is_the_prometheus_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    reference = {"type": "prometheus", "uid": "${datasource}"}
    for panel in all_panels(dashboard):
        if panel["type"] in WITHOUT_UNIT:
            continue
        assert panel["datasource"] == reference, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == reference, panel["title"]
            assert target["refId"], panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == reference
            assert variable["query"].startswith("label_values("), variable["name"]


def test_every_dashboard_filters_by_the_cluster_variable(dashboard: dict[str, Any]) -> None:
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names[:2] == ["datasource", "cluster"]
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            assert 'cluster=~"$cluster"' in target["expr"], (panel["title"], target["expr"])


def test_no_query_hard_codes_a_cluster_team_or_namespace(dashboard: dict[str, Any]) -> None:
    exprs = [t["expr"] for p in all_panels(dashboard) for t in p.get("targets", [])]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    exprs += [a["expr"] for a in dashboard["annotations"].get("list", []) if "expr" in a]
    for expr in exprs:
        assert not LITERAL_SCOPE.search(expr), expr


def test_variables_for_cluster_team_model_namespace_use_label_values() -> None:
    overview = {v["name"]: v for v in load("gpucost-overview")["templating"]["list"]}
    for name in ("cluster", "team", "model", "namespace"):
        assert overview[name]["query"].startswith("label_values("), name
        assert overview[name]["includeAll"] is True
        assert overview[name]["allValue"] == ".*"
    team_budget = {v["name"]: v for v in load("gpucost-team-budget")["templating"]["list"]}
    assert team_budget["team"]["includeAll"] is False, "the team budget dashboard shows one team"


def test_dashboards_link_to_each_other_carrying_the_variables(dashboard: dict[str, Any]) -> None:
    (link,) = dashboard["links"]
    assert link["type"] == "dashboards"
    assert link["tags"] == ["gpucost"]
    assert "gpucost" in dashboard["tags"]
    assert link["includeVars"] is True and link["keepTime"] is True


def test_team_bars_on_the_overview_drill_down_to_the_team_budget() -> None:
    panel = next(p for p in all_panels(load("gpucost-overview")) if p["title"] == "Month-to-date by team")
    (link,) = panel["fieldConfig"]["defaults"]["links"]
    assert link["url"].startswith("/d/gpucost-team-budget?")
    assert "var-team=${__field.labels.team}" in link["url"]


def test_budget_panels_use_the_alert_tiers_as_thresholds() -> None:
    team_budget = {p["title"]: p for p in all_panels(load("gpucost-team-budget"))}
    tier_ratios = [tier.percent / 100 for tier in tiers.BUDGET_TIERS]
    assert tier_ratios == [0.5, 0.8, 1.0, 1.25]
    for title in ("Budget used", "Budget used, with alert bands"):
        steps = team_budget[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [step["value"] for step in steps] == [None, *tier_ratios], title
        assert [step["color"] for step in steps] == ["green", "#EAB839", "orange", "red", "dark-red"], title
    forecast = next(p for p in all_panels(load("gpucost-overview")) if p["title"] == "Forecast / budget")
    assert [step["value"] for step in forecast["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [
        None, *tier_ratios
    ]
    bands = team_budget["Budget used, with alert bands"]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]
    assert bands == {"mode": "line+area"}


def test_panels_read_recorded_series_not_heavy_raw_counters(dashboard: dict[str, Any]) -> None:
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            # The cost counters are only read through the recording rules.
            assert "gpucost_workload_gpu_cost_usd_total" not in target["expr"], panel["title"]
            assert "gpucost_container_gpu_cost_usd_total" not in target["expr"], panel["title"]
            assert "gpucost_gpu_cost_usd_total" not in target["expr"], panel["title"]


def test_panels_allowed_to_be_empty_on_a_healthy_cluster_say_so() -> None:
    for build in BUILDERS.values():
        board = build()
        panels = {p["title"]: p for p in all_panels(board.build())}
        for title, reason in board.empty_when_healthy.items():
            assert f"Empty when healthy: {reason}." in panels[title]["description"]
    allowed = {(uid, title) for uid, build in BUILDERS.items() for title in build().empty_when_healthy}
    assert {uid for uid, _ in allowed} <= {"gpucost-team-budget", "gpucost-efficiency", "gpucost-inference",
                                           "gpucost-training"}
