"""Grafana dashboards as code: one module per dashboard, generated into dashboards/*.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gpucost.dashboards import efficiency, exporter_health, inference, overview, team_budget, training
from gpucost.dashboards.common import Board, render

__all__ = ["BUILDERS", "boards", "rendered", "write_all"]

# File name (without .json) -> builder; the order is the reading order of docs/dashboards.md.
BUILDERS: dict[str, Callable[[], Board]] = {
    "gpucost-overview": overview.build,
    "gpucost-team-budget": team_budget.build,
    "gpucost-efficiency": efficiency.build,
    "gpucost-inference": inference.build,
    "gpucost-training": training.build,
    "gpucost-exporter-health": exporter_health.build,
}


def boards() -> dict[str, Board]:
    return {name: build() for name, build in BUILDERS.items()}


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    # The Savings dashboard is owned by the scorecard, which defines its metric.
    from gpucost.scorecard.dashboard import DASHBOARD_UID, savings_dashboard

    documents = {f"{name}.json": render(board.build()) for name, board in boards().items()}
    documents[f"{DASHBOARD_UID}.json"] = render(savings_dashboard())
    return documents


def write_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, content in rendered().items():
        path = out / filename
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
