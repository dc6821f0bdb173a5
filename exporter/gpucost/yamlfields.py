"""Typed readers for values parsed from YAML, raising ConfigError with file, key path and value.

The exporter config, the price catalog, the `pricing:` section and the overrides file are all
user-editable YAML; every reader here names the exact key path of a bad value
so the one-line error points at the line to fix.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping
from pathlib import Path

import yaml

from gpucost.errors import ConfigError

__all__ = [
    "child_path",
    "load_yaml_file",
    "optional_float",
    "optional_int",
    "optional_str",
    "read_as_of",
    "read_bool",
    "read_float",
    "read_int",
    "read_str",
    "reject_unknown_keys",
    "require_mapping",
]


def child_path(parent: str, key: str | int) -> str:
    """`pricing` + `cloud` -> `pricing.cloud`; `prices` + 2 -> `prices[2]`."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def load_yaml_file(path: Path) -> object:
    """Read and parse one YAML file; unreadable or malformed files are a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), "", str(path), f"cannot read file: {err.strerror or err}") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(str(path), "", text[:60], f"not valid YAML{where}") from err


def require_mapping(value: object, file: str, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ConfigError(file, path, value, "must be a mapping of keys to values")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(file, child_path(path, str(key)), key, "keys must be strings")
    return value


def reject_unknown_keys(
    mapping: Mapping[str, object], allowed: Collection[str], file: str, path: str
) -> None:
    for key in mapping:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(file, child_path(path, key), key, f"unknown key (known keys: {known})")


def read_float(
    mapping: Mapping[str, object],
    key: str,
    file: str,
    path: str,
    *,
    positive: bool = False,
    maximum: float | None = None,
) -> float:
    """A required finite, non-negative number (bools are rejected: YAML `yes` is not a price)."""
    key_path = child_path(path, key)
    if key not in mapping:
        raise ConfigError(file, key_path, None, "is required")
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(file, key_path, value, "must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(file, key_path, value, "must be a finite number")
    if number < 0:
        raise ConfigError(file, key_path, value, "must not be negative")
    if positive and number == 0:
        raise ConfigError(file, key_path, value, "must be greater than 0")
    if maximum is not None and number > maximum:
        raise ConfigError(file, key_path, value, f"must be at most {maximum:g}")
    return number


def optional_float(
    mapping: Mapping[str, object],
    key: str,
    file: str,
    path: str,
    *,
    positive: bool = False,
    maximum: float | None = None,
) -> float | None:
    if mapping.get(key) is None:
        return None
    return read_float(mapping, key, file, path, positive=positive, maximum=maximum)


def read_int(mapping: Mapping[str, object], key: str, file: str, path: str, *, minimum: int = 1) -> int:
    key_path = child_path(path, key)
    if key not in mapping:
        raise ConfigError(file, key_path, None, "is required")
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(file, key_path, value, "must be a whole number")
    if value < minimum:
        raise ConfigError(file, key_path, value, f"must be at least {minimum}")
    return value


def optional_int(
    mapping: Mapping[str, object], key: str, file: str, path: str, *, minimum: int = 1
) -> int | None:
    if mapping.get(key) is None:
        return None
    return read_int(mapping, key, file, path, minimum=minimum)


def read_str(
    mapping: Mapping[str, object],
    key: str,
    file: str,
    path: str,
    *,
    choices: Collection[str] | None = None,
) -> str:
    key_path = child_path(path, key)
    if key not in mapping:
        raise ConfigError(file, key_path, None, "is required")
    value = mapping[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(file, key_path, value, "must be a non-empty string")
    if choices is not None and value not in choices:
        raise ConfigError(file, key_path, value, f"must be one of {', '.join(choices)}")
    return value


def optional_str(
    mapping: Mapping[str, object],
    key: str,
    file: str,
    path: str,
    *,
    choices: Collection[str] | None = None,
) -> str:
    """A string when present, else the empty string."""
    if mapping.get(key) is None:
        return ""
    return read_str(mapping, key, file, path, choices=choices)


def read_bool(mapping: Mapping[str, object], key: str, file: str, path: str, *, default: bool) -> bool:
    if mapping.get(key) is None:
        return default
    value = mapping[key]
    if not isinstance(value, bool):
        raise ConfigError(file, child_path(path, key), value, "must be true or false")
    return value


def read_as_of(mapping: Mapping[str, object], key: str, file: str, path: str) -> str:
    """A required date or timezone-aware timestamp, returned in ISO 8601 form.

    YAML turns an unquoted `2025-01-15` into a date and an unquoted timestamp
    into a datetime; quoted values arrive as strings.  All three are accepted,
    but a timestamp without a timezone is refused: prices are dated in UTC.
    """
    key_path = child_path(path, key)
    if key not in mapping or mapping[key] is None:
        raise ConfigError(file, key_path, None, "is required (the date the price was read)")
    value = mapping[key]
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        return value.isoformat()
    elif isinstance(value, str):
        try:
            if len(value.strip()) == 10:
                return dt.date.fromisoformat(value.strip()).isoformat()
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError as err:
            raise ConfigError(
                file, key_path, value, "must be a date (2025-01-15) or UTC timestamp (2025-01-15T06:00:00Z)"
            ) from err
    else:
        raise ConfigError(file, key_path, value, "must be a date or timestamp")
    if moment.tzinfo is None:
        raise ConfigError(file, key_path, value, "timestamp needs a timezone, e.g. 2025-01-15T06:00:00Z")
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
