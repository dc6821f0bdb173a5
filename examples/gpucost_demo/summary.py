"""What the demo shows: cost per team and model, budgets, idle waste, read from Prometheus.

Cost is shown twice: GPU cost (`team:gpucost_cost_usd_per_hour:*`, what the
budgets count) and whole-node cost beside it (GPU + CPU + memory + storage,
`team:gpucost_whole_node_cost_usd_per_hour:*`, docs/node-cost.md).

`read_summary` queries the recorded series; `render_table` (rich, for the live
view) and `render_lines` (plain text, for `--no-live`) show the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gpucost.contract import recorded
from gpucost.promapi import PrometheusApiError, PrometheusClient, Sample

__all__ = ["BudgetLine", "Summary", "read_summary", "render_lines", "render_table"]

BAR_WIDTH = 24


@dataclass(frozen=True)
class BudgetLine:
    budget: str
    team: str
    spend_usd: float
    budget_usd: float

    @property
    def used(self) -> float:
        return self.spend_usd / self.budget_usd if self.budget_usd > 0 else 0.0


@dataclass
class Summary:
    """One reading of the recorded series; $/h are as recorded (demo clock: the node runs `speed` x faster)."""

    team_usd_per_hour: dict[str, float] = field(default_factory=dict)
    model_usd_per_hour: dict[tuple[str, str], float] = field(default_factory=dict)
    team_whole_node_usd_per_hour: dict[str, float] = field(default_factory=dict)
    model_whole_node_usd_per_hour: dict[tuple[str, str], float] = field(default_factory=dict)
    unallocated_by_resource: dict[str, float] = field(default_factory=dict)
    budgets: list[BudgetLine] = field(default_factory=list)
    idle_usd_per_hour: float = 0.0
    unallocated_usd_per_hour: float = 0.0
    idle_pods: list[tuple[str, str, float]] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)
    error: str = ""


def _query(prometheus_url: str, expr: str) -> list[Sample]:
    # No retries: the live view reads again in a few seconds anyway.
    return list(PrometheusClient(prometheus_url, timeout_seconds=5, retries=0).query(expr))


def _team(labels: Mapping[str, str]) -> str:
    return labels.get("team") or "(no team)"


def _team_model(labels: Mapping[str, str]) -> tuple[str, str]:
    return _team(labels), labels.get("model") or "(no model)"


def _read_whole_node(prometheus_url: str, window: str, summary: Summary) -> None:
    """Whole-node cost per team and model, and what nobody holds per resource (raises PrometheusApiError)."""
    for labels, value in _query(prometheus_url, recorded.name("team_whole_node_cost_rate", window)):
        summary.team_whole_node_usd_per_hour[_team(labels)] = value
    for labels, value in _query(prometheus_url, recorded.name("team_model_whole_node_cost_rate", window)):
        summary.model_whole_node_usd_per_hour[_team_model(labels)] = value
    unallocated = recorded.name("node_resource_unallocated_rate", window)
    for labels, value in _query(prometheus_url, f"sum by (resource) ({unallocated})"):
        summary.unallocated_by_resource[labels.get("resource", "")] = value


def read_summary(prometheus_url: str, rate_suffix: str) -> Summary:
    """`rate_suffix` is the rules' window suffix, e.g. `rate30s`."""
    summary = Summary()
    window = rate_suffix.removeprefix("rate")
    try:
        for labels, value in _query(prometheus_url, f"team:gpucost_cost_usd_per_hour:{rate_suffix}"):
            summary.team_usd_per_hour[_team(labels)] = value
        for labels, value in _query(prometheus_url, f"team_model:gpucost_cost_usd_per_hour:{rate_suffix}"):
            summary.model_usd_per_hour[_team_model(labels)] = value
        _read_whole_node(prometheus_url, window, summary)
        amounts = {
            (labels.get("budget", ""), labels.get("team", "")): value
            for labels, value in _query(prometheus_url, "max by (budget, team) (gpucost_budget_usd)")
        }
        spend = {
            (labels.get("budget", ""), labels.get("team", "")): value
            for labels, value in _query(prometheus_url, "budget:gpucost_spend_usd:month_to_date")
        }
        summary.budgets = [
            BudgetLine(budget, team, spend.get((budget, team), 0.0), amount)
            for (budget, team), amount in sorted(amounts.items())
        ]
        idle = _query(
            prometheus_url, f'sum(team_component:gpucost_cost_usd_per_hour:{rate_suffix}{{component="idle"}})'
        )
        summary.idle_usd_per_hour = idle[0][1] if idle else 0.0
        unallocated = _query(prometheus_url, f"sum(node:gpucost_unallocated_cost_usd_per_hour:{rate_suffix})")
        summary.unallocated_usd_per_hour = unallocated[0][1] if unallocated else 0.0
        summary.idle_pods = sorted(
            (labels.get("team", ""), f"{labels.get('namespace', '')}/{labels.get('pod', '')}", value)
            for labels, value in _query(prometheus_url, f"pod:gpucost_gpu_utilization:avg{window} < 0.05")
        )
        summary.firing = sorted(
            f"{labels.get('alertname', '')}{{{labels.get('budget') or labels.get('team') or ''}}}"
            for labels, _ in _query(prometheus_url, 'ALERTS{alertstate="firing"}')
        )
    except PrometheusApiError as err:
        summary.error = f"Prometheus query failed: {err}"
    return summary


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _optional_usd(recorded_per_hour: float | None, speed: float) -> str:
    """A recorded $/h in node time; "-" before the series has a value."""
    return "-" if recorded_per_hour is None else _usd(recorded_per_hour / speed)


