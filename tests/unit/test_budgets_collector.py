"""The sidecar's collector: budget series from the file, describe() without I/O, reload keeps last good."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gpucost.budgets.collector import BudgetCollector, build_registry
from gpucost.budgets.reload import BudgetFileWatcher
from gpucost.budgets.state import ReconciliationResult, SidecarState

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "budgets"
NOVEMBER = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)
DECEMBER = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)


def _samples(state: SidecarState, now: dt.datetime) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(build_registry(state, clock=lambda: now)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class _ExplodingState(SidecarState):
    def snapshot(self):  # type: ignore[no-untyped-def]
        raise AssertionError("describe() must not read state")


def test_describe_does_no_io_and_registration_does_not_collect() -> None:
    collector = BudgetCollector(_ExplodingState())
    names = {family.name for family in collector.describe()}
    assert {"gpucost_budget_usd", "gpucost_budget_threshold_ratio", "gpucost_budgets_config_valid"} <= names
    build_registry(_ExplodingState())


def test_budget_series_carry_scope_labels_channel_and_threshold_ratios(tmp_path: Path) -> None:
    state = SidecarState()
    assert BudgetFileWatcher(FIXTURES / "valid.yaml", state).check()
    samples = _samples(state, NOVEMBER)
    labels = (
        ("budget", "research-llama"),
        ("cluster", ""),
        ("cost_center", ""),
        ("model", "llama-70b"),
        ("namespace", ""),
        ("resources", "gpu"),
        ("slack_channel", ""),
        ("team", "research"),
    )
    assert samples[("gpucost_budget_usd", labels)] == 50000
    assert samples[("gpucost_budget_threshold_ratio", (("budget", "research-llama"), ("threshold", "0.8")))] == 0.8
    assert samples[("gpucost_budget_threshold_ratio", (("budget", "research-llama"), ("threshold", "1")))] == 1.0
    assert samples[("gpucost_budget_threshold_ratio", (("budget", "research-llama"), ("threshold", "1.25")))] == 1.25
    assert samples[("gpucost_budgets_config_valid", ())] == 1
    fixed = (("allocation", "team:research"), ("name", "research-cluster-support"))
    assert samples[("gpucost_fixed_cost_usd_per_month", fixed)] == 800
    # December uses the per-month override.
    assert _samples(state, DECEMBER)[("gpucost_budget_usd", labels)] == 30000


def test_bad_new_file_keeps_last_good_budgets_and_logs_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text((FIXTURES / "valid.yaml").read_text())
    state = SidecarState()
    watcher = BudgetFileWatcher(path, state)
    assert watcher.check()
    path.write_text("budgets:\n  - name: x\n    scope: {team: research}\n    monthly_usd: lots\n")
    with caplog.at_level(logging.ERROR):
        assert not watcher.check()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"{path}: budgets[0].monthly_usd: must be a number (got 'lots')" in errors[0]
    samples = _samples(state, NOVEMBER)
    assert samples[("gpucost_budgets_config_valid", ())] == 0
    assert sum(1 for name, _ in samples if name == "gpucost_budget_usd") == 3
    assert not watcher.check()  # unchanged bad content is not re-logged


def test_reconciliation_and_enforcement_series_render() -> None:
    state = SidecarState()
    state.set_reconciliation(ReconciliationResult("aws", "team=research", 110.0, 100.0, final=True))
    state.set_reconciliation(ReconciliationResult("aws", "team=nobody", 5.0, 0.0, final=True))
    state.count_enforcement("b", "apply_quota")
    samples = _samples(state, NOVEMBER)
    assert samples[("gpucost_reconciliation_ratio", (("provider", "aws"), ("scope", "team=research")))] == 1.1
    assert samples[("gpucost_reconciliation_delta_usd", (("provider", "aws"), ("scope", "team=research")))] == 10.0
    assert ("gpucost_reconciliation_ratio", (("provider", "aws"), ("scope", "team=nobody"))) not in samples
    assert samples[("gpucost_enforcement_actions_total", (("action", "apply_quota"), ("budget", "b")))] == 1
