"""The demo's vmalert receiver on a real socket: what vmalert posts is what `firing()` reports."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from gpucost_demo.alert_receiver import AlertReceiver

pytestmark = pytest.mark.integration


def _post(url: str, payload: bytes) -> int:
    request = urllib.request.Request(url + "/api/v2/alerts", data=payload, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


def test_posted_alerts_are_firing_until_their_end_and_garbage_is_acknowledged_and_ignored() -> None:
    now = datetime.now(UTC)
    alerts = [
        {"labels": {"alertname": "GpuCostBudget80PercentUsed", "budget": "research-monthly"},
         "endsAt": (now + timedelta(minutes=5)).isoformat()},
        {"labels": {"alertname": "GpuCostIdleWaste", "team": "search"},
         "endsAt": (now - timedelta(minutes=1)).isoformat()},
    ]
    receiver = AlertReceiver()
    receiver.start()
    try:
        assert _post(receiver.url, json.dumps(alerts).encode()) == 200
        assert _post(receiver.url, b"not json") == 200  # vmalert must not retry what will never parse
        firing = receiver.firing()
    finally:
        receiver.stop()
    assert firing == [("GpuCostBudget80PercentUsed", "research-monthly")]
