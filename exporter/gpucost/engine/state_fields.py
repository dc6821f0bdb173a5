"""Typed readers for the fields of a ledger state document: every value checked, one error type.

The state file may hold anything (a crash, a bad disk, a hand edit), and one
exception escaping the reader would crash every start, so each reader raises
`StateFormatError` and nothing else.  Pure: plain JSON values in, plain values out.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_STATE_VALUE",
    "ForeignStateError",
    "StateFormatError",
    "field_of",
    "list_of",
    "number",
    "numbers",
    "remap_workload",
    "short",
    "string",
    "strings",
]

# No real counter or timestamp comes near this (a trillion USD, 31,700 years of GPU
# seconds, the year 33658): a bigger value is a corrupt or forged file.
MAX_STATE_VALUE = 1e12


class StateFormatError(ValueError):
    """The state file is not a gpucost ledger of a version we can read."""


class ForeignStateError(StateFormatError):
    """The state file is a valid ledger, but another node's: its GPUs are not ours to export."""


def short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field_of(state: dict[str, Any], name: str) -> object:
    if name not in state:
        raise StateFormatError(f"{name}: missing")
    return state[name]


def list_of(value: object, where: str, length: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise StateFormatError(f"{where}: not a list: {short(value)}")
    if length is not None and len(value) != length:
        raise StateFormatError(f"{where}: {len(value)} values, expected {length}")
    return value


def string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise StateFormatError(f"{where}: not a string: {short(value)}")
    return value


def strings(value: object, where: str, length: int | None = None) -> tuple[str, ...]:
    return tuple(string(item, where) for item in list_of(value, where, length))


def number(value: object, where: str) -> float:
    """A counter or timestamp: a JSON number (not a bool, not a string), finite, 0 <= value <= MAX_STATE_VALUE."""
    # Compare before converting: float() of a 400-digit integer raises OverflowError.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_STATE_VALUE:
        raise StateFormatError(f"{where}: {short(value)} is not a number between 0 and {MAX_STATE_VALUE:g}")
    return float(value)


def numbers(value: object, length: int, where: str) -> list[float]:
    return [number(item, where) for item in list_of(value, where, length)]


def remap_workload(values: tuple[str, ...], saved: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Carry workload label values across a change of the configured label names."""
    by_name = dict(zip(saved, values, strict=True))
    return tuple(by_name.get(name, "") for name in wanted)
