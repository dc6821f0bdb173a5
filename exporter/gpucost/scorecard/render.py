"""The scorecard as a JSON document and as a terminal table."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table

from gpucost.scorecard.combine import Scorecard, WorkloadScore
from gpucost.scorecard.levers import LEVER_ORDER

__all__ = ["LEVER_TITLES", "to_json_document", "to_table_text"]

LEVER_TITLES = {
    "idle_release": "Release idle GPUs",
    "right_size": "Right-size GPU",
    "caching": "Response caching",
    "quantization": "4-bit quantization",
    "spot": "Spot / preemptible",
    "commitment": "Commitment discount",
}


def _workload_json(score: WorkloadScore) -> dict[str, Any]:
    return {
        "team": score.usage.team,
        "model": score.usage.model,
        "kind": score.usage.kind,
        "baseline_usd_per_month": round(score.baseline_usd_per_month, 2),
        "levers": [
            {
                "lever": s.lever,
                "usd_per_month": round(s.usd_per_month, 2),
                "percent_of_baseline": round(100 * s.share, 2),
                "confidence": s.confidence,
                "risk": s.risk,
                "detail": s.detail,
            }
            for s in score.levers
        ],
        "combined": {
            "usd_per_month": round(score.combined_usd_per_month, 2),
            "percent_of_baseline": round(100 * score.combined.share, 2),
            "order": list(LEVER_ORDER),
            "waterfall": [
                {"lever": step.lever, "usd_per_month": round(step.share_of_baseline * score.baseline_usd_per_month, 2)}
                for step in score.combined.steps
            ],
        },
    }


def to_json_document(scorecard: Scorecard) -> dict[str, Any]:
    """Each lever alone and the compounded total, per team and model; percentages never sum past 100."""
    baseline = scorecard.baseline_usd_per_month
    combined = scorecard.combined_usd_per_month
    return {
        "window_seconds": scorecard.window_seconds,
        "method": "remaining = baseline x prod(1 - s_i) in the order " + ", ".join(LEVER_ORDER),
        "baseline_usd_per_month": round(baseline, 2),
        "combined_usd_per_month": round(combined, 2),
        "combined_percent_of_baseline": round(100 * combined / baseline, 2) if baseline > 0 else 0.0,
        "workloads": [_workload_json(score) for score in scorecard.workloads],
    }


def to_table_text(scorecard: Scorecard, width: int = 140) -> str:
    table = Table(title="GPU optimization scorecard (USD per month; each lever alone, combined compounds)")
    table.add_column("team")
    table.add_column("model")
    table.add_column("baseline", justify="right")
    for lever in LEVER_ORDER:
        table.add_column(LEVER_TITLES[lever], justify="right")
    table.add_column("combined", justify="right")
    for score in scorecard.workloads:
        cells = [f"{s.usd_per_month:,.0f}" + ("*" if s.confidence == "estimate" else "") for s in score.levers]
        table.add_row(score.usage.team, score.usage.model, f"{score.baseline_usd_per_month:,.0f}", *cells,
                      f"{score.combined_usd_per_month:,.0f} ({score.combined.share:.0%})")
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    console.print(table)
    console.print("* estimate (assumed, not measured).  Levers on the same dollars compound; see docs/scorecard.md.")
    return buffer.getvalue()
