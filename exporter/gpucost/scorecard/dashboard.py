"""The "Savings" Grafana dashboard (uid gpucost-savings) as a JSON dict, for the dashboard generator."""

from __future__ import annotations

from typing import Any

from gpucost.scorecard.collector import COMBINED_LEVER, SAVINGS_METRIC

__all__ = ["DASHBOARD_UID", "savings_dashboard"]

DASHBOARD_UID = "gpucost-savings"
_DS = {"type": "prometheus", "uid": "${datasource}"}


def _panel(panel_id: int, title: str, description: str, kind: str, expr: str, legend: str,
           grid: dict[str, int], **options: Any) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": _DS,
        "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": "currencyUSD", "decimals": 0}, "overrides": []},
        "options": options,
        "targets": [{"refId": "A", "datasource": _DS, "expr": expr, "legendFormat": legend,
                     "instant": kind != "timeseries"}],
    }


def savings_dashboard() -> dict[str, Any]:
    team = 'team=~"$team"'
    levers = f'{SAVINGS_METRIC}{{{team}, lever!="{COMBINED_LEVER}"}}'
    combined = f'{SAVINGS_METRIC}{{{team}, lever="{COMBINED_LEVER}"}}'
    return {
        "uid": DASHBOARD_UID,
        "title": "gpucost / Savings",
        "tags": ["gpucost"],
        "schemaVersion": 39,
        "editable": False,
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
            {"name": "team", "type": "query", "datasource": _DS, "label": "Team",
             "query": {"query": f"label_values({SAVINGS_METRIC}, team)", "refId": "team"},
             "definition": f"label_values({SAVINGS_METRIC}, team)",
             "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2},
        ]},
        "panels": [
            _panel(1, "Combined savings potential",
                   "All levers compounded (remaining = baseline x prod(1 - s)), summed over the selected teams. "
                   "Never the sum of the levers: they act on the same dollars. See docs/scorecard.md.",
                   "stat", f"sum({combined})", "combined", {"x": 0, "y": 0, "w": 8, "h": 6}),
            _panel(2, "Combined potential by team",
                   "Each team's levers compounded, per month.", "bargauge",
                   f"sum by (team) ({combined})", "{{team}}", {"x": 8, "y": 0, "w": 16, "h": 6},
                   orientation="horizontal"),
            _panel(3, "Potential by team and lever (each lever alone)",
                   "Monthly saving of each lever on its own; confidence=estimate marks assumed figures "
                   "(quantization speed-up, default spot discount). Do not add the bars up.",
                   "table", f"sum by (team, lever, confidence) ({levers})", "{{team}} {{lever}}",
                   {"x": 0, "y": 6, "w": 24, "h": 10}),
            _panel(4, "Potential by lever over time",
                   "How each lever's monthly potential changes as the scorecard is recomputed.",
                   "timeseries", f"sum by (lever) ({levers})", "{{lever}}", {"x": 0, "y": 16, "w": 24, "h": 8}),
        ],
    }
