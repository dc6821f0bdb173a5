"""Which teams get a Slack channel, read tolerantly from the budget sidecar's `budgets.yaml`.

Only `budgets[].scope.team` and `budgets[].slack_channel` are read; every other
key belongs to the sidecar and is ignored, so the two can evolve separately.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpucost.errors import ConfigError
from gpucost.yamlfields import load_yaml_file

__all__ = ["TeamChannel", "default_channel", "parse_budget_teams", "read_budget_teams", "validate_team"]

# A team is a Kubernetes label value; anything else cannot have come from a pod label.
_TEAM_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
# Slack channel names (lower case, digits, `-`, `_`) or channel/user IDs, with an optional `#`/`@`.
_CHANNEL_RE = re.compile(r"^[#@]?[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass(frozen=True)
class TeamChannel:
    """A team and the Slack channel its alerts go to."""

    team: str
    channel: str


def default_channel(team: str) -> str:
    return f"#team-{team}-alerts"


def validate_team(team: object, *, file: str = "", key_path: str = "team") -> str:
    if not isinstance(team, str) or not _TEAM_RE.fullmatch(team):
        raise ConfigError(
            file, key_path, team, "a team must be a Kubernetes label value ([A-Za-z0-9_.-], 63 chars)"
        )
    return team


def _validate_channel(channel: object, *, file: str, key_path: str) -> str:
    if not isinstance(channel, str) or not _CHANNEL_RE.fullmatch(channel):
        raise ConfigError(file, key_path, channel, "a Slack channel must look like #name or a channel ID")
    return channel


def parse_budget_teams(document: Any, *, file: str = "") -> tuple[TeamChannel, ...]:
    """Teams in a parsed `budgets.yaml`, first channel per team wins, sorted by team."""
    if not isinstance(document, dict):
        raise ConfigError(file, "", document, "a budgets file must be a mapping with a `budgets:` list")
    budgets = document.get("budgets")
    if not isinstance(budgets, list):
        raise ConfigError(file, "budgets", budgets, "`budgets` must be a list")
    channels: dict[str, str] = {}
    for index, entry in enumerate(budgets):
        where = f"budgets[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(file, where, entry, "each budget must be a mapping")
        scope = entry.get("scope")
        if not isinstance(scope, dict):
            raise ConfigError(file, f"{where}.scope", scope, "`scope` must be a mapping with a `team`")
        if "team" not in scope:
            # A budget scoped to a cost center or a cluster has no team channel.
            continue
        team = validate_team(scope["team"], file=file, key_path=f"{where}.scope.team")
        raw_channel = entry.get("slack_channel")
        channel = (
            default_channel(team)
            if raw_channel is None
            else _validate_channel(raw_channel, file=file, key_path=f"{where}.slack_channel")
        )
        channels.setdefault(team, channel)
    return tuple(TeamChannel(team, channels[team]) for team in sorted(channels))


def read_budget_teams(path: Path) -> tuple[TeamChannel, ...]:
    return parse_budget_teams(load_yaml_file(path), file=str(path))
