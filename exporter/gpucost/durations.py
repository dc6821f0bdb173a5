"""Prometheus-style durations (`500ms`, `1s`, `5m`, `1h30m`, `7d`, `1w`) to seconds and back.

Every part of gpucost reads durations here and raises `DurationError`; each caller
turns that into its own one-line message (file or flag, field, value).  Two
grammars share the units:

* `parse_duration`: what config files and exporter flags take, any sum of parts
  such as `1h30m` or `1.5h`, and a YAML number as seconds;
* `parse_simple_duration`: one whole number and one of s, m, h, d (`5m`, `7d`),
  what the rule generator writes into rule files and the budgets sidecar's flags take.
"""

from __future__ import annotations

import decimal
import math
import re
from decimal import Decimal

__all__ = ["DurationError", "format_duration", "parse_duration", "parse_simple_duration"]

# Largest first: format_duration walks them in this order.
_UNIT_MILLISECONDS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
# ASCII digits only: `\d` also matches digits such as "١", which float() reads.  `ms` before `m`.
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_DURATION = re.compile(f"(?:{_PART.pattern})+")
_SIMPLE = re.compile(r"([0-9]+)([smhd])")
# Exponents without bounds: a number of a million digits is inf seconds for the caller to refuse,
# not a decimal.Overflow.  40 digits keep every millisecond a float can tell apart.
_EXACT = decimal.Context(prec=40, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


class DurationError(ValueError):
    pass


def parse_duration(text: str | int | float) -> float:
    """Seconds for a duration string; a bare number means seconds."""
    if isinstance(text, bool):
        raise DurationError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        # nan compares false with every bound a caller checks: refuse it here.
        if math.isnan(text):
            raise DurationError(f"not a duration: {text!r}")
        if text < 0:
            raise DurationError(f"negative duration: {text!r}")
        return float(text)
    value = text.strip()
    if not value:
        raise DurationError("empty duration")
    if _DURATION.fullmatch(value) is None:
        raise DurationError(f"not a duration: {text!r} (use e.g. 500ms, 10s, 5m, 1h)")
    # In decimal the sum is exact (0.1s0.2s is 0.3 s, not 0.30000000000000004) and rounds once.
    milliseconds = Decimal(0)
    for number, unit in _PART.findall(value):
        milliseconds = _EXACT.add(milliseconds, _EXACT.multiply(Decimal(number), _UNIT_MILLISECONDS[unit]))
    return float(_EXACT.divide(milliseconds, 1000))


def parse_simple_duration(text: str) -> int:
    """Seconds in one whole number and one of s, m, h, d, such as `5m`; nothing around it."""
    match = _SIMPLE.fullmatch(text)
    if match is None:
        raise DurationError(f"not a simple duration: {text!r} (use a whole number and s, m, h or d)")
    number, unit = match.groups()
    try:
        count = int(number)
    except ValueError:  # more digits than int() reads from a string
        raise DurationError(f"duration too long: {text[:20]!r}...") from None
    return count * _UNIT_MILLISECONDS[unit] // 1000


def format_duration(seconds: float) -> str:
    """The duration rounded to the millisecond, largest units first (`1h30m`, `1m1s250ms`, `0s`)."""
    if not 0 <= seconds < math.inf:
        raise DurationError(f"not a duration: {seconds!r}")
    left = round(seconds * 1000)
    parts: list[str] = []
    for unit, size in _UNIT_MILLISECONDS.items():
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
