"""Which teams get Alertmanager routes, and the Slack channel of each, from the budget sidecar's `budgets.yaml`.

The file is read by `gpucost.budgets.spec`, the one reader of the format, so a
file the generator accepts is one `gpucost budgets validate` accepts and the
sidecar runs with; this module only turns the parsed `BudgetFile` into one
`TeamChannel` per team.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gpucost.budgets.spec import BudgetFile, default_team_channel, load_budget_file, parse_budget_file
from gpucost.errors import ConfigError

__all__ = [
    "TeamChannel",
    "default_channel",
    "parse_budget_teams",
    "read_budget_teams",
    "team_channels",
    "validate_team",
]

# A team is a Kubernetes label value; anything else cannot have come from a pod label.
_TEAM_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class TeamChannel:
    """A team and the Slack channel its alerts go to."""

    team: str
    channel: str


def default_channel(team: str) -> str:
    return default_team_channel(team)


def validate_team(team: object, *, file: str = "", key_path: str = "team") -> str:
    """A team named on the command line (`--team`), checked as the budgets file checks `scope.team`."""
    if not isinstance(team, str) or not _TEAM_RE.fullmatch(team):
        raise ConfigError(
            file, key_path, team, "a team must be a Kubernetes label value ([A-Za-z0-9_.-], 63 chars)"
        )
    return team


def team_channels(budget_file: BudgetFile) -> tuple[TeamChannel, ...]:
    """One entry per team of the file, sorted by team, with the team's channel (`BudgetFile.team_channel`)."""
    return tuple(TeamChannel(team, budget_file.team_channel(team)) for team in budget_file.teams())


def parse_budget_teams(document: object, *, file: str = "") -> tuple[TeamChannel, ...]:
    """Teams of a parsed `budgets.yaml`; any error of the file is a `ConfigError`, as for the sidecar."""
    return team_channels(parse_budget_file(document, file))


def read_budget_teams(path: Path) -> tuple[TeamChannel, ...]:
    return team_channels(load_budget_file(path))
