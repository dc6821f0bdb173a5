"""The offline HTML report: a table per team and two charts as PNG files beside the HTML."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from gpucost.scorecard.combine import Scorecard, combine_shares
from gpucost.scorecard.levers import LEVER_ORDER
from gpucost.scorecard.render import LEVER_TITLES

__all__ = ["LEVERS_PNG", "WATERFALL_PNG", "write_html_report"]

WATERFALL_PNG = "waterfall.png"
LEVERS_PNG = "levers_by_team.png"


def _waterfall(scorecard: Scorecard, path: Path) -> None:
    baseline = scorecard.baseline_usd_per_month
    steps = {lever: 0.0 for lever in LEVER_ORDER}
    for score in scorecard.workloads:
        for step in score.combined.steps:
            steps[step.lever] += step.share_of_baseline * score.baseline_usd_per_month
    figure, axes = plt.subplots(figsize=(9, 4.5))
    level = baseline
    labels = ["baseline"]
    axes.bar(0, baseline, color="#4c72b0")
    for index, lever in enumerate(LEVER_ORDER, start=1):
        axes.bar(index, -steps[lever], bottom=level, color="#55a868")
        level -= steps[lever]
        labels.append(LEVER_TITLES[lever])
    axes.bar(len(LEVER_ORDER) + 1, level, color="#c44e52")
    labels.append("after all levers")
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.set_ylabel("USD per month")
    axes.set_title("From baseline to combined potential (levers compound)")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def _levers_by_team(scorecard: Scorecard, path: Path) -> None:
    teams = scorecard.teams()
    figure, axes = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(LEVER_ORDER)
    for offset, lever in enumerate(LEVER_ORDER):
        values = [sum(w.lever(lever).usd_per_month for w in scorecard.for_team(team)) for team in teams]
        axes.bar([i + offset * width for i in range(len(teams))], values, width, label=LEVER_TITLES[lever])
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(teams))], list(teams))
    axes.set_ylabel("USD per month (each lever alone)")
    axes.set_title("Savings potential per lever and team")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def write_html_report(scorecard: Scorecard, directory: Path) -> Path:
    """Write index.html, waterfall.png and levers_by_team.png into `directory`; returns the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    _waterfall(scorecard, directory / WATERFALL_PNG)
    _levers_by_team(scorecard, directory / LEVERS_PNG)
    esc = html.escape
    rows: list[str] = []
    for score in scorecard.workloads:
        for saving in score.levers:
            rows.append(
                f'<tr data-lever="{saving.lever}"><td>{esc(score.usage.team)}</td><td>{esc(score.usage.model)}</td>'
                f"<td>{esc(LEVER_TITLES[saving.lever])}</td><td class=num>{saving.usd_per_month:,.2f}</td>"
                f"<td class=num>{saving.share:.1%}</td><td>{saving.confidence}</td>"
                f"<td>{esc(saving.risk)}</td><td>{esc(saving.detail)}</td></tr>"
            )
        rows.append(
            f'<tr class=combined><td>{esc(score.usage.team)}</td><td>{esc(score.usage.model)}</td>'
            f"<td>Combined (compounded)</td><td class=num>{score.combined_usd_per_month:,.2f}</td>"
            f"<td class=num>{score.combined.share:.1%}</td><td></td><td></td>"
            f"<td>baseline {score.baseline_usd_per_month:,.2f} USD/month</td></tr>"
        )
    total = combine_shares([])  # the order, for the text below
    order = " → ".join(LEVER_TITLES[step.lever] for step in total.steps)
    baseline = scorecard.baseline_usd_per_month
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gpucost optimization scorecard</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}.num{{text-align:right}}tr.combined{{font-weight:bold}}</style>
</head><body>
<h1>GPU optimization scorecard</h1>
<p>Window: {scorecard.window_seconds / 86400:.2f} days. Baseline {baseline:,.2f} USD/month,
combined potential {scorecard.combined_usd_per_month:,.2f} USD/month. Levers acting on the same dollars
compound (remaining = baseline x prod(1 - s)), in the order {esc(order)}; each lever is also shown alone.</p>
<figure><img src="{WATERFALL_PNG}" alt="Waterfall from baseline to combined potential"></figure>
<figure><img src="{LEVERS_PNG}" alt="Savings per lever and team"></figure>
<table><thead><tr><th>team</th><th>model</th><th>lever</th><th>USD/month</th><th>% of baseline</th>
<th>confidence</th><th>risk</th><th>detail</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""
    path = directory / "index.html"
    path.write_text(document, encoding="utf-8")
    return path
