"""Logging in logfmt or JSON, one line per event, UTC timestamps."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "setup_logging"]

LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "warn" if record.levelname == "WARNING" else record.levelname.lower()
        parts = [f"ts={_timestamp(record)}", f"level={level}", f"logger={record.name}",
                 f"msg={_logfmt_value(record.getMessage())}"]
        if record.exc_info and record.levelno >= logging.ERROR:
            parts.append(f"err={_logfmt_value(repr(record.exc_info[1]))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "warn" if record.levelname == "WARNING" else record.levelname.lower()
        body: dict[str, object] = {"ts": _timestamp(record), "level": level, "logger": record.name,
                                   "msg": record.getMessage()}
        if record.exc_info and record.levelno >= logging.ERROR:
            body["err"] = repr(record.exc_info[1])
        return json.dumps(body)


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
                   "error": logging.ERROR}[level])
