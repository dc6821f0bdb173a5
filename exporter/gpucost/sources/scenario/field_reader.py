"""Typed reads of one scenario field, each failing with a `ConfigError` naming file, key path and value."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from gpucost.errors import ConfigError
from gpucost.yamlfields import reject_unknown_keys, require_mapping

__all__ = ["MAX_MEMORY_BYTES", "MAX_SCENARIO_INTEGER", "FieldReader"]

# ASCII digits only: `\d` also matches digits such as "٣" and runs of any length.
_MEMORY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?\s*")
# A PiB per device is far beyond any GPU and keeps byte counts exact as floats.
MAX_MEMORY_BYTES = 2**50
# Ids, indexes, pids and replica counts fit a kubelet/NVML 32-bit field.
MAX_SCENARIO_INTEGER = 2**31 - 1
_MEMORY_UNITS: Mapping[str, int] = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}


class FieldReader:
    """Walks the document keeping the file name so each error can name file, key path and value."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key_path: str, value: object, problem: str) -> ConfigError:
        return ConfigError(self.file, key_path, value, problem)

    # -- generic field readers ------------------------------------------------

    def mapping(self, value: object, key_path: str, allowed: Sequence[str]) -> Mapping[str, object]:
        mapping = require_mapping(value, self.file, key_path)
        reject_unknown_keys(mapping, allowed, self.file, key_path)
        return mapping

    def sequence(self, value: object, key_path: str) -> Sequence[object]:
        if not isinstance(value, list):
            raise self.fail(key_path, value, "must be a list")
        return value

    def text(self, value: object, key_path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key_path, value, "must be a non-empty string")
        return value

    def number(self, value: object, key_path: str, minimum: float = 0.0, maximum: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key_path, value, "must be a number")
        try:
            number = float(value)
        except OverflowError:  # 10**400 has no float
            raise self.fail(key_path, value, "must be a finite number") from None
        if not math.isfinite(number):
            raise self.fail(key_path, value, "must be a finite number")
        if not minimum <= number <= maximum:
            raise self.fail(key_path, value, f"must be between {minimum:g} and {maximum:g}")
        return number

    def positive(self, value: object, key_path: str) -> float:
        number = self.number(value, key_path)
        if number <= 0:
            raise self.fail(key_path, value, "must be greater than 0")
        return number

    def integer(self, value: object, key_path: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key_path, value, "must be an integer")
        if value < minimum:
            raise self.fail(key_path, value, f"must be at least {minimum}")
        if value > MAX_SCENARIO_INTEGER:
            raise self.fail(key_path, value, f"must be at most {MAX_SCENARIO_INTEGER}")
        return value

    def memory(self, value: object, key_path: str) -> int:
        """Bytes, given as an integer or a string with a unit (`80GiB`, `81920MiB`, `40GB`)."""
        size: float | None = None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            size = value
        elif isinstance(value, str):
            match = _MEMORY.fullmatch(value)
            if match:
                size = float(match.group(1)) * _MEMORY_UNITS[match.group(2) or "B"]
        if size is None:
            raise self.fail(key_path, value, "must be bytes: an integer or a size like 80GiB, 81920MiB, 40GB")
        if not size <= MAX_MEMORY_BYTES:  # also false for inf: "9" * 400 + "GiB" parses as inf
            raise self.fail(key_path, value, "must be at most 1 PiB")
        return round(size)

    def string_map(self, value: object, key_path: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key_path, value, "must be a mapping of strings")
        result = {}
        for key, item in value.items():
            if not isinstance(key, str) or isinstance(item, bool) or not isinstance(item, str | int | float):
                raise self.fail(f"{key_path}.{key}", item, "must be a string")
            result[key] = str(item)
        return result
