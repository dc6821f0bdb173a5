"""The budgets file: parsing, one-line errors with key paths, overlaps, per-month amounts, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gpucost.budgets.cli import main
from gpucost.budgets.spec import DEFAULT_THRESHOLDS_PERCENT, Month, load_budget_file, parse_budget_file
from gpucost.errors import ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "budgets"


def _one(**overrides: object) -> dict[str, object]:
    budget: dict[str, object] = {"name": "research-monthly", "scope": {"team": "research"}, "monthly_usd": 50000}
    budget.update(overrides)
    return {"budgets": [budget]}


BAD_FILES = [
    ({"budget": []}, "budget:", "unknown key"),
    ({"budgets": {"name": "x"}}, "budgets:", "must be a list"),
    (_one(name="Research Monthly"), "budgets[0].name:", "lower-case"),
    (_one(scope={"model": "llama"}), "budgets[0].scope.team:", "is required"),
    (_one(scope={"team": "research", "region": "eu"}), "budgets[0].scope.region:", "unknown key"),
    (_one(monthly_usd=-5), "budgets[0].monthly_usd:", "must not be negative"),
    (_one(monthly_usd="50k"), "budgets[0].monthly_usd:", "must be a number"),
    (_one(thresholds_percent=[50, 100, 80]), "budgets[0].thresholds_percent[2]:", "strictly increasing"),
    (_one(thresholds_percent=[0, 90]), "budgets[0].thresholds_percent[0]:", "greater than 0 and at most 1000"),
    (_one(thresholds_percent=[5, 1000.5]), "budgets[0].thresholds_percent[1]:", "greater than 0 and at most 1000"),
    (_one(thresholds_percent=list(range(1, 12))), "budgets[0].thresholds_percent:", "at most 10 thresholds"),
    (_one(thresholds_percent=[12.34, 12.341]), "budgets[0].thresholds_percent[1]:", "4 significant digits"),
    (_one(slack_channel="research-finops"), "budgets[0].slack_channel:", "Slack channel"),
    (_one(amount_usd=5), "budgets[0].amount_usd:", "unknown key; the monthly amount is `monthly_usd`"),
    (_one(owners=["alice"]), "budgets[0].owners[0]:", "e-mail"),
    (_one(start_month="2026-13"), "budgets[0].start_month:", "YYYY-MM"),
    (_one(start_month="2026-06", end_month="2026-01"), "budgets[0].end_month:", "before start_month"),
    (_one(monthly_overrides={"2026-1": 100}), "budgets[0].monthly_overrides.2026-1:", "YYYY-MM"),
    (
        _one(start_month="2026-06", monthly_overrides={"2026-01": 100}),
        "budgets[0].monthly_overrides.2026-01:",
        "outside",
    ),
    (_one(enforce="block"), "budgets[0].enforce:", "must be one of off, quota"),
    (_one(resources="cpu"), "budgets[0].resources:", "must be one of gpu, node"),
    (_one(resources=["gpu"]), "budgets[0].resources:", "must be"),
    (_one(enforce="quota"), "budgets[0].enforce:", "needs scope.namespace"),
    (
        {"budgets": [_one()["budgets"][0], _one()["budgets"][0]]},  # type: ignore[index]
        "budgets[1].name:",
        "duplicate budget name",
    ),
    (
        {"budgets": [], "fixed_costs": [{"name": "nvaie", "monthly_usd": 10, "allocation": "by-size"}]},
        "fixed_costs[0].allocation:",
        "proportional, even or team:",
    ),
]


@pytest.mark.parametrize(("document", "key_path", "problem"), BAD_FILES)
def test_bad_budget_file_is_one_line_naming_file_key_path_and_value(
    document: object, key_path: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_budget_file(document, "budgets.yaml")
    message = caught.value.one_line()
    assert "\n" not in message
    assert message.startswith(f"budgets.yaml: {key_path}")
    assert problem in message
    assert "(got " in message


def test_valid_file_parses_with_defaults_and_scope_labels() -> None:
    budgets = load_budget_file(FIXTURES / "valid.yaml")
    research = budgets.by_name("research-monthly")
    assert research is not None
    assert research.thresholds_percent == DEFAULT_THRESHOLDS_PERCENT
    assert research.scope.label_values() == ("research", "", "", "", "")
    assert research.slack_channel == "#research-finops"
    platform = budgets.by_name("platform-inference")
    assert platform is not None and platform.enforce == "quota"
    assert platform.enforcement_namespaces() == ("inference",)
    assert [fixed.allocation for fixed in budgets.fixed_costs] == ["proportional", "even", "team:research"]


def test_per_month_amounts_and_start_month_decide_the_monthly_budget() -> None:
    budgets = load_budget_file(FIXTURES / "valid.yaml")
    llama = budgets.by_name("research-llama")
    assert llama is not None
    assert llama.amount_for(Month(2025, 12)) is None
    assert llama.amount_for(Month(2026, 11)) == 50000
    assert llama.amount_for(Month(2026, 12)) == 30000


def test_overlapping_scopes_are_reported_not_rejected() -> None:
    budgets = load_budget_file(FIXTURES / "valid.yaml")
    assert [(o.first, o.second) for o in budgets.overlaps] == [("research-monthly", "research-llama")]
    assert "team=research,model=llama-70b" in str(budgets.overlaps[0])


def test_a_teams_channel_is_its_first_budget_channel_else_team_alerts() -> None:
    document = {
        "budgets": [
            {"name": "a", "scope": {"team": "research"}, "monthly_usd": 1},
            {"name": "b", "scope": {"team": "research", "model": "x"}, "monthly_usd": 1, "slack_channel": "#r-x"},
            {"name": "c", "scope": {"team": "research"}, "monthly_usd": 1, "slack_channel": "#r-other"},
            {"name": "d", "scope": {"team": "search"}, "monthly_usd": 1},
        ]
    }
    budget_file = parse_budget_file(document, "f.yaml")
    assert budget_file.team_channel("research") == "#r-x"
    assert budget_file.team_channel("search") == "#team-search-alerts"
    assert budget_file.team_channel("absent") == "#team-absent-alerts"


def test_scopes_of_different_teams_or_disjoint_periods_do_not_overlap() -> None:
    document = {
        "budgets": [
            {"name": "a", "scope": {"team": "research", "model": "x"}, "monthly_usd": 1},
            {"name": "b", "scope": {"team": "research", "model": "y"}, "monthly_usd": 1},
            {"name": "c", "scope": {"team": "search"}, "monthly_usd": 1},
            {"name": "d", "scope": {"team": "search"}, "monthly_usd": 1, "start_month": "2030-01"},
            {"name": "e", "scope": {"team": "search"}, "monthly_usd": 1, "end_month": "2020-01"},
        ]
    }
    overlaps = parse_budget_file(document, "f.yaml").overlaps
    assert [(o.first, o.second) for o in overlaps] == [("c", "d"), ("c", "e")]


def test_validate_cli_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "budgets.yaml"
    bad.write_text(yaml.safe_dump(_one(monthly_usd=-1)))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{bad}: budgets[0].monthly_usd: must not be negative (got -1)" in err


def test_validate_cli_reports_overlaps_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FIXTURES / "valid.yaml")]) == 0
    out = capsys.readouterr().out
    assert "warning: budgets 'research-monthly' and 'research-llama' overlap" in out
    assert "ok (3 budgets, 3 fixed costs)" in out


def test_console_script_help_and_malformed_yaml_exit_codes(tmp_path: Path) -> None:
    help_run = subprocess.run(
        [sys.executable, "-m", "gpucost.budgets.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert help_run.returncode == 0 and "validate" in help_run.stdout
    broken = tmp_path / "b.yaml"
    broken.write_text("budgets: [\n")
    run = subprocess.run(
        [sys.executable, "-m", "gpucost.budgets.cli", "validate", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and "not valid YAML" in run.stderr


@pytest.mark.parametrize("thresholds", [[5, 90], [0.5], [1000], [12.5, 33.3, 150], list(range(10, 101, 10))])
def test_any_thresholds_in_range_validate_as_written(thresholds: list[float]) -> None:
    [budget] = parse_budget_file(_one(thresholds_percent=thresholds), "budgets.yaml").budgets
    assert budget.thresholds_percent == tuple(float(value) for value in thresholds)


def test_a_budget_counts_gpu_cost_unless_it_says_the_whole_node() -> None:
    document = {
        "budgets": [
            {"name": "gpu-default", "scope": {"team": "research"}, "monthly_usd": 1},
            {"name": "gpu-said", "scope": {"team": "research"}, "monthly_usd": 1, "resources": "gpu"},
            {"name": "whole-node", "scope": {"team": "research"}, "monthly_usd": 1, "resources": "node"},
        ]
    }
    budgets = parse_budget_file(document, "budgets.yaml").budgets
    assert [budget.resources for budget in budgets] == ["gpu", "gpu", "node"]


def test_validate_cli_names_file_field_and_value_of_a_bad_resources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "budgets.yaml"
    bad.write_text(yaml.safe_dump(_one(resources="whole")))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{bad}: budgets[0].resources: must be one of gpu, node (got 'whole')" in err
