"""Duplicate-request detection by body hash, in a bounded LRU with a time-to-live.

Privacy: only a keyed BLAKE2b digest of method, path and body is kept (16 bytes
per entry, a random key per process so digests cannot be compared across
processes); bodies are never stored.  Still, whether two users sent the same
prompt is information, so this is off unless the app turns it on.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass

from gpucost.errors import ConfigError

__all__ = ["BodyHashCache", "BodyHasher", "DuplicateDetection"]


@dataclass(frozen=True, slots=True)
class DuplicateDetection:
    """Settings of the built-in detector: at most `max_entries` digests, each for `ttl_seconds`."""

    max_entries: int = 10_000
    ttl_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_entries < 1:
            raise ConfigError("", "max_entries", self.max_entries, "must be at least 1")
        if not self.ttl_seconds > 0:
            raise ConfigError("", "ttl_seconds", self.ttl_seconds, "must be positive")


class BodyHasher:
    """Incremental digest of one request's method, path and body chunks."""

    __slots__ = ("_hash",)

    def __init__(self, key: bytes, method: str, path: str) -> None:
        self._hash = hashlib.blake2b(digest_size=16, key=key)
        self._hash.update(method.encode("latin-1") + b" " + path.encode("utf-8", "surrogateescape") + b"\n")

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def digest(self) -> bytes:
        return self._hash.digest()


class BodyHashCache:
    """Digests seen within the last `ttl_seconds`, least recently seen evicted first."""

    def __init__(self, settings: DuplicateDetection) -> None:
        self.settings = settings
        self.key = os.urandom(16)
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def hasher(self, method: str, path: str) -> BodyHasher:
        return BodyHasher(self.key, method, path)

    def seen_before(self, digest: bytes, now: float) -> bool:
        """Record `digest` at `now`; True when it was already recorded within the TTL."""
        self._expire(now)
        previous = self._seen.pop(digest, None)
        self._seen[digest] = now
        if len(self._seen) > self.settings.max_entries:
            self._seen.popitem(last=False)
        return previous is not None

    def _expire(self, now: float) -> None:
        oldest_allowed = now - self.settings.ttl_seconds
        while self._seen:
            digest, seen_at = next(iter(self._seen.items()))
            if seen_at > oldest_allowed:
                return
            del self._seen[digest]

    def __len__(self) -> int:
        return len(self._seen)
