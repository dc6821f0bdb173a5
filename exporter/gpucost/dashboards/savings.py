"""Dashboard 7, savings: what the scorecard's levers could save each team per month.

Every panel reads `gpucost_savings_potential_usd_per_month`, the scorecard's gauge
(`gpucost scorecard --serve`, docs/scorecard.md): one series per team, model and lever,
plus lever="combined", all levers compounded.
"""

from __future__ import annotations

from gpucost.dashboards.common import (
    TEAMS,
    Board,
    Query,
    bar_gauge_panel,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from gpucost.dashboards.tables import DEFAULT_RATE_WINDOW
from gpucost.scorecard.collector import COMBINED_LEVER, SAVINGS_METRIC

__all__ = ["UID", "build"]

UID = "gpucost-savings"
# Each lever alone, and all of them compounded: never add the two up.
LEVERS = f'{SAVINGS_METRIC}{{{TEAMS}, lever!="{COMBINED_LEVER}"}}'
COMBINED = f'{SAVINGS_METRIC}{{{TEAMS}, lever="{COMBINED_LEVER}"}}'


def build(rate_window: str = DEFAULT_RATE_WINDOW) -> Board:
    board = Board(
        uid=UID,
        title="GPU cost: savings",
        description="What each team could save per month with each lever (right-sizing, spot, quantization, ...) "
        "and with all of them together, from the savings scorecard.",
        variables=("cluster", "team"),
        rate_window=rate_window,
        # The potential moves slowly (the scorecard looks back days, recomputed every 15 minutes):
        # a week shows its trend.
        time_from="now-7d",
    )
    board.add(
        stat_panel(
            "Combined savings potential",
            "All levers compounded (remaining = baseline x prod(1 - s)), summed over the selected teams. "
            "Never the sum of the levers: they act on the same dollars. See docs/scorecard.md.",
            "currencyUSD",
            [Query(f"sum({COMBINED})", "combined", instant=True)],
        ).decimals(0),
        w=8, h=6,
    )
    board.add(
        bar_gauge_panel(
            "Combined potential by team",
            "Each team's levers compounded: what the team could save per month with every lever applied.",
            "currencyUSD",
            [Query(f"sort_desc(sum by (team) ({COMBINED}))", "{{team}}", instant=True)],
        ).decimals(0),
        w=16, h=6,
    )
    board.add(
        table_panel(
            "Potential by team and lever (each lever alone)",
            "Monthly saving of each lever on its own; confidence=estimate marks assumed figures "
            "(quantization speed-up, default spot discount). Do not add the rows up.",
            "currencyUSD",
            [Query(f"sum by (team, lever, confidence) ({LEVERS})", instant=True, table=True)],
            renames={"Value": "USD/month"},
        ).decimals(0),
        w=24, h=10,
    )
    board.add(
        timeseries_panel(
            "Potential by lever over time",
            "How each lever's monthly potential, summed over the selected teams, changes as the scorecard is "
            "recomputed.",
            "currencyUSD",
            [Query(f"sum by (lever) ({LEVERS})", "{{lever}}")],
        ).decimals(0),
        w=24, h=8,
    )
    return board
