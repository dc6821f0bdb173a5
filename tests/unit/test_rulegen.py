"""The rule generator: the committed files are its default output; options change the rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gpucost.contract import recorded
from gpucost.contract.tiers import BUDGET_ALERT, BUDGET_TIERS, ratio_label
from gpucost.rulegen import (
    GENERATED_FILES,
    RuleOptions,
    alert_names,
    render_alerts,
    render_all,
    render_rules,
    render_sidecar_rules,
)
from gpucost.rulegen.__main__ import main
from gpucost_testing.servers import REPO_ROOT


@pytest.mark.parametrize("file_name", GENERATED_FILES)
def test_committed_rule_files_match_the_generator_default_output(file_name: str) -> None:
    committed = (REPO_ROOT / "rules" / file_name).read_text()
    assert committed == render_all(RuleOptions())[file_name], f"rules/{file_name} drifted: run `make rules`"


def test_every_rule_file_under_rules_is_generated() -> None:
    assert sorted(path.name for path in (REPO_ROOT / "rules").glob("*.yaml")) == sorted(GENERATED_FILES)


def _records(text: str) -> list[str]:
    document = yaml.safe_load(text)
    return [rule["record"] for group in document["groups"] for rule in group["rules"] if "record" in rule]


@pytest.mark.parametrize("rate_window", ["5m", "30s"])
def test_every_recorded_name_comes_from_the_table_and_every_entry_is_recorded(rate_window: str) -> None:
    options = RuleOptions(rate_window=rate_window)
    texts = render_all(options)
    for file_name, text in texts.items():
        table = {s.name(rate_window) for s in recorded.RECORDED_SERIES if s.rule_file == file_name}
        assert set(_records(text)) == table, file_name
    groups = {
        (group["name"], rule["record"])
        for text in texts.values()
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    assert {(s.group, s.name(rate_window)) for s in recorded.RECORDED_SERIES} == groups


def test_the_sidecar_rules_read_the_team_rate_under_the_rate_window() -> None:
    text = render_sidecar_rules(RuleOptions(rate_window="30s"))
    assert "team:gpucost_cost_usd_per_hour:rate30s" in text
    assert "rate5m" not in text


def test_rate_window_option_renames_and_rewindows_the_rate_series() -> None:
    rules = render_rules(RuleOptions(rate_window="2m"))
    assert "team:gpucost_cost_usd_per_hour:rate2m" in rules
    assert "[2m]" in rules
    assert "rate5m" not in rules


def test_every_alert_has_summary_description_runbook_and_severity() -> None:
    document = yaml.safe_load(render_alerts(RuleOptions()))
    for group in document["groups"]:
        for rule in group["rules"]:
            assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
            severity = rule["labels"]["severity"]
            # The budget rule picks its severity per tier in a template; every branch is one of the three.
            branches = set(re.findall(r"\}\}(\w+)\{\{", severity)) if "{{" in severity else {severity}
            assert branches <= {"critical", "warning", "info"}, branches
            assert rule["annotations"]["runbook_url"].endswith("#" + rule["alert"].lower())


def test_one_budget_rule_serves_every_tier_with_the_tier_as_labels() -> None:
    assert alert_names()[:2] == [BUDGET_ALERT, "GpuCostForecastOverBudget"]
    document = yaml.safe_load(render_alerts(RuleOptions()))
    [rule] = [r for g in document["groups"] for r in g["rules"] if r.get("alert") == BUDGET_ALERT]
    assert "gpucost_budget_threshold_ratio ==" not in rule["expr"]
    assert "max by (budget, threshold) (gpucost_budget_threshold_ratio)" in rule["expr"]
    assert set(rule["labels"]) == {"threshold", "tier", "severity"}
    for tier in BUDGET_TIERS:
        assert f'eq $labels.threshold "{ratio_label(tier.percent)}" }}}}{tier.severity}' in rule["labels"]["severity"]


def test_rate_window_that_does_not_tile_the_hour_is_rejected() -> None:
    with pytest.raises(ValueError, match="divide 1h"):
        RuleOptions(rate_window="7m")


def test_cli_writes_both_files_with_options(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--idle-for", "3h"]) == 0
    alerts = (tmp_path / "gpucost.alerts.yaml").read_text()
    assert "for: 3h" in alerts
    assert sorted(path.name for path in tmp_path.glob("*.yaml")) == sorted(GENERATED_FILES)
    assert main(["--out", str(tmp_path), "--rate-window", "10m"]) == 2


def _exporter_down_expr(options: RuleOptions) -> str:
    document = yaml.safe_load(render_alerts(options))
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    expr: str = next(rule for rule in rules if rule["alert"] == "GpuCostExporterDown")["expr"]
    return expr


def test_exporter_down_watches_the_exact_job_and_fires_when_the_job_is_gone() -> None:
    assert RuleOptions().exporter_job == "gpucost-exporter"  # the chart's ServiceMonitor/PodMonitor job
    expr = _exporter_down_expr(RuleOptions(exporter_job="gpucost-exporter-east"))
    assert 'up{job="gpucost-exporter-east"} == 0' in expr
    assert 'absent(up{job="gpucost-exporter-east"})' in expr
    assert "=~" not in expr


@pytest.mark.parametrize("job", ["", 'a"b', "a b", "x}"])
def test_an_exporter_job_that_cannot_be_a_label_value_in_a_selector_is_rejected(job: str) -> None:
    with pytest.raises(ValueError, match="exporter_job"):
        RuleOptions(exporter_job=job)


def test_cli_takes_the_exporter_job(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--exporter-job", "gpucost"]) == 0
    assert 'absent(up{job="gpucost"})' in (tmp_path / "gpucost.alerts.yaml").read_text()
