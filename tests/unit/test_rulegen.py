"""The rule generator: the committed files are its default output; options change the rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gpucost.rulegen import RuleOptions, alert_names, render_alerts, render_rules
from gpucost.rulegen.__main__ import main
from tests.support.servers import REPO_ROOT


def test_committed_rule_files_match_the_generator_default_output() -> None:
    assert (REPO_ROOT / "rules" / "gpucost.rules.yaml").read_text() == render_rules(RuleOptions())
    assert (REPO_ROOT / "rules" / "gpucost.alerts.yaml").read_text() == render_alerts(RuleOptions())


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
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["runbook_url"].endswith("#" + rule["alert"].lower())


def test_budget_tier_alerts_have_the_contracted_names() -> None:
    assert alert_names()[:4] == [
        "GpuCostBudget50PercentUsed",
        "GpuCostBudget80PercentUsed",
        "GpuCostBudget100PercentUsed",
        "GpuCostBudget125PercentUsed",
    ]


def test_rate_window_that_does_not_tile_the_hour_is_rejected() -> None:
    with pytest.raises(ValueError, match="divide 1h"):
        RuleOptions(rate_window="7m")


def test_cli_writes_both_files_with_options(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--idle-for", "3h"]) == 0
    alerts = (tmp_path / "gpucost.alerts.yaml").read_text()
    assert "for: 3h" in alerts
    assert (tmp_path / "gpucost.rules.yaml").exists()
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
