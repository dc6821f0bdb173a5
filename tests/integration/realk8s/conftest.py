"""A real kube-apiserver (and etcd) for the tests in this directory, one per package run.

Package-scoped, so both servers stop once this directory's tests are done instead of idling (about
0.5 GiB and a little CPU) under the timing-sensitive tests that follow in the same session.

Missing binaries fail the tests with the command that installs them: a skipped test
here would hide that the suite no longer checks anything against a real API server.
Each server starts in about 5 s, and only when a test asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gpucost_testing.real_apiserver import RealApiServer, RealClusterUnavailable


def serve(tmp_path_factory: pytest.TempPathFactory, name: str, *, watch_cache: bool) -> Iterator[RealApiServer]:
    missing = None
    try:
        server = RealApiServer(tmp_path_factory.mktemp(name), watch_cache=watch_cache).start()
    except RealClusterUnavailable as err:
        missing = str(err)
    if missing is not None:
        pytest.fail(missing, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def real_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealApiServer]:
    """The API server as a cluster runs it, watch cache on."""
    yield from serve(tmp_path_factory, "real-apiserver", watch_cache=True)


@pytest.fixture(scope="package")
def real_apiserver_without_watch_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealApiServer]:
    """Watches go straight to etcd, so an etcd compaction shows at once (a 410 Gone on demand)."""
    yield from serve(tmp_path_factory, "real-apiserver-no-watch-cache", watch_cache=False)
