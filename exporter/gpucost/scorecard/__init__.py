"""gpucost.scorecard: savings levers per team and model from measured data, combined by compounding.

`levers` (pure), `combine` (pure), `gather` (Prometheus), `render`/`html`
(outputs), `collector` (metrics), `dashboard`, `digest`.  See docs/scorecard.md.
"""

from gpucost.scorecard.combine import Scorecard, ScorecardSettings, combine_shares, score_workload
from gpucost.scorecard.digest import top_lever
from gpucost.scorecard.levers import LEVER_ORDER, LeverSaving, WorkloadUsage

__all__ = [
    "LEVER_ORDER",
    "LeverSaving",
    "Scorecard",
    "ScorecardSettings",
    "WorkloadUsage",
    "combine_shares",
    "score_workload",
    "top_lever",
]
