"""Alertmanager configuration for gpucost: routes, receivers and inhibition, generated per team.

`teams` reads which teams exist (and their Slack channels) from the budget
sidecar's `budgets.yaml`; `amconfig` turns them into an `alertmanager.yml`;
`python -m gpucost.alerting` is the command line.  The message format lives in
`alertmanager/templates/gpucost.tmpl`.
"""

from __future__ import annotations

from gpucost.alerting.amconfig import (
    BUDGET_ALERTS,
    DeliveryMode,
    Settings,
    Timings,
    build_config,
    render_config,
)
from gpucost.alerting.teams import TeamChannel, parse_budget_teams, read_budget_teams
from gpucost.contract.tiers import BUDGET_ALERT

__all__ = [
    "BUDGET_ALERT",
    "BUDGET_ALERTS",
    "DeliveryMode",
    "Settings",
    "TeamChannel",
    "Timings",
    "build_config",
    "parse_budget_teams",
    "read_budget_teams",
    "render_config",
]
