"""Kubernetes resource quantities ("500m", "2", "1Gi", "512Mi", "1e9", "1G") as plain numbers.

The grammar is the API server's (`k8s.io/apimachinery/pkg/api/resource`):
a signed decimal number followed by a binary suffix (Ki Mi Gi Ti Pi Ei), a
decimal suffix (n u m "" k M G T P E) or a decimal exponent (e3, E-2).  CPU
comes out in cores ("500m" -> 0.5), memory and storage in bytes ("1Gi" ->
1073741824.0).

Requests are never negative and the API server stores quantities in 63 bits,
so a negative or larger value, or text that is not a quantity, is invalid:
`parse_quantity` answers None and the caller counts it and leaves the request
unknown rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

__all__ = ["MAX_QUANTITY", "MAX_QUANTITY_CHARS", "parse_quantity"]

# The API server's own limit: a quantity is an int64 of its smallest unit.
_MAX_EXACT = Decimal(2**63 - 1)
MAX_QUANTITY = float(_MAX_EXACT)
# Far longer than any quantity the API server writes back; bounds the work on hostile text.
MAX_QUANTITY_CHARS = 64

# ASCII digits only (`\d` also matches other scripts' digits); the exponent has at most 3 digits.
_QUANTITY = re.compile(
    r"(?P<number>\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]{1,3})?"
)
_MULTIPLIERS: Mapping[str, Decimal] = {
    "": Decimal(1),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
    "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60),
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"),
    "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18"),
}


def parse_quantity(value: object) -> float | None:
    """The quantity's value in base units (cores, bytes), or None when it is not a valid request.

    Numbers (a scenario or config file may write `2` or `0.5`) are taken as they are.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _bounded(float(value))
    if not isinstance(value, str) or len(value) > MAX_QUANTITY_CHARS:
        return None
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        return None
    suffix = match.group("suffix") or ""
    try:
        exact = Decimal(match.group("number")) * (_MULTIPLIERS.get(suffix) or Decimal(10) ** int(suffix[1:]))
    except (InvalidOperation, ValueError):
        return None
    # Compared exactly: 2**63 - 1 and 2**63 are the same float.
    return float(exact) if exact <= _MAX_EXACT else None


def _bounded(amount: float) -> float | None:
    # `not <=` is also true for nan.
    if not 0.0 <= amount <= MAX_QUANTITY:
        return None
    return amount
