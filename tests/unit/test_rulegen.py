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