def _by_resource(per_resource: dict[str, float], speed: float) -> str:
    return ", ".join(f"{resource} {_usd(value / speed)}/h" for resource, value in sorted(per_resource.items()))


def _bar(used: float) -> str:
    filled = min(BAR_WIDTH, round(used * BAR_WIDTH))
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def _bar_style(used: float) -> str:
    if used >= 1.0:
        return "bold red"
    if used >= 0.8:
        return "yellow"
    if used >= 0.5:
        return "cyan"
    return "green"


def render_table(summary: Summary, header: str, speed: float) -> RenderableType:
    teams = Table(title="Cost by team ($/h node time)", title_justify="left", expand=False)
    teams.add_column("team")
    teams.add_column("model")
    teams.add_column("GPU $/h", justify="right")
    teams.add_column("whole node $/h", justify="right")
    teams.add_column(f"GPU $/h recorded (x{speed:g})", justify="right")
    whole_team, whole_model = summary.team_whole_node_usd_per_hour, summary.model_whole_node_usd_per_hour
    for team, per_hour in sorted(summary.team_usd_per_hour.items(), key=lambda item: -item[1]):
        teams.add_row(Text(team, style="bold"), "", _usd(per_hour / speed),
                      _optional_usd(whole_team.get(team), speed), _usd(per_hour))
        models = [(model, value) for (owner, model), value in summary.model_usd_per_hour.items() if owner == team]
        for model, value in sorted(models, key=lambda item: -item[1]):
            teams.add_row("", model, _usd(value / speed), _optional_usd(whole_model.get((team, model)), speed),
                          _usd(value))

    budgets = Table(title="Month to date vs budget", title_justify="left")
    budgets.add_column("budget")
    budgets.add_column("team")
    budgets.add_column("spend", justify="right")
    budgets.add_column("budget", justify="right")
    budgets.add_column("used", no_wrap=True, min_width=BAR_WIDTH + 5)
    for line in summary.budgets:
        bar = Text(_bar(line.used), style=_bar_style(line.used))
        bar.append(f" {line.used:5.0%}")
        budgets.add_row(line.budget, line.team, _usd(line.spend_usd), _usd(line.budget_usd), bar)

    waste = Text()
    waste.append("Idle waste: ", style="bold")
    waste.append(f"{_usd(summary.idle_usd_per_hour / speed)}/h allocated but idle, "
                 f"{_usd(summary.unallocated_usd_per_hour / speed)}/h unallocated (node time)")
    if summary.unallocated_by_resource:
        waste.append(f"\nNode unallocated by resource: {_by_resource(summary.unallocated_by_resource, speed)}")
    for team, pod, utilization in summary.idle_pods:
        waste.append(f"\n  idle pod: {pod} (team {team}, GPU {utilization:.0%} busy)", style="yellow")
    parts: list[RenderableType] = [Text(header), teams, budgets, waste]
    if summary.firing:
        parts.append(Text("Firing: " + ", ".join(summary.firing), style="magenta"))
    if summary.error:
        parts.append(Text(summary.error, style="red"))
    return Group(*parts)


def render_lines(summary: Summary, elapsed_seconds: float, speed: float) -> list[str]:
    """The same reading as plain lines, for logs and CI."""
    prefix = f"[{elapsed_seconds:5.0f}s]"
    if summary.error:
        return [f"{prefix} {summary.error}"]
    teams = ", ".join(
        f"{team} {_usd(value / speed)}/h"
        for team, value in sorted(summary.team_usd_per_hour.items(), key=lambda item: -item[1])
    )
    lines = [f"{prefix} cost per team (node time): {teams or 'no data yet'}"]
    models = ", ".join(
        f"{team}/{model} {_usd(value / speed)}/h"
        for (team, model), value in sorted(summary.model_usd_per_hour.items(), key=lambda item: -item[1])
    )
    if models:
        lines.append(f"{prefix} cost per model: {models}")
    whole_node = ", ".join(
        f"{team} {_usd(value / speed)}/h (GPU {_optional_usd(summary.team_usd_per_hour.get(team), speed)}/h)"
        for team, value in sorted(summary.team_whole_node_usd_per_hour.items(), key=lambda item: -item[1])
    )
    lines.append(f"{prefix} whole-node cost per team (node time): {whole_node or 'no data yet'}")
    whole_models = ", ".join(
        f"{team}/{model} {_usd(value / speed)}/h"
        for (team, model), value in sorted(summary.model_whole_node_usd_per_hour.items(), key=lambda item: -item[1])
    )
    if whole_models:
        lines.append(f"{prefix} whole-node cost per model: {whole_models}")
    for line in summary.budgets:
        lines.append(
            f"{prefix} budget {line.budget} (team {line.team}): {_usd(line.spend_usd)} of "
            f"{_usd(line.budget_usd)} month to date [{_bar(line.used)}] {line.used:.0%}"
        )
    idle_pods = "; ".join(f"{pod} ({utilization:.0%} busy)" for _, pod, utilization in summary.idle_pods)
    lines.append(
        f"{prefix} idle waste: {_usd(summary.idle_usd_per_hour / speed)}/h allocated but idle, "
        f"{_usd(summary.unallocated_usd_per_hour / speed)}/h unallocated"
        + (f"; idle pods: {idle_pods}" if idle_pods else "")
    )
    if summary.unallocated_by_resource:
        lines.append(f"{prefix} node unallocated by resource: {_by_resource(summary.unallocated_by_resource, speed)}")
    if summary.firing:
        lines.append(f"{prefix} firing: {', '.join(summary.firing)}")
    return lines
