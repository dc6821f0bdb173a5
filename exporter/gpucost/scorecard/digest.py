"""The hook the budget sidecar's Slack digest calls: a team's single biggest lever."""

from __future__ import annotations

from collections.abc import Callable

from gpucost.scorecard.combine import Scorecard
from gpucost.scorecard.levers import LeverName

__all__ = ["TopLever", "top_lever", "top_lever_from"]

TopLever = tuple[LeverName, float, str]


def top_lever(team: str, scorecard: Scorecard) -> TopLever | None:
    """(lever, usd_per_month, risk) of the lever that alone saves the team most; None without savings.

    Summed over the team's models per lever (the same lever on different models
    acts on different dollars, so those add up).
    """
    totals: dict[LeverName, float] = {}
    risks: dict[LeverName, str] = {}
    for score in scorecard.for_team(team):
        for saving in score.levers:
            totals[saving.lever] = totals.get(saving.lever, 0.0) + saving.usd_per_month
            if saving.share > 0:
                risks.setdefault(saving.lever, saving.risk)
    if not totals:
        return None
    lever = max(totals, key=lambda name: totals[name])
    if totals[lever] <= 0:
        return None
    return lever, totals[lever], risks.get(lever, "")


def top_lever_from(source: Callable[[], Scorecard | None]) -> Callable[[str], TopLever | None]:
    """`top_lever(team)` over whatever scorecard `source` holds now (e.g. `ScorecardHolder.get()[0]`)."""
    def lookup(team: str) -> TopLever | None:
        scorecard = source()
        return top_lever(team, scorecard) if scorecard is not None else None
    return lookup
