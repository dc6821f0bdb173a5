"""Bounded label values for inference metrics, taken from request headers or from config.

A header is written by the client, so its value becomes a label only when it is
on the allow-list; any other value counts as `other` and a missing header as
`unknown`.  That keeps the number of series bounded whatever clients send.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gpucost.errors import ConfigError

__all__ = ["MISSING_VALUE", "OTHER_VALUE", "HeaderLabel", "InferenceLabels"]

OTHER_VALUE = "other"
MISSING_VALUE = "unknown"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


@dataclass(frozen=True, slots=True)
class HeaderLabel:
    """A label read from one request header and checked against an allow-list.

    Header names match case-insensitively; values are compared after stripping
    blanks, and case-insensitively when `case_sensitive` is False (the label then
    carries the allow-list's spelling).
    """

    header: str
    allowed: frozenset[str]
    missing: str = MISSING_VALUE
    other: str = OTHER_VALUE
    case_sensitive: bool = False
    _header_bytes: bytes = field(init=False, repr=False, compare=False)
    _lookup: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _HEADER_NAME.match(self.header):
            raise ConfigError("", "header", self.header, "is not a valid HTTP header name")
        for value in self.allowed:
            if not value or value != value.strip():
                raise ConfigError("", "allowed", value, "allowed values must be non-empty and unpadded")
        object.__setattr__(self, "_header_bytes", self.header.lower().encode("latin-1"))
        lookup = {self._key(value): value for value in self.allowed}
        object.__setattr__(self, "_lookup", lookup)

    def _key(self, value: str) -> str:
        return value if self.case_sensitive else value.casefold()

    def from_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The label value for an ASGI header list (lower-cased names, as servers send them)."""
        wanted = self._header_bytes
        for name, raw in headers:
            if name == wanted or name.lower() == wanted:
                return self.value_of(raw.decode("latin-1"))
        return self.missing

    def value_of(self, header_value: str) -> str:
        found = self._lookup.get(self._key(header_value.strip()))
        return found if found is not None else self.other


@dataclass(frozen=True, slots=True)
class InferenceLabels:
    """Where model, model_version and business_unit come from.

    `model` and `model_version` are fixed per deployment unless a header label
    is given for them; the app can also set them per request with
    `gpucost.instrument.asgi.set_model` (trusted, e.g. from the route).
    """

    model: str = MISSING_VALUE
    model_version: str = MISSING_VALUE
    business_unit: HeaderLabel | None = None
    model_header: HeaderLabel | None = None
    model_version_header: HeaderLabel | None = None

    def __post_init__(self) -> None:
        for key in ("model", "model_version"):
            value = getattr(self, key)
            if not value:
                raise ConfigError("", key, value, "must be a non-empty label value")

    @classmethod
    def with_business_units(
        cls,
        allowed: Iterable[str],
        *,
        model: str = MISSING_VALUE,
        model_version: str = MISSING_VALUE,
        header: str = "X-Business-Unit",
    ) -> InferenceLabels:
        return cls(
            model=model,
            model_version=model_version,
            business_unit=HeaderLabel(header, frozenset(allowed)),
        )
