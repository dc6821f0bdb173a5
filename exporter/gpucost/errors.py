"""The small typed error hierarchy shared by every part of gpucost.

Errors a user can fix (a config value, a price file, a budget file) are
`UserInputError`s that carry the file, the key path and the offending value;
the CLIs turn them into one line and exit code 2.  Faults of the outside world
(a socket gone, an API timing out) are `SourceUnavailable`; the collector
wrapper turns them into a health metric and a log line.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "GpucostError",
    "NoData",
    "SourceUnavailable",
    "UserInputError",
]


class GpucostError(Exception):
    """Base of every error gpucost raises on purpose."""


class UserInputError(GpucostError):
    """Input the user wrote is wrong; the message names file, key path and value."""

    def __init__(self, file: str, key_path: str, value: object, problem: str) -> None:
        self.file = file
        self.key_path = key_path
        self.value = value
        self.problem = problem
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.file or "<input>"
        key = f" {self.key_path}:" if self.key_path else ""
        shown = _short_repr(self.value)
        return f"{where}:{key} {self.problem} (got {shown})"


class ConfigError(UserInputError):
    """A config, scenario, price or budget file is invalid."""


class SourceUnavailable(GpucostError):
    """A data source (NVML, kubelet, API server, a cloud API) cannot be reached now."""


class NoData(GpucostError):
    """A source answered but had nothing new; not a fault."""


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
