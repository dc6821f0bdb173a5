"""The one wrapper that runs a collector step and records its health.

Collectors just raise; this wrapper turns a failure into
`gpucost_exporter_collector_success{collector} 0`, its duration, and one log
line per change of state (not one per tick), so a failing source degrades
only itself and the rest of the tick carries on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from gpucost.snapshot import CollectorHealth

__all__ = ["HealthBoard"]

T = TypeVar("T")
log = logging.getLogger("gpucost.health")


class HealthBoard:
    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._health: dict[str, CollectorHealth] = {}
        self._last_error: dict[str, str] = {}
        self._ever_succeeded: set[str] = set()

    def run(self, collector: str, step: Callable[[], T], fallback: T) -> T:
        """Run `step`; on any failure record it and return `fallback`."""
        started = self._clock()
        try:
            result = step()
        except Exception as exc:  # the single place that catches everything: one source must not stop the tick
            self.record(collector, False, self._clock() - started, f"{type(exc).__name__}: {exc}")
            return fallback
        self.record(collector, True, self._clock() - started)
        return result

    def record(self, collector: str, success: bool, duration: float, error: str = "") -> None:
        self._health[collector] = CollectorHealth(collector, success, duration)
        previous = self._last_error.get(collector)
        if not success and previous != error:
            log.warning("collector %s failed: %s", collector, error)
        elif success and previous:
            log.info("collector %s recovered", collector)
        self._last_error[collector] = "" if success else error
        if success:
            self._ever_succeeded.add(collector)

    def last_error(self, collector: str) -> str:
        return self._last_error.get(collector, "")

    def never_succeeded(self) -> dict[str, str]:
        """Collectors that were tried but have not succeeded once since start, with their last error."""
        return {name: self._last_error.get(name, "") for name in sorted(self._health)
                if name not in self._ever_succeeded}

    def snapshot(self) -> tuple[CollectorHealth, ...]:
        return tuple(self._health[name] for name in sorted(self._health))
