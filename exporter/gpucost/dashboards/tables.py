"""What the dashboards read from the contract tables: recorded names and budget tiers.

Recorded-series names come from `gpucost.contract.recorded` under the dashboards' rate window,
never from the dashboard code, so dashboards rendered at the demo's 30s query the series the
30s rules record; the budget panels' bands are the tiers of `gpucost.contract.tiers`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpucost.contract import recorded, tiers
from gpucost.rulegen.options import RuleOptions, duration_seconds

__all__ = [
    "BUDGET_BANDS",
    "BUDGET_GAUGE_MAX",
    "DEFAULT_RATE_WINDOW",
    "RecordedNames",
    "budget_band_words",
    "budget_tier_percents",
]

# The rules' rate window; `python -m gpucost.dashboards --rate-window 30s` renders the demo's.
DEFAULT_RATE_WINDOW = RuleOptions().rate_window
# Each budget tier's band colour (and its name for descriptions) comes from the tier table.
_BUDGET_BANDS = tuple((tier, (tier.band_colour, tier.band_words)) for tier in tiers.BUDGET_TIERS)
# Threshold steps of the budget panels: green under the lowest tier, then one band per tier
# from the tier table (the percents of the budget alert's `threshold` label, as ratios).
BUDGET_BANDS: tuple[tuple[float | None, str], ...] = (
    (None, "green"),
    *((tier.percent / 100, colour) for tier, (colour, _) in _BUDGET_BANDS),
)
# The top of a budget gauge: the highest tier, so every band shows.
BUDGET_GAUGE_MAX = max(tier.percent for tier in tiers.BUDGET_TIERS) / 100


def budget_tier_percents() -> str:
    """The tiers as the descriptions write them: "50/80/100/125"."""
    return "/".join(tier.label for tier in tiers.BUDGET_TIERS)


def budget_band_words() -> str:
    """The bands as the descriptions write them: "50 % yellow, 80 % orange, ..."."""
    return ", ".join(f"{tier.label} % {words}" for tier, (_, words) in _BUDGET_BANDS)


@dataclass(frozen=True, slots=True)
class RecordedNames:
    """Recorded-series names and their wording under one rate window, from the contract table.

    The dashboards never spell a recorded name: a changed rate window (the demo's 30s) renames
    every series the way `gpucost.rulegen` records it.
    """

    rate_window: str = DEFAULT_RATE_WINDOW

    def __call__(self, key: str) -> str:
        return recorded.name(key, self.rate_window)

    def select(self, key: str, matchers: str) -> str:
        """`name{matchers}`, the selector of a recorded series."""
        return f"{self(key)}{{{matchers}}}"

    @property
    def adjective(self) -> str:
        """The window before a noun: "5-minute", "30-second"."""
        count, unit = self._count_and_unit()
        return f"{count}-{unit}"

    @property
    def span(self) -> str:
        """The window as a length of time: "5 minutes", "30 seconds"."""
        count, unit = self._count_and_unit()
        return f"{count} {unit}{'' if count == 1 else 's'}"

    def _count_and_unit(self) -> tuple[int, str]:
        # RuleOptions allows only windows up to 5m that divide the hour: seconds or whole minutes.
        seconds = duration_seconds(self.rate_window)
        return (seconds // 60, "minute") if seconds % 60 == 0 else (seconds, "second")
