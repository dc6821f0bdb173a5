"""Logging in logfmt or JSON, one line per event, UTC timestamps, credentials redacted.

Third-party libraries log secrets at debug level (botocore the SigV4
`Authorization` header with the access key id, HTTP clients their bearer
headers), so `setup_logging` puts a filter on the root handler that redacts
credential shapes from every record of every logger, plus any literal value a
command registered with `register_secret` when it read a credential file.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
from datetime import UTC, datetime

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "REDACTED",
    "RedactSecrets",
    "forget_secrets",
    "redact",
    "register_secret",
    "setup_logging",
]

LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")
REDACTED = "<redacted>"

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
           "error": logging.ERROR}

# (pattern, replacement): the replacement keeps the name of what was redacted so a log stays readable.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A header value in a dict repr (botocore: 'Authorization': b'AWS4-HMAC-SHA256 Credential=...').
    (re.compile(r"""(?i)((?:authorization|x-amz-security-token)['"]?\s*[:=]\s*b?(['"]))(.*?)\2"""),
     rf"\1{REDACTED}\2"),
    # The same headers written as `Name: value` lines (an HTTP dump, a curl trace).
    (re.compile(r"""(?i)((?:authorization|x-amz-security-token)\s*[:=]\s*)(?!b?['"])[^\n,;&]+"""),
     rf"\1{REDACTED}"),
    (re.compile(r"""(?i)((?:x-amz-)?credential=)[^\s,'"&]+"""), rf"\1{REDACTED}"),
    # SigV4 signatures: `Signature=<hex>` in a header or URL, `Signature:\n<hex>` in botocore.auth's debug log.
    (re.compile(r"(?i)((?:x-amz-)?signature[=:]\s*)[0-9a-f]{16,}"), rf"\1{REDACTED}"),
    (re.compile(r"""(?i)((?:aws_)?secret_access_key['"]?\s*[:=]\s*['"]?)[^\s'",}]+"""), rf"\1{REDACTED}"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\1{REDACTED}"),
)

# Values shorter than this are not registered: redacting every "abc" would garble the log, not protect it.
_MIN_SECRET_LENGTH = 4
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Redact this literal value (a token or key read from a file) from every later log line."""
    value = value.strip()
    if len(value) >= _MIN_SECRET_LENGTH:
        with _secrets_lock:
            _secrets.add(value)


def forget_secrets() -> None:
    """Drop every registered value (tests)."""
    with _secrets_lock:
        _secrets.clear()


def redact(text: str) -> str:
    with _secrets_lock:
        literals = sorted(_secrets, key=len, reverse=True)  # longest first: a secret may contain another
    for literal in literals:
        text = text.replace(literal, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrite a record's message, traceback and stack with the credentials redacted; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            # stdlib formatters print exc_text when it is set, so the traceback is redacted there too.
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def _error_text(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.levelno >= logging.ERROR:
        return redact(repr(record.exc_info[1]))
    return None


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "warn" if record.levelname == "WARNING" else record.levelname.lower()
        parts = [f"ts={_timestamp(record)}", f"level={level}", f"logger={record.name}",
                 f"msg={_logfmt_value(record.getMessage())}"]
        error = _error_text(record)
        if error is not None:
            parts.append(f"err={_logfmt_value(error)}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "warn" if record.levelname == "WARNING" else record.levelname.lower()
        body: dict[str, object] = {"ts": _timestamp(record), "level": level, "logger": record.name,
                                   "msg": record.getMessage()}
        error = _error_text(record)
        if error is not None:
            body["err"] = error
        return json.dumps(body)


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    """One stderr handler on the root logger, with the redaction filter that every record passes through."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
