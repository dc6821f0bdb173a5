"""Shared pytest configuration: the checkout's source folders for the subprocesses the tests start,
and the pytest-xdist scheduler that keeps tests sharing a long-lived fixture on one worker
(tests/support/xdist_groups.py).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.xdist_groups import make_scheduler


def pytest_sessionstart(session: pytest.Session) -> None:
    # pyproject's `pythonpath` puts exporter/ (a checkout without `pip install -e`) and the folders
    # outside the wheel (tests/ for gpucost_testing, bench/, examples/: #18) on this process's
    # sys.path; children (`python -m gpucost_bench`, `python -m gpucost_demo`, the exporter) need
    # them too, and inherit the environment.
    folders = [str(path) for path in session.config.getini("pythonpath")]
    inherited = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    inherited = [entry for entry in inherited if entry and entry not in folders]
    os.environ["PYTHONPATH"] = os.pathsep.join([*folders, *inherited])


@pytest.hookimpl(tryfirst=True)  # before pytest's tmpdir plugin reads basetemp
def pytest_configure(config: pytest.Config) -> None:
    # xdist puts a worker's temp dirs under '<the controller's>/popen-gwN/': every tmp_path is 10
    # characters longer than in a serial run, and one-line errors cut the value they quote at 80
    # characters (gpucost.errors), so tests that look for a tmp path in such an error would fail
    # only under xdist.  Each worker makes its own numbered /tmp/pytest-of-<user>/pytest-<n>/
    # instead, as a serial run does, unless --basetemp was given.
    worker = hasattr(config, "workerinput")
    basetemp_given = any(arg.startswith("--basetemp") for arg in config.invocation_params.args)
    if worker and not basetemp_given:
        config.option.basetemp = None


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadfile":
        return None  # xdist's own scheduler for any other --dist
    return make_scheduler(config, log)
