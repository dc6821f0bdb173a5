"""gpucost's Alertmanager config and Slack template, end to end through a real Alertmanager 0.25.

Alerts are posted to Alertmanager's API (`POST /api/v2/alerts`) as Prometheus would
send them; Alertmanager renders `alertmanager/templates/gpucost.tmpl` and posts to
a local Slack sink.  Timings are seconds (group_wait 1s, group_interval 1s).

Alertmanager 0.25's Slack notifier retries 5xx inside one flush (exponential
backoff from 0.5 s) but treats 429 as a permanent error for that flush and ignores
Retry-After; the notification log is not written, so the next flush (one
group_interval later) sends it again.  Either way a message is delivered once.

The Alertmanager and the alerts are gpucost_testing/alertmanager_slack.py's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpucost.alerting import DeliveryMode, TeamChannel
from gpucost.contract.tiers import BUDGET_ALERT
from gpucost_testing.alertmanager_slack import (
    budget_alert,
    plain_alert,
    post_alerts,
    settle_and_get,
    start_gpucost_alertmanager,
)
from gpucost_testing.servers import ManagedProcess
from gpucost_testing.slack_sink import SlackSink, render_slack_message

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def sink() -> Iterator[SlackSink]:
    with SlackSink() as running_sink:
        yield running_sink


@pytest.fixture
def bot_alertmanager(tmp_path: Path, sink: SlackSink) -> Iterator[ManagedProcess]:
    with start_gpucost_alertmanager(tmp_path, sink, DeliveryMode.BOT) as alertmanager:
        yield alertmanager


# --- bot token mode (chat.postMessage) -----------------------------------------------


def test_bot_mode_posts_each_team_only_its_highest_tier_in_its_own_channel(
    sink: SlackSink, bot_alertmanager: ManagedProcess
) -> None:
    nlp = [budget_alert("nlp", "50", spend="10,000.00")]
    vision = [
        budget_alert("vision", "50", spend="6,000.00", budget="12,000.00", slack_channel="#vision-budget")
    ]
    post_alerts(bot_alertmanager, nlp + vision)
    sink.wait_for(2, 15, delivered_only=True)

    nlp.append(budget_alert("nlp", "80", spend="16,000.00"))
    post_alerts(bot_alertmanager, nlp + vision)
    sink.wait_for(3, 15, delivered_only=True)

    nlp.append(budget_alert("nlp", "100", spend="20,050.00", percent="100"))
    vision += [
        budget_alert("vision", "80", spend="9,600.00", budget="12,000.00", slack_channel="#vision-budget"),
        budget_alert("vision", "100", spend="12,000.00", budget="12,000.00", slack_channel="#vision-budget"),
    ]
    post_alerts(bot_alertmanager, nlp + vision)
    settle_and_get(sink, 5)

    nlp_messages = sink.messages("#team-nlp-alerts")
    assert [m.title for m in nlp_messages] == [
        "📊 nlp Spend Alert",
        "⚠️ nlp Spend Alert",
        "🚨 nlp Spend Alert",
    ]
    assert [
        (m.field("Current Spend"), m.field("Monthly Budget"), m.field("Budget Used")) for m in nlp_messages
    ] == [
        ("$10,000.00", "$20,000.00", "at least 50%"),
        ("$16,000.00", "$20,000.00", "at least 80%"),
        ("$20,050.00", "$20,000.00", "at least 100%"),
    ]
    assert [m.attachments[0]["color"] for m in nlp_messages] == ["good", "warning", "danger"]
    assert nlp_messages[1].attachments[0]["text"] == (
        "Review inference costs for model-v3.\nForecast for the month: *$24,000.00* · Top model: *model-v3*"
    )
    assert nlp_messages[2].attachments[0]["text"].startswith("Budget exceeded. Immediate action required.\n")

    # vision's budget carries slack_channel, which wins over #team-vision-alerts; 80 % was inhibited by 100 %.
    vision_messages = sink.messages("#vision-budget")
    assert [m.title for m in vision_messages] == ["📊 vision Spend Alert", "🚨 vision Spend Alert"]
    assert vision_messages[1].field("Current Spend") == "$12,000.00"
    assert sink.messages("#team-vision-alerts") == []


def test_a_budget_with_its_own_tiers_5_and_90_gets_a_message_at_each_and_90_silences_5(
    sink: SlackSink, bot_alertmanager: ManagedProcess
) -> None:
    # thresholds_percent: [5, 90]: the rule fires with threshold "5" (rank 0), later "90" (rank 1),
    # both under the budget, so both warn in the generic wording and neither sends a resolved.
    five = budget_alert("ops", "5", spend="120.00", budget="2,000.00", percent="6", tier="0")
    post_alerts(bot_alertmanager, [five])
    sink.wait_for(1, 15, delivered_only=True)
    ninety = budget_alert("ops", "90", spend="1,820.00", budget="2,000.00", percent="91", tier="1")
    post_alerts(bot_alertmanager, [five, ninety])
    messages = settle_and_get(sink, 2)

    assert [m.channel for m in messages] == ["#team-ops-alerts", "#team-ops-alerts"]
    assert [m.title for m in messages] == ["⚠️ ops Spend Alert", "⚠️ ops Spend Alert"]
    assert [m.attachments[0]["color"] for m in messages] == ["warning", "warning"]
    assert [m.attachments[0]["footer"] for m in messages] == [
        "gpucost · budget ops-monthly · 5% tier",
        "gpucost · budget ops-monthly · 90% tier",
    ]
    assert messages[0].attachments[0]["text"].startswith("5% of this month's budget is used.\n")
    assert messages[1].attachments[0]["text"].startswith("90% of this month's budget is used.\n")
    assert [m.field("Budget Used") for m in messages] == ["at least 6%", "at least 91%"]

    # Both tiers reached at once (another budget): only the higher one speaks.
    post_alerts(
        bot_alertmanager,
        [
            budget_alert("infra", "5", spend="1,900.00", budget="2,000.00", percent="95", tier="0"),
            budget_alert("infra", "90", spend="1,900.00", budget="2,000.00", percent="95", tier="1"),
        ],
    )
    [infra] = settle_and_get(sink, 3)[2:]
    assert infra.attachments[0]["footer"] == "gpucost · budget infra-monthly · 90% tier"


def test_a_custom_tier_over_the_budget_is_critical_and_says_so(
    sink: SlackSink, bot_alertmanager: ManagedProcess
) -> None:
    post_alerts(bot_alertmanager, [budget_alert("ops", "150", spend="3,100.00", budget="2,000.00", tier="2")])
    [message] = settle_and_get(sink, 1)
    assert message.title == "🚨 ops Spend Alert"
    assert message.attachments[0]["color"] == "danger"
    assert message.attachments[0]["text"].startswith("Spend is past 150% of budget. Immediate action required.\n")


def test_a_tier_message_past_its_tier_states_the_tier_and_a_lower_bound(
    sink: SlackSink, bot_alertmanager: ManagedProcess
) -> None:
    # The demo's case: month-to-date spend advances a whole rate-window tile at a time and lags real
    # spend, so the first value recorded past 50 % was 69 %.  The message names the tier reached and
    # gives the recorded share as what it is, a lower bound: spend has only grown since.
    post_alerts(bot_alertmanager, [budget_alert("research", "50", spend="76.00", budget="110.00", percent="69")])
    [message] = settle_and_get(sink, 1)
    attachment = message.attachments[0]
    assert message.title == "📊 research Spend Alert"
    assert attachment["text"].startswith("Half of this month's budget is used.\n")
    assert (message.field("Current Spend"), message.field("Monthly Budget"), message.field("Budget Used")) == (
        "$76.00", "$110.00", "at least 69%")
    assert attachment["footer"] == "gpucost · budget research-monthly · 50% tier"
    assert attachment["fallback"] == "📊 research Spend Alert: $76.00 of $110.00 (at least 69%)"


def test_bot_mode_request_is_what_chat_post_message_expects(
    sink: SlackSink, bot_alertmanager: ManagedProcess
) -> None:
    post_alerts(bot_alertmanager, [budget_alert("nlp", "80", spend="16,000.00")])
    [message] = settle_and_get(sink, 1)

    assert message.path == "/api/chat.postMessage"
    assert message.headers["Authorization"] == "Bearer xoxb-fake-test-token"
    assert message.headers["Content-Type"].startswith("application/json")
    attachment = message.attachments[0]
    assert attachment["actions"] == [
        {
            "type": "button",
            "text": "Open dashboard",
            "url": "https://grafana.example/d/gpucost-team?var-team=nlp",
        },
        {"type": "button", "text": "Runbook", "url": "https://runbooks.example/gpucost#budget"},
    ]
    assert attachment["title_link"] == "https://grafana.example/d/gpucost-team?var-team=nlp"
    assert attachment["footer"] == "gpucost · budget nlp-monthly · 80% tier"
    assert attachment["fallback"] == "⚠️ nlp Spend Alert: $16,000.00 of $20,000.00 (at least 80%)"
    assert [f["short"] for f in attachment["fields"]] == [True, True, True]


def test_team_name_with_markup_is_escaped_and_cannot_add_a_link(
    sink: SlackSink, bot_alertmanager: ManagedProcess
) -> None:
    team = 'ml<&*"team'
    injected_model = "<https://evil.example/|click me>"
    post_alerts(
        bot_alertmanager,
        [
            budget_alert(team, threshold, spend="20,100.00", percent=threshold, top_model=injected_model)
            for threshold in ("50", "80", "100")
        ],
    )
    [message] = settle_and_get(sink, 1)

    json.loads(message.raw_body)  # Alertmanager's own JSON encoding survived the quotes
    assert message.channel == '#team-ml<&*"team-alerts'
    attachment = message.attachments[0]
    assert attachment["title"] == '🚨 ml&lt;&amp;*"team Spend Alert'
    assert "&lt;https://evil.example/|click me&gt;" in attachment["text"]
    assert "<https://" not in attachment["text"]
    rendered = render_slack_message(message)
    assert '🚨 ml<&*"team Spend Alert' in rendered
    assert "click me (https://evil.example/)" not in rendered


def test_125_percent_supersedes_100_and_says_when_spend_is_back_under(
    sink: SlackSink, bot_alertmanager: ManagedProcess
) -> None:
    over = budget_alert("search", "100", spend="26,000.00", percent="130")
    far_over = budget_alert("search", "125", spend="26,000.00", percent="130")
    post_alerts(bot_alertmanager, [over, far_over])
    [first] = settle_and_get(sink, 1)
    assert first.title == "🚨 search Spend Alert"
    assert first.attachments[0]["footer"].endswith("125% tier")

    # The budget was raised to 22,000: 125 % resolves, 100 % (inhibited until now) speaks.
    raised = budget_alert("search", "100", spend="26,000.00", budget="22,000.00", percent="118")
    resolved = budget_alert(
        "search", "125", spend="26,000.00", budget="22,000.00", percent="118", ends_at=datetime.now(UTC)
    )
    post_alerts(bot_alertmanager, [raised, resolved])
    messages = settle_and_get(sink, 3)[1:]
    by_footer = {m.attachments[0]["footer"]: m for m in messages}
    assert by_footer["gpucost · budget search-monthly · 125% tier"].title == "✅ search Spend Alert resolved"
    assert by_footer["gpucost · budget search-monthly · 125% tier"].attachments[0]["color"] == "good"
    assert by_footer["gpucost · budget search-monthly · 100% tier"].title == "🚨 search Spend Alert"
    assert by_footer["gpucost · budget search-monthly · 100% tier"].field("Budget Used") == "at least 118%"
    # A resolved message reports the last value, not a lower bound on spend now.
    assert by_footer["gpucost · budget search-monthly · 125% tier"].field("Budget Used") == "118%"


def test_non_budget_alerts_go_to_the_team_or_platform_channel_by_label(
    sink: SlackSink, bot_alertmanager: ManagedProcess
) -> None:
    exporter = {
        "audience": "platform",
        "cluster": "east",
        "job": "gpucost",
        "instance": "node-a:9835",
        "severity": "critical",
    }
    post_alerts(
        bot_alertmanager,
        [
            plain_alert(
                "GpuIdleWaste", {"team": "nlp", "cluster": "west", "severity": "warning"}, "nlp idles 3 GPUs"
            ),
            plain_alert("GpuCostExporterDown", exporter, "gpucost exporter on node-a is down"),
            # Computed from the down exporter's data: inhibited (same job/instance; same cluster).
            plain_alert("GpuCostUnpricedGpus", {**exporter, "severity": "warning"}, "2 GPUs have no price"),
            plain_alert(
                "GpuCostAnomaly", {"team": "nlp", "cluster": "east", "severity": "warning"}, "spend fell"
            ),
            plain_alert(
                "GpuCostPricesStale", {"audience": "platform", "severity": "warning"}, "prices are 9 days old"
            ),
        ],
    )
    settle_and_get(sink, 3)

    [idle] = sink.messages("#team-nlp-alerts")
    assert idle.title == "⚠️ GpuIdleWaste · nlp"
    assert idle.attachments[0]["text"].startswith("*nlp idles 3 GPUs*\nnlp idles 3 GPUs (details)\n")
    assert "<https://rb.example|Runbook>" in idle.attachments[0]["text"]
    platform_titles = sorted(m.title for m in sink.messages("#gpucost-platform"))
    assert platform_titles == ["⚠️ GpuCostPricesStale", "🚨 GpuCostExporterDown"]


# --- Slack failures: delivered once, not lost, not duplicated --------------------------------


@pytest.mark.parametrize(
    ("failure", "why"),
    [
        ((429, {"Retry-After": "1"}), "not retried in the flush; sent again at the next group_interval"),
        ((500, {}), "retried with backoff inside the same flush"),
    ],
)
def test_slack_failure_then_success_delivers_exactly_once(
    sink: SlackSink, bot_alertmanager: ManagedProcess, failure: tuple[int, dict[str, str]], why: str
) -> None:
    sink.script([failure])
    post_alerts(bot_alertmanager, [budget_alert("nlp", "80", spend="16,000.00")])
    [delivered] = settle_and_get(sink, 1)

    assert [r.status for r in sink.requests] == [failure[0], 200], why
    assert delivered.title == "⚠️ nlp Spend Alert"
    first, second = sink.requests
    assert first.body == second.body


# --- incoming webhook per team ------------------------------------------------------------


def test_webhook_mode_posts_to_each_teams_own_webhook(tmp_path: Path, sink: SlackSink) -> None:
    teams = (TeamChannel("nlp", "#team-nlp-alerts"), TeamChannel("vision", "#vision-budget"))
    with start_gpucost_alertmanager(tmp_path, sink, DeliveryMode.WEBHOOK, teams) as alertmanager:
        post_alerts(
            alertmanager,
            [
                budget_alert("nlp", "80", spend="16,000.00"),
                budget_alert("nlp", "50", spend="16,000.00"),
                budget_alert("vision", "100", spend="12,500.00", budget="12,000.00", percent="104"),
                # A team without a webhook still reaches a human: the platform channel.
                budget_alert("unlisted", "50", spend="1,000.00", budget="2,000.00"),
            ],
        )
        settle_and_get(sink, 3)

    [nlp] = sink.messages(path="/services/T000/B000/nlp")
    assert (nlp.title, nlp.channel, nlp.field("Budget Used")) == (
        "⚠️ nlp Spend Alert",
        "#team-nlp-alerts",
        "at least 80%",
    )
    assert "Authorization" not in nlp.headers
    [vision] = sink.messages(path="/services/T000/B000/vision")
    assert (vision.title, vision.channel, vision.field("Budget Used")) == (
        "🚨 vision Spend Alert",
        "#vision-budget",
        "at least 104%",
    )
    [unlisted] = sink.messages(path="/services/T000/B000/platform")
    assert unlisted.title == f"ℹ️ {BUDGET_ALERT} · unlisted"
