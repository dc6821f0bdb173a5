"""A minimal Alertmanager stand-in for vmalert: keeps the alerts of its latest notifications.

With `--scale`, vmalert evaluates the same rules on VictoriaMetrics; the demo shows
which alerts it fires without sending them to Slack a second time.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply

__all__ = ["AlertReceiver"]


class AlertReceiver:
    """Answers `POST /api/v2/alerts` and remembers which alerts are firing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (alertname, budget or team) -> endsAt
        self._firing: dict[tuple[str, str], datetime] = {}
        self._http: HttpFixture | None = None

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the alert receiver is not started")
        return self._http.url

    def start(self) -> None:
        if self._http is None:
            # The demo runs for hours and reads only `firing()`: no request is kept.
            self._http = HttpFixture({("POST", "*"): self._receive}, name="vmalert-receiver", keep_requests=0).start()

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
            self._http = None

    def _receive(self, request: RecordedRequest) -> Reply:
        try:
            alerts = json.loads(request.body or b"[]")
        except ValueError:
            alerts = []
        if isinstance(alerts, list):
            self.record([a for a in alerts if isinstance(a, dict)])
        return Reply(200)

    def record(self, alerts: list[dict[str, Any]]) -> None:
        with self._lock:
            for alert in alerts:
                labels = alert.get("labels") or {}
                key = (str(labels.get("alertname", "")), str(labels.get("budget") or labels.get("team") or ""))
                ends_at = _parse_time(str(alert.get("endsAt") or ""))
                self._firing[key] = ends_at

    def firing(self) -> list[tuple[str, str]]:
        """(alertname, budget or team) of the alerts vmalert currently reports firing."""
        now = datetime.now(UTC)
        with self._lock:
            return sorted(key for key, ends_at in self._firing.items() if ends_at > now)


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
