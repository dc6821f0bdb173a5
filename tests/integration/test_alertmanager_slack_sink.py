"""The Slack sink other tests reuse: answers like Slack, scripts failures, renders messages."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from gpucost_testing.slack_sink import SlackSink, render_slack_message

pytestmark = pytest.mark.integration


def post(url: str, body: bytes, content_type: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_slack_sdk_web_client_posts_and_gets_a_timestamp() -> None:
    with SlackSink() as sink:
        client = WebClient(token="xoxb-test", base_url=sink.url + "/api/")
        answer = client.chat_postMessage(
            channel="#team-nlp-alerts", text="digest", blocks=[{"type": "divider"}]
        )
        [request] = sink.wait_for(1, timeout=5)

    assert answer["ok"] is True and answer["channel"] == "#team-nlp-alerts" and answer["ts"]
    assert request.path == "/api/chat.postMessage"
    assert request.channel == "#team-nlp-alerts"
    assert request.headers["Authorization"] == "Bearer xoxb-test"
    assert request.body["blocks"] == [{"type": "divider"}]
    assert request.received_at.tzinfo is not None


def test_scripted_responses_are_used_in_order_then_slack_answers_200() -> None:
    with SlackSink() as sink:
        sink.script([(429, {"Retry-After": "1"}), (500, {})])
        client = WebClient(token="xoxb-test", base_url=sink.url + "/api/")
        with pytest.raises(SlackApiError) as limited:
            client.chat_postMessage(channel="#c", text="1")
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "1"
        status, text = post(sink.webhook_url("nlp"), b'{"text": "2"}', "application/json")
        assert (status, text) == (500, "internal_error")
        assert post(
            sink.webhook_url("nlp"),
            b"payload=" + b"%7B%22text%22%3A%223%22%7D",
            "application/x-www-form-urlencoded",
        ) == (200, "ok")

    assert [(r.status, r.delivered) for r in sink.requests] == [(429, False), (500, False), (200, True)]
    assert sink.requests[2].body == {"text": "3"}
    assert [m.path for m in sink.messages()] == ["/services/T000/B000/nlp"]


def test_wait_for_fails_with_what_arrived() -> None:
    with SlackSink() as sink:
        post(
            sink.chat_post_message_url,
            json.dumps({"channel": "#a", "text": "x"}).encode(),
            "application/json",
        )
        with pytest.raises(AssertionError, match="got 1"):
            sink.wait_for(2, timeout=0.3)


def test_render_shows_links_as_text_and_undoes_slack_escapes() -> None:
    message = {
        "channel": "#team-nlp-alerts",
        "attachments": [
            {
                "title": "⚠️ a&amp;b Spend Alert",
                "text": "See <https://g.example/d?x=1&amp;y=2|the dashboard> &lt;not a link&gt;",
                "color": "warning",
                "fields": [{"title": "Current Spend", "value": "$1.00", "short": True}],
                "actions": [{"type": "button", "text": "Runbook", "url": "https://rb"}],
                "footer": "gpucost",
            }
        ],
    }
    assert render_slack_message(message) == "\n".join(
        [
            "#team-nlp-alerts",
            "▌ (amber) ⚠️ a&b Spend Alert",
            "▌ See the dashboard (https://g.example/d?x=1&y=2) <not a link>",
            "▌",
            "▌ Current Spend",
            "▌ $1.00",
            "▌",
            "▌ [ Runbook ]",
            "▌ gpucost",
        ]
    )
