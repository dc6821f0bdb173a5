"""Every shipped and generated Alertmanager config passes the real `amtool`, and routes as documented."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gpucost.alerting import DeliveryMode, Settings, TeamChannel, read_budget_teams, render_config
from gpucost.contract.tiers import BUDGET_ALERT
from gpucost_testing.servers import REPO_ROOT, require_binary

BUDGET = BUDGET_ALERT

pytestmark = pytest.mark.integration

BOT_CONFIG = REPO_ROOT / "alertmanager" / "alertmanager.yml"
WEBHOOK_CONFIG = REPO_ROOT / "alertmanager" / "examples" / "webhook-per-team.yml"
EXAMPLE_BUDGETS = REPO_ROOT / "alertmanager" / "examples" / "budgets.yaml"
TEMPLATES_DIR = REPO_ROOT / "alertmanager" / "templates"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("amtool"), *args], capture_output=True, text=True, timeout=30, check=False
    )


def routed_receivers(config: Path, labels: dict[str, str]) -> list[str]:
    result = amtool(
        "config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items())
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def generated(tmp_path: Path, mode: DeliveryMode, teams: tuple[TeamChannel, ...]) -> Path:
    """A generated config whose templates path points at this checkout, so amtool parses gpucost.tmpl too."""
    path = tmp_path / f"{mode.value}.yml"
    path.write_text(render_config(Settings(mode=mode, teams=teams, templates_dir=str(TEMPLATES_DIR))))
    return path


@pytest.mark.parametrize("config", [BOT_CONFIG, WEBHOOK_CONFIG], ids=["bot", "webhook-per-team"])
def test_shipped_config_passes_amtool_check_config(config: Path) -> None:
    result = amtool("check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mode", list(DeliveryMode))
def test_generated_config_with_the_real_templates_passes_amtool_check_config(
    tmp_path: Path, mode: DeliveryMode
) -> None:
    config = generated(tmp_path, mode, read_budget_teams(EXAMPLE_BUDGETS))
    result = amtool("check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": BUDGET, "team": "nlp", "threshold": "50", "severity": "info"}, "slack-team-budgets"),
        (
            {"alertname": BUDGET, "team": "vision", "threshold": "80", "severity": "warning"},
            "slack-team-budgets",
        ),
        (
            {"alertname": BUDGET, "team": "nlp", "threshold": "100", "severity": "critical"},
            "slack-team-budgets-critical",
        ),
        (
            {"alertname": BUDGET, "team": "a-brand-new-team", "threshold": "125", "severity": "critical"},
            "slack-team-budgets-critical",
        ),
        ({"alertname": "GpuIdleWaste", "team": "nlp"}, "slack-team-alerts"),
        ({"alertname": "GpuJobCostAnomaly", "team": "nlp"}, "slack-team-alerts"),
        ({"alertname": "GpuCostExporterDown", "audience": "platform"}, "slack-platform"),
        ({"alertname": "GpuUnallocatedCost", "audience": "platform", "team": "nlp"}, "slack-platform"),
        ({"alertname": BUDGET, "team": "ops", "threshold": "5", "severity": "warning"}, "slack-team-budgets"),
        (
            {"alertname": BUDGET, "team": "ops", "threshold": "150", "severity": "critical"},
            "slack-team-budgets-critical",
        ),
        ({"alertname": BUDGET, "threshold": "80"}, "slack-platform"),
    ],
)
def test_bot_mode_routes_by_label(labels: dict[str, str], receiver: str) -> None:
    assert routed_receivers(BOT_CONFIG, labels) == [receiver]


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": BUDGET, "team": "nlp", "threshold": "50", "severity": "info"}, "team-nlp-budgets"),
        ({"alertname": BUDGET, "team": "recsys", "threshold": "80", "severity": "warning"}, "team-recsys-budgets"),
        (
            {"alertname": BUDGET, "team": "vision", "threshold": "100", "severity": "critical"},
            "team-vision-budgets-critical",
        ),
        ({"alertname": BUDGET, "team": "nlp", "threshold": "125", "severity": "critical"}, "team-nlp-budgets-critical"),
        ({"alertname": "GpuCostAnomaly", "team": "vision"}, "team-vision-alerts"),
        ({"alertname": "GpuCostForecastOverBudget", "team": "recsys"}, "team-recsys-alerts"),
        ({"alertname": "GpuCostCollectorFailing", "audience": "platform"}, "slack-platform"),
        ({"alertname": BUDGET, "team": "not-in-budgets", "threshold": "50"}, "slack-platform"),
    ],
)
def test_webhook_mode_routes_each_team_to_its_own_receiver(labels: dict[str, str], receiver: str) -> None:
    assert routed_receivers(WEBHOOK_CONFIG, labels) == [receiver]


def test_amtool_verify_receivers_fails_for_the_wrong_receiver() -> None:
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={WEBHOOK_CONFIG}",
        "--verify.receivers=team-vision-budgets",
        "team=nlp",
        f"alertname={BUDGET}",
        "threshold=50",
    )
    assert result.returncode != 0
