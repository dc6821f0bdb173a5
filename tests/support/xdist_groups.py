"""Which tests share a pytest-xdist worker under `make test` (`-n 2`, `--dist loadfile`).

Each xdist worker is a pytest session of its own, so a fixture that outlives a module exists once
per worker that uses it.  Each module runs whole on one worker (its module fixtures start their
servers once), and the modules of one SHARED_WORKER_GROUPS group run back to back on one worker:
they share a fixture of session or package scope that would otherwise start on both workers (and,
for the rules stack, stay up on the first one until that worker's last test).

xdist's own `--dist loadgroup` reads `xdist_group` marks, but with pytest 9.2 it silently ignores
them (pytest-dev/pytest-xdist#1386: the group travels in a node id field pytest no longer reads).
So the grouping is a scheduler of our own keyed by module path, and
tests/unit/test_xdist_worker_groups.py checks that the table covers every module sharing such a
fixture.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

# A module's path, or a package's path ending in "/" -> the group its tests run in.
SHARED_WORKER_GROUPS: dict[str, str] = {
    # The package-scoped real_apiserver fixtures (realk8s/conftest.py) stop as soon as a worker
    # runs a test outside the package: the package's modules must run back to back.
    "tests/integration/realk8s/": "real-apiserver",
    # The session-scoped rules stack (integration/conftest.py), stopped after its last user.
    "tests/integration/test_rules_e2e.py": "rules-stack",
    "tests/integration/test_rules_victoriametrics.py": "rules-stack",
}


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def worker_group(nodeid: str) -> str:
    """The unit of work a test belongs to: its SHARED_WORKER_GROUPS group, else its own module."""
    module = module_of(nodeid)
    for path, group in SHARED_WORKER_GROUPS.items():
        if module == path or (path.endswith("/") and module.startswith(path)):
            return group
    return module


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's loadfile scheduler with each shared group as one unit of work."""
    # Imported here: the suite must also load without xdist (`pytest -p no:xdist -o addopts=`).
    from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

    class SharedFixtureScheduling(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return SharedFixtureScheduling(config, log)


def _long_lived_fixtures_of(item: pytest.Item) -> set[str]:
    """The conftest fixtures `item` uses that outlive a module: a session fixture by its name, a
    package fixture by its package's path (all of whose users must run back to back)."""
    fixture_info = getattr(item, "_fixtureinfo", None)  # absent on non-function items (doctests)
    if fixture_info is None:
        return set()
    shared: set[str] = set()
    for name, definitions in fixture_info.name2fixturedefs.items():
        definition = definitions[-1]  # the one in force for this item (overrides come last)
        # Built-in and plugin fixtures have no base id; a test module's own have the module's.
        if not definition.baseid or definition.baseid.endswith(".py"):
            continue
        if definition.scope == "session":
            shared.add(name)
        elif definition.scope == "package":
            shared.add(definition.baseid + "/")
    return shared


def modules_by_shared_fixture(items: Iterable[pytest.Item]) -> dict[str, set[str]]:
    """Long-lived conftest fixture -> the modules whose tests use it."""
    users: dict[str, set[str]] = {}
    for item in items:
        for fixture in _long_lived_fixtures_of(item):
            users.setdefault(fixture, set()).add(module_of(item.nodeid))
    return users


def fixtures_split_across_groups(items: Iterable[pytest.Item]) -> dict[str, dict[str, str]]:
    """Long-lived fixture -> {module: group}, for each fixture whose users are in several groups."""
    split = {}
    for fixture, modules in sorted(modules_by_shared_fixture(items).items()):
        groups = {module: worker_group(module) for module in sorted(modules)}
        if len(set(groups.values())) > 1:
            split[fixture] = groups
    return split
