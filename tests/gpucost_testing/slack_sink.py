"""A local stand-in for Slack: a real HTTP server on 127.0.0.1 that records every POST.

Used by the integration tests and by `python -m gpucost_demo`, which prints each
message as the channel would show it.

It answers like Slack does: `/api/chat.postMessage` (and any other `/api/<method>`)
with `{"ok": true, ...}` JSON, any other path (an incoming webhook) with the text
`ok`.  Responses can be scripted to test retries::

    with SlackSink() as sink:
        sink.script([(429, {"Retry-After": "1"}), (500, {})])   # then 200s
        ...  # point Alertmanager / slack_sdk at sink.url
        sink.wait_for(1, timeout=10, delivered_only=True)

`slack_sdk.WebClient(token="xoxb-test", base_url=sink.url + "/api/")` works against it.
`render_slack_message(payload)` shows a captured message as text, roughly as the
channel would show it (used in docs/alerting.md and the demo).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply

__all__ = ["ScriptedResponse", "SlackRequest", "SlackSink", "render_slack_message"]

# (status, headers) or (status, headers, body); body is JSON-encoded when not a str.
ScriptedResponse = tuple[int, Mapping[str, str]] | tuple[int, Mapping[str, str], Any]

_SLACK_ERROR_BY_STATUS = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}


@dataclass(frozen=True)
class SlackRequest:
    """One POST the sink received and what it answered."""

    method: str
    path: str
    headers: Mapping[str, str]
    raw_body: bytes
    body: Mapping[str, Any]
    channel: str | None
    received_at: datetime
    status: int

    @property
    def delivered(self) -> bool:
        """True when the sink answered 2xx, i.e. Slack would have posted the message."""
        return 200 <= self.status < 300

    @property
    def is_webhook(self) -> bool:
        return not self.path.startswith("/api/")

    @property
    def attachments(self) -> list[dict[str, Any]]:
        value = self.body.get("attachments") or []
        return list(value) if isinstance(value, list) else []

    @property
    def title(self) -> str:
        """The first attachment's title, else the text: what a test usually asserts on."""
        attachments = self.attachments
        if attachments:
            return str(attachments[0].get("title", ""))
        return str(self.body.get("text", ""))

    def field(self, title: str) -> str | None:
        """The value of the first attachment field called `title`."""
        for attachment in self.attachments:
            for item in attachment.get("fields") or []:
                if item.get("title") == title:
                    return str(item.get("value", ""))
        return None


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json" or (not kind and raw[:1] in (b"{", b"[")):
        parsed = json.loads(raw.decode("utf-8")) if raw else {}
        return parsed if isinstance(parsed, dict) else {"payload": parsed}
    if kind == "application/x-www-form-urlencoded":
        form: dict[str, Any] = dict(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        # slack_sdk and the legacy `payload=` webhook form send JSON inside form fields.
        for key in ("payload", "attachments", "blocks"):
            if isinstance(form.get(key), str):
                with contextlib.suppress(json.JSONDecodeError):
                    form[key] = json.loads(form[key])
        if isinstance(form.get("payload"), dict):
            return dict(form["payload"])
        return form
    return {}


class SlackSink:
    """Records POSTs like Slack's Web API and incoming webhooks would receive them."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._requests: list[SlackRequest] = []
        self._script: list[ScriptedResponse] = []
        self._ts = itertools.count(1)
        self._http: HttpFixture | None = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> SlackSink:
        if self._http is None:
            # Slack answers POSTs only: anything else gets the fixture's 405.  The sink keeps its own
            # record (with the status it answered), so the fixture keeps none.
            self._http = HttpFixture({("POST", "*"): self._answer}, name="slack-sink", keep_requests=0).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
            self._http = None

    def __enter__(self) -> SlackSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("the Slack sink is not started")
        return self._http.port

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:PORT; the Web API is under /api/."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def chat_post_message_url(self) -> str:
        return self.url + "/api/chat.postMessage"

    def webhook_url(self, name: str) -> str:
        """An incoming-webhook-like URL; requests to it are recorded with that path."""
        return f"{self.url}/services/T000/B000/{urllib.parse.quote(name, safe='')}"

    # --- scripting and inspection -------------------------------------------------

    def script(self, responses: Iterable[ScriptedResponse]) -> None:
        """Answer the next POSTs with these, in order, then fall back to Slack's 200."""
        with self._lock:
            self._script.extend(responses)

    @property
    def requests(self) -> list[SlackRequest]:
        """Every POST so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def messages(self, channel: str | None = None, *, path: str | None = None) -> list[SlackRequest]:
        """Delivered (2xx-answered) posts, optionally for one channel or one webhook path."""
        return [
            r
            for r in self.requests
            if r.delivered and (channel is None or r.channel == channel) and (path is None or r.path == path)
        ]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._script.clear()

    def wait_for(
        self, count: int, timeout: float = 10.0, *, channel: str | None = None, delivered_only: bool = False
    ) -> list[SlackRequest]:
        """Block until at least `count` matching posts arrived; return them all, or fail with what came."""
        deadline = time.monotonic() + timeout

        def matching() -> list[SlackRequest]:
            return [
                r
                for r in self._requests
                if (channel is None or r.channel == channel) and (r.delivered or not delivered_only)
            ]

        with self._lock:
            while True:
                found = matching()
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(r.path, r.channel, r.status, r.title) for r in self._requests]
                    raise AssertionError(
                        f"Slack sink: wanted {count} posts (channel={channel!r},"
                        f" delivered_only={delivered_only}) within {timeout}s, got {len(found)};"
                        f" all posts: {seen}"
                    )
                self._lock.wait(remaining)

    # --- used by the server's handler threads -----------------------------------------

    def _answer(self, request: RecordedRequest) -> Reply:
        try:
            body = _parse_body(request.header("Content-Type"), request.body)
        except (ValueError, UnicodeDecodeError):
            body = {}
        status, headers, payload = self._next_response(request.target, body)
        channel = body.get("channel")
        self._record(
            SlackRequest(
                method=request.method,
                path=request.target,
                headers=request.headers,
                raw_body=request.body,
                body=body,
                channel=str(channel) if channel is not None else None,
                received_at=datetime.fromtimestamp(request.received_at, UTC),
                status=status,
            )
        )
        if isinstance(payload, str):
            return Reply(status, payload.encode(), "text/plain; charset=utf-8", headers)
        return Reply(status, json.dumps(payload).encode(), "application/json", headers)

    def _record(self, request: SlackRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _next_response(self, path: str, body: Mapping[str, Any]) -> tuple[int, Mapping[str, str], Any]:
        with self._lock:
            scripted = self._script.pop(0) if self._script else None
        is_api = path.startswith("/api/")
        if scripted is not None:
            status, headers = scripted[0], scripted[1]
            if len(scripted) == 3:
                return status, headers, scripted[2]
            if 200 <= status < 300:
                return status, headers, self._ok_payload(path, body) if is_api else "ok"
            error = _SLACK_ERROR_BY_STATUS.get(status, "request_failed")
            return status, headers, {"ok": False, "error": error} if is_api else error
        return 200, {}, self._ok_payload(path, body) if is_api else "ok"

    def _ok_payload(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        method = path.removeprefix("/api/").split("?", 1)[0]
        if method != "chat.postMessage":
            return {"ok": True}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = {k: v for k, v in body.items() if k in ("text", "attachments", "blocks")}
        return {
            "ok": True,
            "channel": body.get("channel"),
            "ts": ts,
            "message": {"type": "message", "ts": ts, **message},
        }


# --- rendering -------------------------------------------------------------------

_LINK_RE = re.compile(r"<([^<>|]+)\|([^<>]+)>|<([^<>|]+)>")
_COLOR_NAMES = {"good": "green", "warning": "amber", "danger": "red"}


def _unescape(text: str) -> str:
    """Undo exactly Slack's three escapes (not HTML's full entity set)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _display(text: str) -> str:
    """Slack mrkdwn as shown: links become `label (url)`, then the escapes are undone."""
    out: list[str] = []
    position = 0
    for match in _LINK_RE.finditer(text):
        out.append(_unescape(text[position : match.start()]))
        if match.group(3) is not None:
            out.append(_unescape(match.group(3)))
        else:
            out.append(f"{_unescape(match.group(2))} ({_unescape(match.group(1))})")
        position = match.end()
    out.append(_unescape(text[position:]))
    return "".join(out)


def _columns(pairs: Sequence[tuple[str, str]], width: int = 22) -> list[str]:
    """Short fields side by side, two per row, as Slack lays them out."""
    lines: list[str] = []
    for start in range(0, len(pairs), 2):
        row = pairs[start : start + 2]
        lines.append("".join(title.ljust(width) for title, _ in row).rstrip())
        lines.append("".join(value.ljust(width) for _, value in row).rstrip())
    return lines


def _render_attachment(attachment: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    if attachment.get("pretext"):
        lines.append(_display(str(attachment["pretext"])))
    if attachment.get("title"):
        lines.append(_display(str(attachment["title"])))
    if attachment.get("text"):
        lines.extend(_display(str(attachment["text"])).splitlines())
    fields = [
        (_display(str(f.get("title", ""))), _display(str(f.get("value", ""))))
        for f in attachment.get("fields") or []
    ]
    if fields:
        lines.append("")
        lines.extend(_columns(fields))
    buttons = [f"[ {_display(str(a.get('text', '')))} ]" for a in attachment.get("actions") or []]
    if buttons:
        lines.append("")
        lines.append("  ".join(buttons))
    if attachment.get("footer"):
        lines.append(_display(str(attachment["footer"])))
    color = str(attachment.get("color") or "")
    bar = f"▌ ({_COLOR_NAMES.get(color, color)}) " if color else "▌ "
    return [bar + lines[0], *[("▌ " + line).rstrip() for line in lines[1:]]] if lines else []


def _block_text(element: Any) -> str:
    if isinstance(element, Mapping):
        return _display(str(element.get("text", "")))
    return ""


def _render_block(block: Mapping[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [_block_text(block.get("text")), ""]
    if kind == "divider":
        return ["─" * 40]
    if kind == "section":
        lines = _block_text(block.get("text")).splitlines() if block.get("text") else []
        fields = [_block_text(f) for f in block.get("fields") or []]
        lines += [line for f in fields for line in f.splitlines()]
        return lines
    if kind == "context":
        return [" · ".join(_block_text(e) for e in block.get("elements") or [])]
    if kind == "actions":
        return ["  ".join(f"[ {_block_text(e.get('text'))} ]" for e in block.get("elements") or [])]
    return []


def render_slack_message(payload: Mapping[str, Any] | SlackRequest) -> str:
    """A captured message as plain text, the way it reads in the channel."""
    body = payload.body if isinstance(payload, SlackRequest) else payload
    lines = [str(body.get("channel") or "(webhook's channel)")]
    if body.get("text") and not body.get("blocks"):
        lines.extend(_display(str(body["text"])).splitlines())
    for block in body.get("blocks") or []:
        lines.extend(_render_block(block))
    for attachment in body.get("attachments") or []:
        lines.extend(_render_attachment(attachment))
    return "\n".join(lines)
