"""The weekly Slack digest per team: month-to-date vs budget, forecast, top models, idle waste, top saving.

`gather_team_digest` reads recorded series from Prometheus (named by
`gpucost.contract.recorded`): GPU spend, or whole-node spend when the team's
team-wide budgets all count the whole node (`resources: node`), so the
spend and the budget it is measured against count the same thing;
`render_blocks` is
pure (values in, Block Kit out); `send_digest` posts with slack_sdk, retrying
on HTTP 429 via `RateLimitErrorRetryHandler`.  The top saving comes from the
optimization scorecard (`gpucost.budgets.top_saving`) and is left out when the
scorecard cannot be computed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from gpucost.budgets.spec import BudgetFile, Month, budgets_for_team, default_team_channel
from gpucost.budgets.spec_model import BudgetResources
from gpucost.budgets.top_saving import ScorecardTopSavings, TopSaving
from gpucost.contract.recorded import name
from gpucost.errors import SourceUnavailable
from gpucost.promapi import PrometheusClient

__all__ = [
    "TeamDigest",
    "default_channel",
    "gather_team_digest",
    "make_slack_client",
    "render_blocks",
    "send_digest",
    "top_saving_text",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TeamDigest:
    team: str
    month: Month
    month_to_date_usd: float
    forecast_usd: float
    budget_usd: float | None
    top_models: tuple[tuple[str, float], ...]
    idle_usd_per_hour: float
    top_saving: TopSaving | None = None
    # What the spend and the budget count: the GPUs ("gpu") or the whole node ("node").
    resources: BudgetResources = "gpu"

    @property
    def percent_used(self) -> float | None:
        return 100.0 * self.month_to_date_usd / self.budget_usd if self.budget_usd else None


def default_channel(team: str, budget_file: BudgetFile | None) -> str:
    """The team's digest channel: the same rule the Alertmanager generator uses (budgets/spec.py)."""
    return budget_file.team_channel(team) if budget_file is not None else default_team_channel(team)


def gather_team_digest(
    prometheus: PrometheusClient,
    team: str,
    budget_file: BudgetFile | None,
    now: dt.datetime,
    top: int = 3,
    top_savings: ScorecardTopSavings | None = None,
) -> TeamDigest:
    selector = f'{{team="{_escape(team)}"}}'

    def total(expr: str) -> float:
        return sum(value for _labels, value in prometheus.query(expr, at=now))

    month = Month.of(now.date())
    team_budget: float | None = None
    resources: BudgetResources = "gpu"
    if budget_file is not None:
        # The team-wide budget (no narrower scope) is the one the digest measures against.
        team_wide = [budget for budget in budgets_for_team(budget_file, team)
                     if budget.scope.describe() == f"team={team}"]
        known = [amount for amount in (budget.amount_for(month) for budget in team_wide) if amount is not None]
        team_budget = sum(known) if known else None
        if team_wide and all(budget.resources == "node" for budget in team_wide):
            resources = "node"
    spend = "whole_node_spend" if resources == "node" else "spend"
    forecast = "whole_node_forecast" if resources == "node" else "forecast"
    models = prometheus.query(
        f"topk({top}, sum by (model) ({name(f'team_model_{spend}_month_to_date')}{selector}))", at=now
    )
    return TeamDigest(
        team=team,
        month=month,
        month_to_date_usd=total(f"sum({name(f'team_{spend}_month_to_date')}{selector})"),
        forecast_usd=total(f"sum({name(f'team_{forecast}_month_end')}{selector})"),
        budget_usd=team_budget,
        top_models=tuple(
            sorted(((labels.get("model", ""), value) for labels, value in models), key=lambda m: -m[1])
        ),
        idle_usd_per_hour=total(
            f'sum({name("team_component_cost_rate")}{{team="{_escape(team)}",component="idle"}})'
        ),
        top_saving=top_savings.for_team(team, now) if top_savings is not None else None,
        resources=resources,
    )


def render_blocks(digest: TeamDigest) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and Block Kit blocks for one team's digest."""
    budget = f"${digest.budget_usd:,.2f}" if digest.budget_usd is not None else "no budget"
    used = f"{digest.percent_used:.0f} %" if digest.percent_used is not None else "n/a"
    counted = "whole-node" if digest.resources == "node" else "GPU"
    text = (
        f"{counted[0].upper()}{counted[1:]} spend for {digest.team}, {digest.month}: "
        f"${digest.month_to_date_usd:,.2f} of {budget} ({used}), "
        f"forecast ${digest.forecast_usd:,.2f}"
    )
    models = (
        "\n".join(f"• `{model or 'unlabelled'}`: ${usd:,.2f}" for model, usd in digest.top_models) or "none"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Weekly {counted} cost: {digest.team}"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Month to date*\n${digest.month_to_date_usd:,.2f}"},
                {"type": "mrkdwn", "text": f"*Monthly budget*\n{budget}"},
                {"type": "mrkdwn", "text": f"*Budget used*\n{used}"},
                {"type": "mrkdwn", "text": f"*Forecast month end*\n${digest.forecast_usd:,.2f}"},
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Top models this month*\n{models}"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f"*Idle GPU cost now*\n${digest.idle_usd_per_hour:,.2f}/h "
                    f"(≈ ${digest.idle_usd_per_hour * 24 * 7:,.2f} per week at this rate)"
                ),
            },
        },
    ]
    if digest.top_saving is not None:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": top_saving_text(digest.top_saving)}})
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "gpucost estimates; reconciled daily with the bill"}],
        }
    )
    return text, blocks


def top_saving_text(saving: TopSaving) -> str:
    risk = f" · risk: {saving.risk}" if saving.risk else ""
    return f"*Top saving:* `{saving.lever}` — ${saving.usd_per_month:,.2f}/month ({saving.confidence}){risk}"


def make_slack_client(token: str, base_url: str | None = None, max_retries: int = 3) -> Any:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    kwargs: dict[str, Any] = {"token": token, "timeout": 15}
    if base_url:
        kwargs["base_url"] = base_url
    client = WebClient(**kwargs)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=max_retries))
    return client


def send_digest(client: Any, channel: str, digest: TeamDigest) -> None:
    from slack_sdk.errors import SlackApiError, SlackClientError

    text, blocks = render_blocks(digest)
    try:
        client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    except SlackApiError as err:
        raise SourceUnavailable(
            f"Slack chat.postMessage to {channel} failed: {err.response.get('error')}"
        ) from err
    except (SlackClientError, OSError) as err:
        raise SourceUnavailable(f"Slack chat.postMessage to {channel} failed: {err}") from err
    log.info("digest for team %s sent to %s", digest.team, channel)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
