"""Every shipped and generated Alertmanager config passes the real `amtool`, and routes as documented."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gpucost.alerting import DeliveryMode, Settings, TeamChannel, read_budget_teams, render_config
from tests.support.servers import REPO_ROOT, require_binary

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
        ({"alertname": "GpuCostBudget50PercentUsed", "team": "nlp", "threshold": "50"}, "slack-team-budgets"),
        (
            {"alertname": "GpuCostBudget80PercentUsed", "team": "vision", "threshold": "80"},
            "slack-team-budgets",
        ),
        (
            {"alertname": "GpuCostBudget100PercentUsed", "team": "nlp", "threshold": "100"},
            "slack-team-budgets-critical",
        ),
        (
            {"alertname": "GpuCostBudget125PercentUsed", "team": "a-brand-new-team", "threshold": "125"},
            "slack-team-budgets-critical",
        ),
        ({"alertname": "GpuIdleWaste", "team": "nlp"}, "slack-team-alerts"),
        ({"alertname": "GpuJobCostAnomaly", "team": "nlp"}, "slack-team-alerts"),
        ({"alertname": "GpuCostExporterDown", "audience": "platform"}, "slack-platform"),
        ({"alertname": "GpuUnallocatedCost", "audience": "platform", "team": "nlp"}, "slack-platform"),
        ({"alertname": "GpuCostBudget80PercentUsed"}, "slack-platform"),
    ],
)
def test_bot_mode_routes_by_label(labels: dict[str, str], receiver: str) -> None:
    assert routed_receivers(BOT_CONFIG, labels) == [receiver]


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "GpuCostBudget50PercentUsed", "team": "nlp"}, "team-nlp-budgets"),
        ({"alertname": "GpuCostBudget80PercentUsed", "team": "recsys"}, "team-recsys-budgets"),
        ({"alertname": "GpuCostBudget100PercentUsed", "team": "vision"}, "team-vision-budgets-critical"),
        ({"alertname": "GpuCostBudget125PercentUsed", "team": "nlp"}, "team-nlp-budgets-critical"),
        ({"alertname": "GpuCostAnomaly", "team": "vision"}, "team-vision-alerts"),
        ({"alertname": "GpuCostForecastOverBudget", "team": "recsys"}, "team-recsys-alerts"),
        ({"alertname": "GpuCostCollectorFailing", "audience": "platform"}, "slack-platform"),
        ({"alertname": "GpuCostBudget50PercentUsed", "team": "not-in-budgets"}, "slack-platform"),
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
        "alertname=GpuCostBudget50PercentUsed",
    )
    assert result.returncode != 0
