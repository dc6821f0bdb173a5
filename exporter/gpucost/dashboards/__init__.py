"""Grafana dashboards as code: one module per dashboard, generated into dashboards/*.json.

Every builder takes the rules' rate window (`RuleOptions().rate_window` by default) and reads
each recorded-series name from `gpucost.contract.recorded` under it, so dashboards rendered at
another window (the demo's 30s) query exactly the series `gpucost.rulegen` records at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from gpucost.dashboards import efficiency, exporter_health, inference, overview, savings, team_budget, training
from gpucost.dashboards.common import Board, render
from gpucost.dashboards.tables import DEFAULT_RATE_WINDOW

__all__ = ["BUILDERS", "DEFAULT_RATE_WINDOW", "BoardBuilder", "boards", "rendered", "write_all"]


class BoardBuilder(Protocol):
    """A dashboard module's `build`: the dashboard at a rate window, the rules' by default."""

    def __call__(self, rate_window: str = DEFAULT_RATE_WINDOW) -> Board: ...


# File name (without .json) -> builder of the dashboard at a rate window; the order is the
# reading order of docs/dashboards.md.
BUILDERS: dict[str, BoardBuilder] = {
    "gpucost-overview": overview.build,
    "gpucost-team-budget": team_budget.build,
    "gpucost-efficiency": efficiency.build,
    "gpucost-inference": inference.build,
    "gpucost-training": training.build,
    "gpucost-exporter-health": exporter_health.build,
    "gpucost-savings": savings.build,
}


def boards(rate_window: str = DEFAULT_RATE_WINDOW) -> dict[str, Board]:
    return {name: build(rate_window) for name, build in BUILDERS.items()}


def rendered(rate_window: str = DEFAULT_RATE_WINDOW) -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{name}.json": render(board.build()) for name, board in boards(rate_window).items()}


def write_all(out: Path, rate_window: str = DEFAULT_RATE_WINDOW) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, content in rendered(rate_window).items():
        path = out / filename
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
