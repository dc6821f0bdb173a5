"""The committed rule files pass `promtool check rules` and their promtool unit tests,
and every alert has a runbook section (and every section an alert)."""

from __future__ import annotations

import re
import subprocess

import pytest

from gpucost.contract.tiers import BUDGET_ALERT
from gpucost_testing.servers import REPO_ROOT, require_binary

RULES_DIR = REPO_ROOT / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))
# The sidecar's and the inference tests run in test_budgets_rules.py and test_inference_rules_promtool.py.
TEST_FILES = [
    RULES_DIR / "tests" / "gpucost.rules.test.yaml",
    RULES_DIR / "tests" / "gpucost.alerts.test.yaml",
    RULES_DIR / "tests" / "gpucost.budgets.month.test.yaml",
]

pytestmark = pytest.mark.integration


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("promtool"), *args], capture_output=True, text=True, timeout=120, check=False)


def test_rule_files_pass_promtool_check() -> None:
    result = _promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(test_file: object) -> None:
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_section_and_every_section_an_alert() -> None:
    alerts = {
        name
        for rule_file in sorted(RULES_DIR.glob("*.yaml"))
        for name in re.findall(r"^\s*- alert: (\S+)$", rule_file.read_text(), flags=re.MULTILINE)
    }
    sections = set(re.findall(r"^## (\S+)$", (REPO_ROOT / "docs" / "runbooks.md").read_text(), re.MULTILINE))
    assert alerts, "no alerts found"
    assert alerts == sections


def test_the_budget_tier_tests_cover_listed_and_custom_tiers_and_a_month_boundary() -> None:
    alerts = (RULES_DIR / "tests" / "gpucost.alerts.test.yaml").read_text()
    assert f"alertname: {BUDGET_ALERT}" in alerts
    assert 'threshold: "50", tier: "0", severity: info' in alerts
    assert 'threshold: "5", tier: "0", severity: warning' in alerts
    assert 'threshold: "90", tier: "1", severity: warning' in alerts
    month = (RULES_DIR / "tests" / "gpucost.budgets.month.test.yaml").read_text()
    assert "eval_time: 745h\n        exp_alerts: []" in month
