"""Exact GPU-time shares of concurrent requests, integrated piecewise over time.

While n requests are in flight, each one accrues dt / n share-seconds, so the
shares of all requests add up to the time at least one request was in flight
(the busy time), never n times it.  The integral is kept as one running sum
`V(t) = integral of dt / n(t)` over busy time: a request's share is
`V(finish) - V(start)`, which is O(1) per event and exact for every change of n.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "ShareIntegrator"]

Clock = Callable[[], float]


class ShareIntegrator:
    """Counts requests in flight on one GPU (or process) and integrates their shares."""

    __slots__ = ("_busy_seconds", "_clock", "_in_flight", "_last_change", "_lock", "_shared_time")

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last_change = 0.0
        self._shared_time = 0.0  # V(t): share-seconds one request accrues from t=0
        self._busy_seconds = 0.0

    def _advance(self, now: float) -> None:
        if self._in_flight:
            elapsed = max(0.0, now - self._last_change)
            self._shared_time += elapsed / self._in_flight
            self._busy_seconds += elapsed
        self._last_change = now

    def start(self) -> float:
        """Mark a request in flight; returns the mark to pass to `finish`."""
        with self._lock:
            self._advance(self._clock())
            self._in_flight += 1
            return self._shared_time

    def finish(self, mark: float) -> float:
        """Mark the request started at `mark` done; returns its share-seconds."""
        with self._lock:
            self._advance(self._clock())
            self._in_flight -= 1
            return self._shared_time - mark

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def busy_seconds(self) -> float:
        """Seconds with at least one request in flight, up to now."""
        with self._lock:
            self._advance(self._clock())
            return self._busy_seconds
