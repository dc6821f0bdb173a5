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

from gpucost.errors import ConfigError
from gpucost.guarded_yaml import parse_yaml_text

__all__ = [
    "MAX_COUNT",
    "MAX_YAML_FILE_BYTES",
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


# No config, scenario, budget or price file comes near this; a larger one is a mistake or an attack.
MAX_YAML_FILE_BYTES = 16 * 2**20
# Months, GPUs per node, replicas: no count in a gpucost file is near this, and
# every value below it converts to float exactly.
MAX_COUNT = 1_000_000


def child_path(parent: str, key: str | int) -> str:
    """`pricing` + `cloud` -> `pricing.cloud`; `prices` + 2 -> `prices[2]`."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def load_yaml_file(path: Path) -> object:
    """Read and parse one YAML file; every problem with it is a ConfigError naming the file.

    This is the one door for gpucost's YAML files: a file that is too large,
    not UTF-8, malformed, nested too deeply or an alias bomb is refused here
    (see `gpucost.guarded_yaml`), so the parsers behind it see plain data only.
    """
    file = str(path)
    try:
        with path.open("rb") as handle:
            # One byte over the cap is enough to know; never read an endless file whole.
            data = handle.read(MAX_YAML_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(file, "", file, f"cannot read file: {err.strerror or err}") from None
    if len(data) > MAX_YAML_FILE_BYTES:
        raise ConfigError(file, "", f"> {MAX_YAML_FILE_BYTES} bytes",
                          f"file is larger than {MAX_YAML_FILE_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(file, "", data[err.start : err.start + 4],
                          f"not UTF-8 text at byte {err.start} (save the file as UTF-8)") from None
    return parse_yaml_text(text, file)


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


def _required(mapping: Mapping[str, object], key: str, file: str, path: str) -> tuple[str, object]:
    """The key path and value of a key that must be present (it may still be null)."""
    key_path = child_path(path, key)
    if key not in mapping:
        raise ConfigError(file, key_path, None, "is required")
    return key_path, mapping[key]


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
    key_path, value = _required(mapping, key, file, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(file, key_path, value, "must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer such as 10**400 has no float
        raise ConfigError(file, key_path, value, "must be a finite number") from None
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


def read_int(
    mapping: Mapping[str, object],
    key: str,
    file: str,
    path: str,
    *,
    minimum: int = 1,
    maximum: int = MAX_COUNT,
) -> int:
    """A required whole number; the default maximum keeps counts usable in float arithmetic."""
    key_path, value = _required(mapping, key, file, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(file, key_path, value, "must be a whole number")
    if value < minimum:
        raise ConfigError(file, key_path, value, f"must be at least {minimum}")
    if value > maximum:
        raise ConfigError(file, key_path, value, f"must be at most {maximum}")
    return value


def optional_int(
    mapping: Mapping[str, object],
    key: str,
    file: str,
    path: str,
    *,
    minimum: int = 1,
    maximum: int = MAX_COUNT,
) -> int | None:
    if mapping.get(key) is None:
        return None
    return read_int(mapping, key, file, path, minimum=minimum, maximum=maximum)


def read_str(
    mapping: Mapping[str, object],
    key: str,
    file: str,
    path: str,
    *,
    choices: Collection[str] | None = None,
) -> str:
    key_path, value = _required(mapping, key, file, path)
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
    try:
        in_utc = moment.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise ConfigError(file, key_path, value, "timestamp is out of range") from None
    return in_utc.isoformat().replace("+00:00", "Z")
