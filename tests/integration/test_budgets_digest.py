"""The weekly Slack digest over a real HTTP Slack stand-in: Block Kit content, 429 retried and delivered once."""

from __future__ import annotations

import pytest

from gpucost.budgets.digest import TeamDigest, make_slack_client, render_blocks, send_digest
from gpucost.budgets.spec import Month
from tests.support.slack_sink import SlackSink

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
