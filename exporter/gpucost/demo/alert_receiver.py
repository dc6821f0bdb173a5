"""A minimal Alertmanager stand-in for vmalert: keeps the alerts of its latest notifications.

With `--scale`, vmalert evaluates the same rules on VictoriaMetrics; the demo shows
which alerts it fires without sending them to Slack a second time.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["AlertReceiver"]


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverServer
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            alerts = json.loads(raw or b"[]")
        except ValueError:
            alerts = []
        if isinstance(alerts, list):
            self.server.receiver.record([a for a in alerts if isinstance(a, dict)])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: AlertReceiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


class AlertReceiver:
    """Answers `POST /api/v2/alerts` and remembers which alerts are firing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (alertname, budget or team) -> endsAt
        self._firing: dict[tuple[str, str], datetime] = {}
        self._server: _ReceiverServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the alert receiver is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        if self._server is None:
            self._server = _ReceiverServer(self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="vmalert-receiver", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

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
