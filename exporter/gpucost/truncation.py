"""Counts of what the exporter cut from its sources, for `gpucost_exporter_source_truncated_total`.

The sources cut hostile or broken input (a 64 MB annotation, a device id the
size of a file) instead of keeping it, so memory stays bounded; the count
tells an operator that it happened and where.  Every known (source, reason)
pair is published from zero, so `increase()` sees the first cut.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

__all__ = [
    "INVALID_QUANTITY",
    "KNOWN_CUTS",
    "LONG_DEVICE_ID",
    "LONG_VALUE",
    "OVERSIZED_BODY",
    "OVERSIZED_STRING",
    "SOURCE_APISERVER",
    "SOURCE_KUBELET",
    "SOURCE_KUBELET_RESOURCE",
    "TruncationCounter",
    "TruncationCounts",
    "zero_counts",
]

SOURCE_APISERVER = "apiserver"
SOURCE_KUBELET = "kubelet"
# The kubelet's /metrics/resource (whole-node cost, gpucost.sources.kubelet_resource).
SOURCE_KUBELET_RESOURCE = "kubelet_resource"

# A JSON string in an API server response longer than MAX_RAW_STRING_BYTES, cut while reading.
OVERSIZED_STRING = "oversized_string"
# A kept label or annotation value (or a pod name, namespace, uid) longer than MAX_VALUE_CHARS;
# for kubelet_resource, a sample whose namespace, pod or container name is missing or too long.
LONG_VALUE = "long_value"
# A kubelet device id longer than MAX_DEVICE_ID_CHARS.
LONG_DEVICE_ID = "long_device_id"
# A /metrics/resource body over its byte limit: refused whole, the tick keeps the last usage.
OVERSIZED_BODY = "oversized_body"
# A container request or node allocatable that is not a Kubernetes quantity: dropped (left unknown).
INVALID_QUANTITY = "invalid_quantity"

KNOWN_CUTS: tuple[tuple[str, str], ...] = (
    (SOURCE_APISERVER, OVERSIZED_STRING),
    (SOURCE_APISERVER, LONG_VALUE),
    (SOURCE_APISERVER, INVALID_QUANTITY),
    (SOURCE_KUBELET, LONG_DEVICE_ID),
    (SOURCE_KUBELET_RESOURCE, OVERSIZED_BODY),
    (SOURCE_KUBELET_RESOURCE, LONG_VALUE),
)

TruncationCounts = Mapping[tuple[str, str], int]


def zero_counts() -> dict[tuple[str, str], int]:
    return dict.fromkeys(KNOWN_CUTS, 0)


class TruncationCounter:
    """Thread-safe (source, reason) -> count; the API server threads add, the sampler reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, source: str, reason: str, count: int = 1) -> None:
        if count <= 0:
            return
        with self._lock:
            key = (source, reason)
            self._counts[key] = self._counts.get(key, 0) + count

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)
