"""The sidecar's rule file passes `promtool check rules` and its promtool unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gpucost_testing.servers import require_binary

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "rules"


def test_sidecar_rules_pass_promtool_check_and_unit_tests() -> None:
    promtool = require_binary("promtool")
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES / "gpucost.sidecar.rules.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        [promtool, "test", "rules", "gpucost.sidecar.rules.test.yaml"],
        cwd=RULES / "tests",
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert test.returncode == 0, test.stdout + test.stderr
