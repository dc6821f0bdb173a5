"""A real Alertmanager with gpucost's generated config posting to the Slack sink, and the alerts
Prometheus would post to it (exactly the labels and annotations of gpucost's alert contract).

Timings are seconds (group_wait 1s, group_interval 1s), secrets are files, and Slack's API URL
and every team's webhook point at the sink.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from gpucost.alerting import DeliveryMode, Settings, TeamChannel, Timings, render_config
from gpucost.contract.tiers import BUDGET_ALERT, BUDGET_TIERS, tier_for
from gpucost_testing.servers import REPO_ROOT, ManagedProcess, http_post_json, start_alertmanager
from gpucost_testing.slack_sink import SlackSink, render_slack_message

TEMPLATES_DIR = REPO_ROOT / "alertmanager" / "templates"
FAST = Timings(
    group_wait="1s",
    group_interval="1s",
    repeat_interval="1h",
    budget_repeat_interval={"50": "1h", "80": "1h", "100": "1h", "125": "1h"},
)
# How long to keep watching after the expected messages so that an extra one would show up.
SETTLE_SECONDS = 3.0

# The rank of each listed tier in a budget that lists all four (the rule's `tier` label).
LISTED_RANK = {tier.label: str(rank) for rank, tier in enumerate(BUDGET_TIERS)}


def budget_alert(
    team: str,
    threshold: str,
    *,
    spend: str,
    budget: str = "20,000.00",
    percent: str | None = None,
    budget_name: str | None = None,
    slack_channel: str | None = None,
    forecast: str = "24,000.00",
    top_model: str = "model-v3",
    ends_at: datetime | None = None,
    tier: str | None = None,
) -> dict[str, Any]:
    """A budget alert with exactly the contract's labels and annotations.

    `threshold` is the tier's percent as the rule writes it; `tier` its rank among the budget's
    thresholds (default: its rank among the four listed tiers).
    """
    labels = {
        "alertname": BUDGET_ALERT,
        "team": team,
        "budget": budget_name or f"{team}-monthly",
        "threshold": threshold,
        "tier": tier if tier is not None else LISTED_RANK[threshold],
        "severity": tier_for(float(threshold)).severity,
    }
    if slack_channel:
        labels["slack_channel"] = slack_channel
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "current_spend_usd": spend,
            "budget_usd": budget,
            "percent_used": percent or threshold,
            "forecast_usd": forecast,
            "top_model": top_model,
            "summary": f"{team} used {percent or threshold}% of budget {labels['budget']}",
            "description": f"Month-to-date GPU spend is ${spend} of ${budget}.",
            "runbook_url": "https://runbooks.example/gpucost#budget",
            "dashboard_url": f"https://grafana.example/d/gpucost-team?var-team={team}",
        },
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


def plain_alert(alertname: str, labels: Mapping[str, str], summary: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": alertname, **labels},
        "annotations": {
            "summary": summary,
            "description": f"{summary} (details)",
            "runbook_url": "https://rb.example",
        },
    }


def post_alerts(alertmanager: ManagedProcess, alerts: list[dict[str, Any]]) -> None:
    http_post_json(alertmanager.base_url + "/api/v2/alerts", alerts)


def start_gpucost_alertmanager(
    tmp_path: Path, sink: SlackSink, mode: DeliveryMode, teams: tuple[TeamChannel, ...] = ()
) -> ManagedProcess:
    """Alertmanager with the generated config, Slack pointed at the sink, secrets in files."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "slack-bot-token").write_text("xoxb-fake-test-token\n")
    (secrets / "slack-webhook-platform").write_text(sink.webhook_url("platform") + "\n")
    for team in teams:
        (secrets / f"slack-webhook-team-{team.team}").write_text(sink.webhook_url(team.team) + "\n")
    settings = Settings(
        mode=mode,
        teams=teams,
        secrets_dir=str(secrets),
        templates_dir=str(TEMPLATES_DIR),
        slack_api_url=sink.chat_post_message_url,
        timings=FAST,
    )
    config = tmp_path / "alertmanager.yml"
    config.write_text(render_config(settings))
    return start_alertmanager(tmp_path, config)


def settle_and_get(sink: SlackSink, expected: int, timeout: float = 15.0) -> list[Any]:
    """Wait for `expected` delivered messages, then make sure no more arrive."""
    sink.wait_for(expected, timeout, delivered_only=True)
    time.sleep(SETTLE_SECONDS)
    delivered = sink.messages()
    assert len(delivered) == expected, [render_slack_message(m) for m in delivered]
    return delivered
