"""Fixtures shared by several integration modules, each stopped once the last test that uses it is done.

A session-scoped fixture would otherwise keep its servers running (CPU, memory) under every
later module, among them timing-sensitive ones; `close_after_last_user` ends it right after
the last test in the session that asks for it.

Under pytest-xdist each worker is a session of its own whose `session.items` is still the whole
collection: a worker only knows it ran the last user if every user runs on it, so the modules that
use such a fixture are one unit of work (SHARED_WORKER_GROUPS in tests/support/xdist_groups.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.integration.rules_stacks import RulesStacks, start_rules_stacks

# fixture name -> what stops its servers
_OPEN_UNTIL_LAST_USER: dict[str, contextlib.ExitStack] = {}


def close_after_last_user(fixture_name: str, resources: contextlib.ExitStack) -> None:
    _OPEN_UNTIL_LAST_USER[fixture_name] = resources


def _used_after(item: pytest.Item, fixture_name: str) -> bool:
    items = item.session.items
    later = items[items.index(item) + 1 :] if item in items else []
    return any(fixture_name in getattr(other, "fixturenames", ()) for other in later)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    for fixture_name, resources in list(_OPEN_UNTIL_LAST_USER.items()):
        if nextitem is None or not _used_after(item, fixture_name):
            del _OPEN_UNTIL_LAST_USER[fixture_name]
            resources.close()


@pytest.fixture(scope="session")
def rules_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RulesStacks]:
    """The rules stack of test_rules_e2e.py and test_rules_victoriametrics.py (tests/integration/rules_stacks.py)."""
    with contextlib.ExitStack() as resources:
        close_after_last_user("rules_stacks", resources)
        yield resources.enter_context(start_rules_stacks(tmp_path_factory.mktemp("rules-e2e")))
