"""The weekly Slack digest over a real HTTP Slack stand-in: Block Kit content, 429 retried and delivered once,
and the scorecard's top saving computed from the same (backfilled) Prometheus."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path

import pytest

from gpucost.budgets.digest import (
    TeamDigest,
    default_channel,
    gather_team_digest,
    make_slack_client,
    render_blocks,
    send_digest,
)
from gpucost.budgets.spec import Month, parse_budget_file
from gpucost.budgets.top_saving import ScorecardTopSavings
from gpucost.promapi import PrometheusClient
from gpucost_testing.servers import require_binary, start_prometheus, write_prometheus_config
from gpucost_testing.slack_sink import SlackSink

pytestmark = pytest.mark.integration

DIGEST = TeamDigest(
    team="research",
    month=Month(2026, 11),
    month_to_date_usd=41000.0,
    forecast_usd=52000.0,
    budget_usd=50000.0,
    top_models=(("llama-70b", 30000.0), ("mistral-7b", 8000.0)),
    idle_usd_per_hour=12.5,
)


def test_blocks_show_month_to_date_budget_forecast_models_and_idle_cost() -> None:
    text, blocks = render_blocks(DIGEST)
    assert text == "GPU spend for research, 2026-11: $41,000.00 of $50,000.00 (82 %), forecast $52,000.00"
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields == [
        "*Month to date*\n$41,000.00",
        "*Monthly budget*\n$50,000.00",
        "*Budget used*\n82 %",
        "*Forecast month end*\n$52,000.00",
    ]
    assert "`llama-70b`: $30,000.00" in blocks[2]["text"]["text"]
    assert "$12.50/h" in blocks[3]["text"]["text"] and "$2,100.00 per week" in blocks[3]["text"]["text"]


def test_rate_limited_post_is_retried_and_delivered_once() -> None:
    with SlackSink() as sink:
        sink.script([(429, {"Retry-After": "1"})])
        client = make_slack_client("xoxb-test", base_url=sink.url + "/api/")
        send_digest(client, "#research-finops", DIGEST)
        delivered = sink.wait_for(1, timeout=10, delivered_only=True)
        assert len(delivered) == 1
        assert delivered[0].channel == "#research-finops"
        assert [r.status for r in sink.requests] == [429, 200]


def _recorded_series(at: int) -> str:
    """The recorded series the digest reads, as OpenMetrics samples for the 30 minutes before `at`."""
    series = [
        ('team:gpucost_spend_usd:month_to_date{team="research"}', 41000.0),
        ('team:gpucost_spend_usd:month_to_date{team="platform"}', 9000.0),
        ('team:gpucost_spend_usd:forecast_month_end{team="research"}', 52000.0),
        ('team_model:gpucost_spend_usd:month_to_date{team="research",model="llama-70b"}', 30000.0),
        ('team_model:gpucost_spend_usd:month_to_date{team="research",model="mistral-7b"}', 8000.0),
        ('team_model:gpucost_spend_usd:month_to_date{team="research",model="bert"}', 2000.0),
        ('team_model:gpucost_spend_usd:month_to_date{team="research",model="t5"}', 1000.0),
        ('team_component:gpucost_cost_usd_per_hour:rate5m{team="research",component="idle"}', 12.5),
        ('team_component:gpucost_cost_usd_per_hour:rate5m{team="research",component="active"}', 99.0),
        # Whole-node spend (GPU + CPU + memory + storage), read for a budget with `resources: node`.
        ('team:gpucost_whole_node_spend_usd:month_to_date{team="research"}', 47000.0),
        ('team:gpucost_whole_node_spend_usd:forecast_month_end{team="research"}', 60000.0),
        ('team_model:gpucost_whole_node_spend_usd:month_to_date{team="research",model="llama-70b"}', 34000.0),
        ('team_model:gpucost_whole_node_spend_usd:month_to_date{team="research",model="mistral-7b"}', 9500.0),
    ]
    lines = []
    for name in sorted({s.split("{")[0] for s, _ in series}):
        lines.append(f"# TYPE {name} gauge")
        lines.extend(
            f"{s} {value} {ts}"
            for s, value in series
            if s.startswith(name + "{")
            for ts in range(at - 1800, at + 1, 60)
        )
    lines.extend(_cost_counters(at))
    return "\n".join(lines) + "\n# EOF\n"


# Attributed cost per hour of the exporter's counter, constant over the scorecard window.
COST_USD_PER_HOUR = {
    ("research", "llama-70b", "active"): 80.0,
    ("research", "llama-70b", "idle"): 20.0,
    ("research", "mistral-7b", "active"): 9.0,
    ("research", "mistral-7b", "idle"): 1.0,
    ("platform", "embedder", "active"): 5.0,
}
SCORECARD_WINDOW = dt.timedelta(hours=1)


def _cost_counters(at: int) -> list[str]:
    """`gpucost_workload_gpu_cost_usd_total` growing linearly for 65 minutes before `at`.

    Without price series (no on-demand share, no spot price), GPU peaks or
    request counters, idle release is the only lever with a saving:
    research saves (20 + 1) USD/h x 730 h = 15,330 USD/month.
    """
    start = at - 3900
    lines = ["# TYPE gpucost_workload_gpu_cost_usd counter"]
    for (team, model, component), usd_per_hour in COST_USD_PER_HOUR.items():
        labels = f'team="{team}",model="{model}",component="{component}"'
        lines.extend(
            f"gpucost_workload_gpu_cost_usd_total{{{labels}}} {usd_per_hour * (ts - start) / 3600} {ts}"
            for ts in range(start, at + 1, 60)
        )
    return lines


def test_digest_gathered_from_prometheus_reaches_slack_with_budget_forecast_models_idle_and_top_saving(
    tmp_path: Path,
) -> None:
    at = int(time.time()) - 300
    source = tmp_path / "recorded.om"
    source.write_text(_recorded_series(at))
    subprocess.run(
        [require_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(tmp_path / "tsdb")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    budget_file = parse_budget_file(
        {
            "budgets": [
                {
                    "name": "research-monthly",
                    "scope": {"team": "research"},
                    "monthly_usd": 50000,
                    "slack_channel": "#research-finops",
                },
                {"name": "research-llama", "scope": {"team": "research", "model": "llama-70b"}, "monthly_usd": 40000},
            ]
        },
        "budgets.yaml",
    )
    now = dt.datetime.fromtimestamp(at, dt.UTC)
    with start_prometheus(tmp_path, write_prometheus_config(tmp_path / "prometheus.yml"), retention="30d") as prom:
        top_savings = ScorecardTopSavings.from_prometheus(prom.base_url, window=SCORECARD_WINDOW)
        digest = gather_team_digest(
            PrometheusClient(prom.base_url), "research", budget_file, now, top_savings=top_savings
        )
        whole_node = gather_team_digest(PrometheusClient(prom.base_url), "research", parse_budget_file(
            {"budgets": [{"name": "research-node", "scope": {"team": "research"}, "monthly_usd": 60000,
                          "resources": "node"}]}, "budgets.yaml"), now, top=2)
    # A budget that counts the whole node is measured against whole-node spend, and says so.
    assert (whole_node.resources, whole_node.month_to_date_usd, whole_node.forecast_usd) == ("node", 47000.0, 60000.0)
    assert whole_node.top_models == (("llama-70b", 34000.0), ("mistral-7b", 9500.0))
    assert render_blocks(whole_node)[0].startswith("Whole-node spend for research")
    assert digest.resources == "gpu" and render_blocks(digest)[0].startswith("GPU spend for research")
    assert digest.month_to_date_usd == 41000.0 and digest.forecast_usd == 52000.0
    assert digest.budget_usd == 50000.0  # the team-wide budget, not the narrower llama one
    assert digest.top_models == (("llama-70b", 30000.0), ("mistral-7b", 8000.0), ("bert", 2000.0))
    assert digest.idle_usd_per_hour == 12.5
    assert digest.top_saving is not None
    assert digest.top_saving.lever == "idle_release"
    assert digest.top_saving.usd_per_month == pytest.approx(21.0 * 730, abs=0.01)
    assert digest.top_saving.confidence == "measured"
    assert digest.top_saving.risk.startswith("scale-to-zero adds cold-start latency")
    with SlackSink() as sink:
        send_digest(
            make_slack_client("xoxb-test", base_url=sink.url + "/api/"),
            default_channel("research", budget_file),
            digest,
        )
        [message] = sink.wait_for(1, timeout=10, delivered_only=True)
    assert message.channel == "#research-finops"
    assert message.body["text"].startswith(
        f"GPU spend for research, {Month.of(now.date())}: $41,000.00 of $50,000.00 (82 %)"
    )
    rendered = (
        json.dumps(message.body["blocks"]) if isinstance(message.body["blocks"], list) else message.body["blocks"]
    )
    assert "`llama-70b`: $30,000.00" in rendered and "`t5`" not in rendered and "$12.50/h" in rendered
    [top] = [
        block["text"]["text"]
        for block in json.loads(rendered)
        if block["type"] == "section" and "Top saving" in block.get("text", {}).get("text", "")
    ]
    assert top == (
        "*Top saving:* `idle_release` — $15,330.00/month (measured) · risk: scale-to-zero adds cold-start "
        "latency; keep a minimum replica for latency-critical services"
    )
