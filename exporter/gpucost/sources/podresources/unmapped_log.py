"""Log each device id that could not be mapped to an NVML device once, not every poll."""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["UnmappedDeviceLog"]

_LOG = logging.getLogger(__name__)


class UnmappedDeviceLog:
    """Remembers which (resource, device id) pairs were already reported."""

    def __init__(self, logger: logging.Logger = _LOG) -> None:
        self._logger = logger
        self._reported: set[tuple[str, str]] = set()

    def report(self, unmapped_ids: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Warn about the ids not warned about before; returns those ids."""
        new = sorted(set(unmapped_ids) - self._reported)
        for resource, device_id in new:
            self._logger.warning(
                "kubelet device id %r of resource %s matches no NVML device; its cost stays unattributed",
                device_id,
                resource,
            )
        self._reported.update(new)
        return new
