"""Prometheus-style durations (`500ms`, `1s`, `5m`, `1h30m`, `7d`) to seconds."""

from __future__ import annotations

import re

__all__ = ["DurationError", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


class DurationError(ValueError):
    pass


def parse_duration(text: str | int | float) -> float:
    """Seconds for a duration string; a bare number means seconds."""
    if isinstance(text, bool):
        raise DurationError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise DurationError(f"negative duration: {text!r}")
        return float(text)
    value = text.strip()
    if not value:
        raise DurationError("empty duration")
    position = 0
    total = 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(value):
        raise DurationError(f"not a duration: {text!r} (use e.g. 500ms, 10s, 5m, 1h)")
    return total


def format_duration(seconds: float) -> str:
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
