"""The Alertmanager config generator: committed files match it; it reads budgets.yaml through the sidecar's reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.alerting import DeliveryMode, Settings, TeamChannel, build_config, render_config
from gpucost.alerting.__main__ import main
from gpucost.alerting.teams import parse_budget_teams, read_budget_teams
from gpucost.budgets.spec import parse_budget_file
from gpucost.contract.tiers import BUDGET_ALERT, BUDGET_TIERS, MAX_THRESHOLDS_PER_BUDGET
from gpucost.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
BOT_CONFIG = REPO_ROOT / "alertmanager" / "alertmanager.yml"
WEBHOOK_CONFIG = REPO_ROOT / "alertmanager" / "examples" / "webhook-per-team.yml"
EXAMPLE_BUDGETS = REPO_ROOT / "alertmanager" / "examples" / "budgets.yaml"

# The committed files and the arguments that produce them (same as `make alertmanager-config`).
COMMITTED = {
    BOT_CONFIG: ["--mode", "bot"],
    WEBHOOK_CONFIG: ["--mode", "webhook", "--teams-from", str(EXAMPLE_BUDGETS)],
}


@pytest.mark.parametrize("committed", list(COMMITTED), ids=lambda p: p.name)
def test_committed_config_matches_the_generator(tmp_path: Path, committed: Path) -> None:
    out = tmp_path / "out.yml"
    assert main([*COMMITTED[committed], "--out", str(out)]) == 0
    assert out.read_text() == committed.read_text(), (
        f"{committed} drifted from the generator; regenerate with `make alertmanager-config`"
    )


def receivers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r["slack_configs"][0] for r in config["receivers"]}


def test_each_budget_tier_rank_inhibits_every_lower_rank_of_the_same_team_and_budget() -> None:
    rules = build_config(Settings())["inhibit_rules"]
    budget_rules = [r for r in rules if f'alertname="{BUDGET_ALERT}"' in r["source_matchers"]]
    assert len(budget_rules) == MAX_THRESHOLDS_PER_BUDGET - 1
    assert (budget_rules[0]["source_matchers"], budget_rules[0]["target_matchers"]) == (
        [f'alertname="{BUDGET_ALERT}"', f'tier="{MAX_THRESHOLDS_PER_BUDGET - 1}"'],
        [f'alertname="{BUDGET_ALERT}"', 'tier=~"0|1|2|3|4|5|6|7|8"'],
    )
    assert (budget_rules[-1]["source_matchers"], budget_rules[-1]["target_matchers"]) == (
        [f'alertname="{BUDGET_ALERT}"', 'tier="1"'],
        [f'alertname="{BUDGET_ALERT}"', 'tier=~"0"'],
    )
    assert all(r["equal"] == ["team", "budget"] for r in budget_rules)


def _inhibited(rules: list[dict[str, Any]], source_rank: int, target_rank: int) -> bool:
    """Whether a source alert of one rank silences a target of another under label-equality rules."""
    for rule in rules:
        if rule["source_matchers"] != [f'alertname="{BUDGET_ALERT}"', f'tier="{source_rank}"']:
            continue
        target = rule["target_matchers"][1].removeprefix('tier=~"').removesuffix('"')
        return str(target_rank) in target.split("|")
    return False


def test_a_higher_tier_silences_exactly_the_lower_ones() -> None:
    rules = build_config(Settings())["inhibit_rules"]
    for source in range(MAX_THRESHOLDS_PER_BUDGET):
        for target in range(MAX_THRESHOLDS_PER_BUDGET):
            assert _inhibited(rules, source, target) == (target < source), (source, target)


def test_exporter_down_never_inhibits_budget_alerts() -> None:
    rules = build_config(Settings())["inhibit_rules"]
    exporter_targets = " ".join(
        str(r["target_matchers"]) for r in rules if "ExporterDown" in r["source_matchers"][0]
    )
    assert BUDGET_ALERT not in exporter_targets
    assert "GpuIdleWaste" in exporter_targets and "GpuCostUnpricedGpus" in exporter_targets


def test_repeat_intervals_per_tier_and_resolved_only_at_or_over_budget() -> None:
    config = build_config(Settings())
    budget_route = config["route"]["routes"][1]
    assert budget_route["matchers"] == [f'alertname="{BUDGET_ALERT}"', 'team=~".+"']
    tiers = [(r.get("matchers"), r["receiver"], r["repeat_interval"]) for r in budget_route["routes"]]
    assert tiers == [
        (['threshold="50"'], "slack-team-budgets", "24h"),
        (['threshold="80"'], "slack-team-budgets", "12h"),
        (['threshold="100"'], "slack-team-budgets-critical", "4h"),
        (['threshold="125"'], "slack-team-budgets-critical", "4h"),
        # A budget's own percents: at or over the budget the rule says critical.
        (['severity="critical"'], "slack-team-budgets-critical", "4h"),
        (None, "slack-team-budgets", "12h"),
    ]
    assert [tier.label for tier in BUDGET_TIERS] == ["50", "80", "100", "125"]
    slack = receivers(config)
    assert slack["slack-team-budgets"]["send_resolved"] is False
    assert slack["slack-team-budgets-critical"]["send_resolved"] is True
    assert budget_route["group_by"] == ["team", "budget", "threshold"]


def test_bot_mode_reads_the_token_from_a_file_and_picks_the_channel_per_alert() -> None:
    slack = receivers(build_config(Settings(secrets_dir="/run/secrets")))
    for config in slack.values():
        assert config["api_url"] == "https://slack.com/api/chat.postMessage"
        assert config["http_config"]["authorization"]["credentials_file"] == "/run/secrets/slack-bot-token"
    assert slack["slack-team-budgets"]["channel"] == '{{ template "gpucost.slack.team_channel" . }}'


def test_webhook_mode_has_one_receiver_set_per_team_and_no_inline_url() -> None:
    teams = (TeamChannel("nlp", "#team-nlp-alerts"), TeamChannel("vision", "#vision-budget"))
    config = build_config(Settings(mode=DeliveryMode.WEBHOOK, teams=teams, secrets_dir="/s"))
    slack = receivers(config)
    assert sorted(slack) == [
        "slack-platform",
        "team-nlp-alerts",
        "team-nlp-budgets",
        "team-nlp-budgets-critical",
        "team-vision-alerts",
        "team-vision-budgets",
        "team-vision-budgets-critical",
    ]
    assert slack["team-vision-budgets"]["api_url_file"] == "/s/slack-webhook-team-vision"
    assert slack["team-vision-budgets"]["channel"] == "#vision-budget"
    assert all("api_url" not in c for c in slack.values())
    assert "hooks.slack.com" not in render_config(Settings(mode=DeliveryMode.WEBHOOK, teams=teams))


def test_rendered_yaml_has_no_anchors_and_parses_back() -> None:
    text = render_config(Settings())
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text) == build_config(Settings())


# --- budgets.yaml reader ------------------------------------------------------------


def test_example_budgets_yield_teams_with_default_or_own_channel() -> None:
    assert read_budget_teams(EXAMPLE_BUDGETS) == (
        TeamChannel("nlp", "#team-nlp-alerts"),
        TeamChannel("recsys", "#team-recsys-alerts"),
        TeamChannel("vision", "#vision-budget"),
    )


def _budget(name: str, team: object, **extra: object) -> dict[str, object]:
    return {"name": name, "scope": {"team": team}, "monthly_usd": 100, **extra}


def test_a_team_gets_its_first_budget_channel_else_the_default_as_the_digest_does() -> None:
    document = {
        "budgets": [
            _budget("a", "nlp"),
            _budget("b", "nlp", slack_channel="#nlp-spend"),
            _budget("c", "nlp", slack_channel="#other"),
            _budget("d", "vision"),
        ],
    }
    teams = parse_budget_teams(document, file="budgets.yaml")
    assert teams == (TeamChannel("nlp", "#nlp-spend"), TeamChannel("vision", "#team-vision-alerts"))
    budget_file = parse_budget_file(document, "budgets.yaml")
    assert [budget_file.team_channel(team.team) for team in teams] == [team.channel for team in teams]


@pytest.mark.parametrize(
    ("document", "key_path", "problem"),
    [
        ([], "", "must be a mapping"),
        ({"budget": []}, "budget", "unknown key"),
        ({"version": 3, "budgets": []}, "version", "unknown key"),
        ({"budgets": {"team": "x"}}, "budgets", "must be a list"),
        ({"budgets": ["nlp"]}, "budgets[0]", "must be a mapping"),
        ({"budgets": [_budget("a", "nlp", amount_usd=5)]}, "budgets[0].amount_usd", "`monthly_usd`"),
        (
            {"budgets": [{"name": "a", "scope": {"team": "nlp"}, "amount_usd": 5}]},
            "budgets[0].amount_usd",
            "unknown key",
        ),
        ({"budgets": [_budget("a", "nlp", clouds=["gcp"])]}, "budgets[0].clouds", "unknown key"),
        ({"budgets": [{"name": "a", "scope": "nlp", "monthly_usd": 1}]}, "budgets[0].scope", "must be a mapping"),
        (
            {"budgets": [{"name": "a", "scope": {"cost_center": "cc-1"}, "monthly_usd": 1}]},
            "budgets[0].scope.team",
            "required",
        ),
        ({"budgets": [_budget("a", "nlp team")]}, "budgets[0].scope.team", "label value"),
        ({"budgets": [_budget("a", 7)]}, "budgets[0].scope.team", "non-empty string"),
        ({"budgets": [_budget("a", "a", slack_channel="#a b")]}, "budgets[0].slack_channel", "Slack channel"),
        ({"budgets": [_budget("a", "a", slack_channel="C0123ABCDEF")]}, "budgets[0].slack_channel", "Slack channel"),
    ],
)
def test_the_generator_rejects_what_the_sidecar_rejects_naming_the_key(
    document: Any, key_path: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as from_generator:
        parse_budget_teams(document, file="budgets.yaml")
    with pytest.raises(ConfigError) as from_sidecar:
        parse_budget_file(document, "budgets.yaml")
    assert from_generator.value.one_line() == from_sidecar.value.one_line()
    assert (from_generator.value.file, from_generator.value.key_path) == ("budgets.yaml", key_path)
    assert problem in from_generator.value.one_line()


def test_cli_rejects_an_old_format_budgets_file_naming_file_key_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets:\n  - {name: nlp-monthly, scope: {team: nlp}, amount_usd: 20000}\n")
    assert main(["--teams-from", str(budgets), "--mode", "webhook"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {budgets}: budgets[0].amount_usd: unknown key; the monthly amount is `monthly_usd`"
        " (got 'amount_usd')\n"
    )


def test_cli_reports_a_bad_budgets_file_in_one_line_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets: [unclosed\n")
    assert main(["--teams-from", str(budgets), "--mode", "webhook"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {budgets}:") and err.count("\n") == 1


def test_cli_needs_teams_for_webhook_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--mode", "webhook"]) == 2
    assert "webhook mode needs" in capsys.readouterr().err


def test_cli_rejects_a_team_that_is_not_a_label_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--team", "nlp", "--team", 'x"}}{{', "--mode", "webhook"]) == 2
    assert "--team" in capsys.readouterr().err
