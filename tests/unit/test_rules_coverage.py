"""Every recorded series and alert of rules/*.yaml has a promtool unit test.

A recorded series counts as tested when its name appears as a metric name in the `expr:` of a
`promql_expr_test` of the matching rules/tests/<name>.test.yaml; an alert when it is the
`alertname:` of an `alert_rule_test` there. A name in a comment, a series name or an expected
label set does not count.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost_testing.servers import REPO_ROOT

RULES_DIR = REPO_ROOT / "rules"
TESTS_DIR = RULES_DIR / "tests"
RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))

# A PromQL metric name (recording rules use colons); the look-arounds keep `foo:rate5m`
# from matching inside `foo:rate5m_extra` or `x_foo:rate5m`.
_METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:])[A-Za-z_:][A-Za-z0-9_:]*(?![A-Za-z0-9_:])")


# String literals (label values, regexes) and comments of an expression are not metric names.
_STRINGS_AND_COMMENTS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`|#[^\n]*')


def unit_test_file_for(rule_file: Path) -> Path:
    """rules/gpucost.rules.yaml -> rules/tests/gpucost.rules.test.yaml."""
    return TESTS_DIR / f"{rule_file.stem}.test.yaml"


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path}: not a YAML mapping"
    return document


def rule_names(rule_file: Path) -> tuple[set[str], set[str]]:
    """The recorded series and the alert names a rule file defines."""
    records: set[str] = set()
    alerts: set[str] = set()
    for group in _load(rule_file).get("groups") or []:
        for rule in group.get("rules") or []:
            if "record" in rule:
                records.add(str(rule["record"]))
            if "alert" in rule:
                alerts.add(str(rule["alert"]))
    return records, alerts


def names_under_test(test_file: Path) -> tuple[set[str], set[str]]:
    """Metric names in promql_expr_test exprs and alertnames of alert_rule_tests."""
    in_exprs: set[str] = set()
    alertnames: set[str] = set()
    for case in _load(test_file).get("tests") or []:
        for expr_test in case.get("promql_expr_test") or []:
            expr = _STRINGS_AND_COMMENTS.sub(" ", str(expr_test.get("expr", "")))
            in_exprs.update(_METRIC_NAME.findall(expr))
        for alert_test in case.get("alert_rule_test") or []:
            if "alertname" in alert_test:
                alertnames.add(str(alert_test["alertname"]))
    return in_exprs, alertnames


def test_there_are_rule_files_to_check() -> None:
    names = {path.name for path in RULE_FILES}
    assert {
        "gpucost.rules.yaml",
        "gpucost.alerts.yaml",
        "gpucost.inference.rules.yaml",
        "gpucost.sidecar.rules.yaml",
    } <= names


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_every_recorded_series_and_alert_has_a_promtool_test(rule_file: Path) -> None:
    test_file = unit_test_file_for(rule_file)
    assert test_file.is_file(), f"{rule_file.name} has no unit-test file {test_file.relative_to(REPO_ROOT)}"
    assert f"../{rule_file.name}" in (_load(test_file).get("rule_files") or []), (
        f"{test_file.name} does not load {rule_file.name}"
    )
    records, alerts = rule_names(rule_file)
    in_exprs, alertnames = names_under_test(test_file)
    untested_records = sorted(records - in_exprs)
    untested_alerts = sorted(alerts - alertnames)
    assert not untested_records, f"recorded series of {rule_file.name} in no promql_expr_test expr: {untested_records}"
    assert not untested_alerts, f"alerts of {rule_file.name} in no alert_rule_test: {untested_alerts}"


def test_names_in_comments_labels_or_series_do_not_count(tmp_path: Path) -> None:
    fake = tmp_path / "x.test.yaml"
    fake.write_text(
        "# a:covered_in_comment:rate5m\n"
        "rule_files: [../x.yaml]\n"
        "tests:\n"
        "  - input_series:\n"
        "      - series: 'a:in_series:rate5m{team=\"a\"}'\n"
        "        values: '1'\n"
        "    promql_expr_test:\n"
        '      - expr: round(a:in_expr:rate5m{team="a:not_a_name"}, 1e-6)\n'
        "        eval_time: 0\n"
        "        exp_samples:\n"
        "          - labels: 'a:in_labels:rate5m{team=\"a\"}'\n"
        "            value: 1\n"
        "    alert_rule_test:\n"
        "      - alertname: InAlertTest\n"
        "        eval_time: 0\n"
        "        exp_alerts:\n"
        "          - exp_labels: {alertname: InLabels}\n"
    )
    in_exprs, alertnames = names_under_test(fake)
    assert "a:in_expr:rate5m" in in_exprs
    assert {"a:covered_in_comment:rate5m", "a:in_series:rate5m", "a:in_labels:rate5m"}.isdisjoint(in_exprs)
    assert alertnames == {"InAlertTest"}
    assert "a:in_expr" not in in_exprs
    assert "a:not_a_name" not in in_exprs


def test_the_test_file_of_each_rule_file() -> None:
    assert unit_test_file_for(RULES_DIR / "gpucost.rules.yaml") == TESTS_DIR / "gpucost.rules.test.yaml"
    assert unit_test_file_for(RULES_DIR / "gpucost.alerts.yaml") == TESTS_DIR / "gpucost.alerts.test.yaml"
    assert (
        unit_test_file_for(RULES_DIR / "gpucost.inference.rules.yaml")
        == TESTS_DIR / "gpucost.inference.rules.test.yaml"
    )
    assert unit_test_file_for(RULES_DIR / "gpucost.sidecar.rules.yaml") == TESTS_DIR / "gpucost.sidecar.rules.test.yaml"
