"""`make test` runs on two xdist workers: modules that share a fixture living longer than a module
(the rules stack, the real kube-apiserver) must be scheduled as one unit (tests/support/xdist_groups.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gpucost_testing.servers import REPO_ROOT
from tests.support.xdist_groups import fixtures_split_across_groups, worker_group

# Collects the given paths in a fresh pytest and prints what the fixture scan finds there.
SCAN = """
import json, sys, pytest
from tests.support.xdist_groups import fixtures_split_across_groups, modules_by_shared_fixture

class Scan:
    def pytest_collection_finish(self, session):
        users = {name: sorted(modules) for name, modules in modules_by_shared_fixture(session.items).items()}
        print("SCAN " + json.dumps({"users": users, "split": fixtures_split_across_groups(session.items)}))

sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[Scan()]))
"""


def test_every_module_sharing_a_session_or_package_fixture_is_in_one_worker_group(
    request: pytest.FixtureRequest,
) -> None:
    # This run's items: under `make test` the whole suite, on each worker too (each collects it all).
    assert fixtures_split_across_groups(request.session.items) == {}, (
        "add these modules to SHARED_WORKER_GROUPS in tests/support/xdist_groups.py"
    )


def test_the_scan_finds_the_rules_stack_and_real_apiserver_users_and_the_table_keeps_each_together() -> None:
    scanned = subprocess.run(
        [sys.executable, "-c", SCAN, "tests/integration/realk8s", "tests/integration/test_rules_e2e.py",
         "tests/integration/test_rules_victoriametrics.py", "tests/integration/test_rules_promtool.py"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    found = json.loads(next(line for line in scanned.stdout.splitlines() if line.startswith("SCAN "))[5:])
    assert found["users"]["rules_stacks"] == [
        "tests/integration/test_rules_e2e.py", "tests/integration/test_rules_victoriametrics.py"]
    realk8s_users = found["users"]["tests/integration/realk8s/"]
    assert "tests/integration/realk8s/test_real_apiserver_basics.py" in realk8s_users
    assert len(realk8s_users) >= 3
    assert "tests/integration/test_rules_promtool.py" not in str(found["users"])  # no long-lived fixture
    assert found["split"] == {}


@pytest.mark.parametrize(("nodeid", "group"), [
    ("tests/integration/realk8s/test_chart_real_apiserver.py::test_x[operator]", "real-apiserver"),
    ("tests/integration/realk8s/test_real_apiserver_pki.py::test_y", "real-apiserver"),
    ("tests/integration/test_rules_e2e.py::test_a", "rules-stack"),
    ("tests/integration/test_rules_victoriametrics.py::test_b", "rules-stack"),
    ("tests/integration/test_rules_promtool.py::test_c[x.yaml]", "tests/integration/test_rules_promtool.py"),
    ("tests/unit/test_durations.py::test_d", "tests/unit/test_durations.py"),
])
def test_a_test_runs_in_its_shared_group_else_in_its_module(nodeid: str, group: str) -> None:
    assert worker_group(nodeid) == group
