"""What the Helm chart ships, rendered by the real helm binary: the rule files as PrometheusRules,
the dashboards as ConfigMaps, and the Alertmanager templates and per-team routes.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.chartfiles import main as chartfiles_main
from gpucost_testing.helm_render import CHART, OPERATOR_API, Manifest, of_kind, one, render, run_helm

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _route_receivers(route: Mapping[str, Any]) -> Iterator[str]:
    yield route["receiver"]
    for child in route.get("routes", []):
        yield from _route_receivers(child)


def _rule_files() -> dict[str, Any]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted((REPO / "rules").glob("*.yaml"))}


def test_the_prometheus_rules_are_exactly_the_rule_files() -> None:
    rules = of_kind(render(CHART / "ci" / "operator-values.yaml"), "PrometheusRule")
    rendered = {rule["metadata"]["annotations"]["gpucost.io/rule-file"]: rule["spec"] for rule in rules}
    expected = _rule_files()
    assert len(expected) >= 4
    assert set(rendered) == set(expected)
    for name, document in expected.items():
        assert rendered[name]["groups"] == document["groups"], name
    # Prometheus templates ({{ $labels.team }}) reach the rules untouched by Helm.
    alerts = json.dumps(rendered["gpucost.alerts.yaml"])
    assert "{{ $labels.job }}" in alerts


def test_rule_files_can_be_left_out() -> None:
    rules = of_kind(
        render(sets=("prometheusRule.excludeFiles={gpucost.inference.rules.yaml}",), api_versions=(OPERATOR_API,)),
        "PrometheusRule",
    )
    files = {rule["metadata"]["annotations"]["gpucost.io/rule-file"] for rule in rules}
    assert files == set(_rule_files()) - {"gpucost.inference.rules.yaml"}


def _dashboard_data(manifests: Sequence[Manifest]) -> dict[str, str]:
    data: dict[str, str] = {}
    for config_map in of_kind(manifests, "ConfigMap"):
        if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
            assert len(config_map["data"]) == 1
            data.update(config_map["data"])
    return data


def test_the_dashboard_configmaps_are_exactly_the_dashboard_files() -> None:
    expected = {path.name: path.read_text() for path in sorted((REPO / "dashboards").glob("*.json"))}
    rendered = _dashboard_data(render())
    assert set(rendered) == set(expected)
    for name, text in expected.items():
        assert rendered[name] == text.rstrip("\n"), name
        json.loads(rendered[name])


def test_a_new_dashboard_file_is_picked_up_without_a_template_change(tmp_path: Path) -> None:
    # A copy of the repository layout with one more dashboard; `make dashboards` syncs the chart's copies.
    shutil.copytree(CHART, tmp_path / "helm" / "gpucost")
    for directory in ("rules", "alertmanager", "dashboards"):
        shutil.copytree(REPO / directory, tmp_path / directory)
    board = {"title": "New board", "uid": "gpucost-new", "panels": []}
    (tmp_path / "dashboards" / "gpucost-new_board.json").write_text(json.dumps(board))
    assert chartfiles_main(["--repo", str(tmp_path)]) == 0
    rendered = _dashboard_data(render(chart=tmp_path / "helm" / "gpucost"))
    assert json.loads(rendered["gpucost-new_board.json"]) == board
    assert len(rendered) == len(list((REPO / "dashboards").glob("*.json"))) + 1
    names = [m["metadata"]["name"] for m in render(chart=tmp_path / "helm" / "gpucost")]
    assert "gpucost-dashboard-new-board" in names


def test_a_chart_copied_out_of_the_repository_renders_the_same_without_warnings(tmp_path: Path) -> None:
    copy = tmp_path / "gpucost"
    shutil.copytree(CHART, copy)
    values = CHART / "ci" / "operator-values.yaml"
    assert render(values, chart=copy) == render(values)
    result = run_helm(["lint", "--strict", str(copy), "-f", str(values)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "symbolic link" not in result.stdout + result.stderr


def test_the_alertmanager_templates_configmap_is_the_template_files() -> None:
    manifests = render(CHART / "ci" / "operator-values.yaml")
    config_map = next(m for m in of_kind(manifests, "ConfigMap") if m["metadata"]["name"].endswith("-templates"))
    expected = {p.name: p.read_text().rstrip("\n") for p in (REPO / "alertmanager" / "templates").glob("*.tmpl")}
    assert config_map["data"] == expected


def test_the_alertmanager_config_routes_every_team_with_templates_that_exist() -> None:
    values = CHART / "ci" / "operator-values.yaml"
    config = one(render(values, sets=("budgets.spec.budgets[0].name=ml-monthly",
                                       "budgets.spec.budgets[0].scope.team=ml",
                                       "budgets.spec.budgets[0].monthly_usd=1000")), "AlertmanagerConfig")
    routes = config["spec"]["route"]["routes"]
    teams = {m["value"] for route in routes for m in route["matchers"] if m["name"] == "team"}
    assert teams == {"ml", "nlp", "vision"}
    receivers = {r["name"] for r in config["spec"]["receivers"]}
    assert set(_route_receivers(config["spec"]["route"])) <= receivers
    defined = set(re.findall(r'define "([^"]+)"', (REPO / "alertmanager" / "templates" / "gpucost.tmpl").read_text()))
    used = set(re.findall(r'template "([^"]+)"', json.dumps(config["spec"]["receivers"]).replace('\\"', '"')))
    assert used
    assert used <= defined
    critical = next(r for r in config["spec"]["receivers"] if r["name"] == "ml-budgets-critical")
    assert critical["slackConfigs"][0]["sendResolved"] is True
    assert critical["slackConfigs"][0]["httpConfig"]["authorization"]["credentials"] == {
        "name": "gpucost-slack", "key": "bot-token"}


def test_webhook_mode_reads_one_secret_key_per_team() -> None:
    config = one(render(CHART / "ci" / "podmonitor-values.yaml"), "AlertmanagerConfig")
    keys = {c["apiURL"]["key"] for r in config["spec"]["receivers"] for c in r.get("slackConfigs", [])}
    assert keys == {"slack-webhook-team-research"}
