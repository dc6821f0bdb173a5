"""The inference cost-split rules pass `promtool check rules` and their unit tests."""

from __future__ import annotations

import subprocess

import pytest

from gpucost_testing.servers import REPO_ROOT, require_binary

pytestmark = pytest.mark.integration

RULES = REPO_ROOT / "rules" / "gpucost.inference.rules.yaml"
RULE_TESTS = REPO_ROOT / "rules" / "tests" / "gpucost.inference.rules.test.yaml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    # run from the test file's folder: its rule_files path is relative to it
    return subprocess.run(
        [require_binary("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=RULE_TESTS.parent,
    )


def test_inference_rules_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_inference_rules_unit_tests_pass_including_the_70_30_split() -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
