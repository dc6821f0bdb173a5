"""Re-export: the Slack sink lives in `gpucost.testing.slack_sink` so that the demo can use it too."""

from __future__ import annotations

from gpucost.testing.slack_sink import ScriptedResponse, SlackRequest, SlackSink, render_slack_message

__all__ = ["ScriptedResponse", "SlackRequest", "SlackSink", "render_slack_message"]
