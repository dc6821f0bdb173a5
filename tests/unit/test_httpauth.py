"""Basic auth for the exporter's server: bcrypt off the event loop, verdicts cached safely."""

from __future__ import annotations

import asyncio
import base64
import time

import bcrypt
import pytest

from gpucost.httpauth import BasicAuth, parse_basic_authorization


def _header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_slow_bcrypt_check_leaves_the_event_loop_free() -> None:
    slow_hash = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=12)).decode()
    auth = BasicAuth({"prometheus": slow_hash})

    async def scenario() -> tuple[float, float]:
        worst_gap = 0.0
        done = False

        async def ticker() -> None:
            nonlocal worst_gap
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                worst_gap = max(worst_gap, now - last)
                last = now

        tick = asyncio.create_task(ticker())
        started = time.perf_counter()
        assert not await auth.allows(_header("prometheus", "wrong"))
        took = time.perf_counter() - started
        done = True
        await tick
        return took, worst_gap

    took, worst_gap = asyncio.run(scenario())
    auth.close()
    assert took > 0.1, "a cost-12 bcrypt check takes a while"
    assert worst_gap < took / 2, f"the loop stalled {worst_gap * 1000:.0f} ms during a {took * 1000:.0f} ms check"


def test_wrong_guesses_do_not_evict_a_good_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = BasicAuth({"prometheus": bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4)).decode()})
    checks: list[str] = []
    real_check = auth._check  # counting the bcrypt calls is the point

    def counting_check(user: str, password: str) -> bool:
        checks.append(password)
        return real_check(user, password)

    monkeypatch.setattr(auth, "_check", counting_check)

    async def scenario() -> None:
        assert await auth.allows(_header("prometheus", "right"))
        for guess in range(300):
            assert not await auth.allows(_header("prometheus", f"guess-{guess}"))
        assert await auth.allows(_header("prometheus", "right"))
        assert not await auth.allows(_header("prometheus", "guess-299"))

    asyncio.run(scenario())
    auth.close()
    assert checks.count("right") == 1, "the good verdict was cached through 300 wrong guesses"
    assert checks.count("guess-299") == 1


def test_concurrent_requests_with_the_same_credentials_share_one_check(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = BasicAuth({"prometheus": bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=6)).decode()})
    calls = []
    real_check = auth._check

    def counting_check(user: str, password: str) -> bool:
        calls.append(user)
        return real_check(user, password)

    monkeypatch.setattr(auth, "_check", counting_check)

    async def scenario() -> list[bool]:
        return await asyncio.gather(*(auth.allows(_header("prometheus", "right")) for _ in range(20)))

    assert asyncio.run(scenario()) == [True] * 20
    auth.close()
    assert len(calls) == 1


@pytest.mark.parametrize(("header", "expected"), [
    (_header("prometheus", "pa:ss"), ("prometheus", "pa:ss")),
    ("basic " + base64.b64encode(b"u:").decode(), ("u", "")),
    ("Bearer abc", None),
    ("Basic !!!not-base64", None),
    ("Basic " + base64.b64encode(b"no-colon").decode(), None),
    ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
    ("", None),
])
def test_authorization_header_parsing(header: str, expected: tuple[str, str] | None) -> None:
    assert parse_basic_authorization(header) == expected


def test_no_users_means_no_auth_and_unknown_users_are_refused() -> None:
    assert asyncio.run(BasicAuth({}).allows(""))
    auth = BasicAuth({"prometheus": bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=4)).decode()})
    assert not asyncio.run(auth.allows(_header("nobody", "x")))
    assert not asyncio.run(auth.allows(""))
    auth.close()
