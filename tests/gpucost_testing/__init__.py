"""Local stand-ins for external services, shared by the demo, the benchmarks and the tests; in the
checkout only, not in the wheel (#18).

`slack_sink` (Slack), `fake_kubelet` (the kubelet's pod-resources gRPC API),
`fake_apiserver` (the Kubernetes API server) and `kube_harness` (a simulated
GPU node that drives the two fakes from a scenario).  Each lives in its own
module; only the Slack sink is re-exported here, so importing the package does
not pull in gRPC.
"""

from __future__ import annotations

from gpucost_testing.slack_sink import ScriptedResponse, SlackRequest, SlackSink, render_slack_message

__all__ = ["ScriptedResponse", "SlackRequest", "SlackSink", "render_slack_message"]
