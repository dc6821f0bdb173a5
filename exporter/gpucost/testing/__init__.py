"""Local stand-ins for external services (Slack), shared by the demo and the integration tests."""

from __future__ import annotations

from gpucost.testing.slack_sink import ScriptedResponse, SlackRequest, SlackSink, render_slack_message

__all__ = ["ScriptedResponse", "SlackRequest", "SlackSink", "render_slack_message"]
