"""HTTP basic auth against bcrypt hashes (the exporter-toolkit `basic_auth_users` map), off the event loop.

bcrypt is slow on purpose (milliseconds to a second per check): run on the
event loop it would stall every other client, so checks run on a small thread
pool, and the verdict is cached so a scraper sending the same credentials
every 15 s pays once.  The cache is keyed by a SHA-256 of user and password,
so no plaintext password stays in memory, and granted and denied verdicts are
kept apart: a client trying many wrong passwords cannot evict a good
scraper's verdict and send it back behind a queue of bcrypt checks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import bcrypt

__all__ = ["BasicAuth", "parse_basic_authorization"]

# Bounds on the verdict caches: real users are few; wrong guesses are not.
_MAX_GRANTED = 64
_MAX_DENIED = 256


def parse_basic_authorization(header: str) -> tuple[str, str] | None:
    """`Basic base64(user:password)` -> (user, password); None for anything else."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


class BasicAuth:
    def __init__(self, users: Mapping[str, str], *, workers: int = 2) -> None:
        self._users = dict(users)
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._granted: dict[bytes, None] = {}
        self._denied: dict[bytes, None] = {}
        # Concurrent requests with the same credentials wait for one check, not one each.
        self._pending: dict[bytes, asyncio.Future[bool]] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    async def allows(self, authorization: str) -> bool:
        """Whether this Authorization header value names a configured user with the right password."""
        if not self._users:
            return True
        credentials = parse_basic_authorization(authorization)
        if credentials is None:
            return False
        user, password = credentials
        key = hashlib.sha256(user.encode() + b"\0" + password.encode()).digest()
        if key in self._granted:
            return True
        if key in self._denied:
            return False
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        check = asyncio.get_running_loop().run_in_executor(self._pool(), self._check, user, password)
        self._pending[key] = check
        try:
            verdict = await asyncio.shield(check)
        finally:
            self._pending.pop(key, None)
        self._remember(key, verdict)
        return verdict

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="gpucost-bcrypt")
        return self._executor

    def _check(self, user: str, password: str) -> bool:
        hashed = self._users.get(user)
        if hashed is None:
            return False
        try:
            return bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:  # a hash with the right prefix but a broken body: nobody can log in with it
            return False

    def _remember(self, key: bytes, verdict: bool) -> None:
        cache, limit = (self._granted, _MAX_GRANTED) if verdict else (self._denied, _MAX_DENIED)
        if len(cache) >= limit:
            cache.pop(next(iter(cache)))  # the oldest verdict goes first
        cache[key] = None
