"""Shared building blocks of the gpucost dashboards: datasource, variables, panels, layout.

Every panel is built with grafana-foundation-sdk builders.  `Board` places panels
on the 24-column grid left to right, gives them stable ids, and keeps the explicit
list of panels that are allowed to be empty on a healthy cluster (the integration
test reads it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import bargauge, stat, table, text, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import prometheus as prometheus_models
from grafana_foundation_sdk.models import text as text_models

from gpucost.dashboards.tables import BUDGET_BANDS, DEFAULT_RATE_WINDOW, RecordedNames

__all__ = [
    "CLUSTER",
    "DATASOURCE",
    "GRID_WIDTH",
    "RUN_OWNER_KINDS",
    "TEAMS",
    "Board",
    "Query",
    "bar_gauge_panel",
    "budget_thresholds",
    "cost_rate_by",
    "month_to_date_by",
    "prometheus_targets",
    "query_panel",
    "stat_panel",
    "table_panel",
    "text_panel",
    "timeseries_panel",
]

GRID_WIDTH = 24
DATASOURCE = dashboard_models.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Every selector carries the cluster matcher: with one Prometheus per cluster the label is
# absent and `.*` (the All value) matches the empty string; behind Thanos or Mimir the
# external label `cluster` selects one cluster's series, recorded ones included.
CLUSTER = 'cluster=~"$cluster"'
# The teams the `$team` variable selects (All is `.*`, which keeps unattributed series).
TEAMS = f'{CLUSTER}, team=~"$team"'
# The alert GpuJobCostAnomaly and the recorded median run cost (model_run_cost_median) count these
# owners as runs.
RUN_OWNER_KINDS = "Job|PyTorchJob|TFJob|MPIJob|XGBoostJob|RayJob"
_VARIABLE_LABELS = {"cluster": "Cluster", "team": "Team", "model": "Model", "namespace": "Namespace"}


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL target; `instant` for stats, bar gauges and tables, `table` for the table format."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False
    interval: str = ""


def thresholds(steps: Sequence[tuple[float | None, str]]) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(value=value, color=color) for value, color in steps])
    )


def budget_thresholds() -> dashboard_builders.ThresholdsConfig:
    return thresholds(BUDGET_BANDS)


def prometheus_targets(queries: Sequence[Query]) -> list[cogbuilder.Builder[Any]]:
    targets: list[cogbuilder.Builder[Any]] = []
    for index, query in enumerate(queries):
        target = (
            prometheus_builders.Dataquery()
            .expr(query.expr)
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
            .legend_format(query.legend or "__auto")
        )
        target = target.instant() if query.instant else target.range()
        if query.table:
            target = target.format(prometheus_models.PromQueryFormat.TABLE)
        if query.interval:
            target = target.interval(query.interval)
        targets.append(target)
    return targets


# The SDK is untyped for mypy (ignore list): every panel builder is Any here.
def query_panel(panel: Any, title: str, description: str, unit: str, queries: Sequence[Query]) -> Any:
    """What every Prometheus panel sets first: its words, its unit and its queries."""
    return (
        panel.title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .targets(prometheus_targets(queries))
    )


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    stacked: bool = False,
    steps: Sequence[tuple[float | None, str]] | None = None,
    bands: bool = False,
) -> timeseries.Panel:
    """A time series; `bands` draws the thresholds as coloured areas behind the lines."""
    panel = (
        query_panel(timeseries.Panel(), title, description, unit, queries)
        .fill_opacity(60 if stacked else 10)
        .line_width(1)
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common_models.StackingMode.NORMAL))
    if steps is not None:
        panel = panel.thresholds(thresholds(steps))
    if bands:
        panel = panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common_models.GraphThresholdsStyleMode.LINE_AND_AREA)
        )
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    steps: Sequence[tuple[float | None, str]] | None = None,
) -> stat.Panel:
    panel = (
        query_panel(stat.Panel(), title, description, unit, queries)
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .color_mode(common_models.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(steps or ((None, "blue"),)))
    )
    return panel


def bar_gauge_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    steps: Sequence[tuple[float | None, str]] | None = None,
    max_value: float | None = None,
    links: Sequence[tuple[str, str]] = (),
) -> bargauge.Panel:
    """A horizontal bar gauge, one bar per series; `links` are (title, url) data links."""
    panel = (
        query_panel(bargauge.Panel(), title, description, unit, queries)
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(steps or ((None, "blue"),)))
        .min(0)
    )
    if max_value is not None:
        panel = panel.max(max_value)
    if links:
        panel = panel.data_links([dashboard_builders.DashboardLink(name).url(url) for name, url in links])
    return panel


def table_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    column_units: dict[str, str] | None = None,
    column_steps: dict[str, Sequence[tuple[float | None, str]]] | None = None,
    renames: dict[str, str] | None = None,
    hidden: Sequence[str] = ("Time",),
) -> table.Panel:
    """A table of instant queries merged on their labels; columns `Value #A`... renamed by `renames`."""
    panel = (
        query_panel(table.Panel(), title, description, unit, queries)
        .footer(common_builders.TableFooterOptions().show(False).reducer(["sum"]))
    )
    if len(queries) > 1:
        panel = panel.with_transformation(dashboard_models.DataTransformerConfig(id_val="merge", options={}))
    panel = panel.with_transformation(
        dashboard_models.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": dict.fromkeys(hidden, True),
                "renameByName": dict(renames or {}),
            },
        )
    )
    properties: dict[str, list[dashboard_models.DynamicConfigValue]] = {}
    for column, column_unit in (column_units or {}).items():
        properties.setdefault(column, []).append(dashboard_models.DynamicConfigValue(id_val="unit", value=column_unit))
    for column, steps in (column_steps or {}).items():
        properties.setdefault(column, []).extend([
            dashboard_models.DynamicConfigValue(id_val="thresholds", value=thresholds(steps).build()),
            dashboard_models.DynamicConfigValue(
                id_val="custom.cellOptions", value={"type": "color-background", "mode": "basic"}
            ),
        ])
    for column, column_properties in properties.items():
        panel = panel.override_by_name(column, column_properties)
    return panel


def cost_rate_by(label: str, series: str, description: str) -> timeseries.Panel:
    """USD/h of the recorded cost-rate `series` summed by `label`, stacked: "Cost by model (USD/h)"."""
    return timeseries_panel(
        f"Cost by {label} (USD/h)",
        description,
        "currencyUSD",
        [Query(f"sum by ({label}) ({series})", _legend(label))],
        stacked=True,
    )


def month_to_date_by(
    label: str, series: str, description: str, *, links: Sequence[tuple[str, str]] = ()
) -> bargauge.Panel:
    """Month-to-date USD of the recorded spend `series` summed by `label`, largest first."""
    return bar_gauge_panel(
        f"Month-to-date by {label}",
        description,
        "currencyUSD",
        [Query(f"sort_desc(sum by ({label}) ({series}))", _legend(label), instant=True)],
        links=links,
    )


def _legend(label: str) -> str:
    """The legend template of one label: `{{team}}`."""
    return "{{" + label + "}}"


def text_panel(title: str, markdown: str) -> text.Panel:
    return text.Panel().title(title).content(markdown).mode(text_models.TextMode.MARKDOWN)


# The SDK is untyped for mypy (ignore list), so its Builder base is Any here.
class _Prebuilt(cogbuilder.Builder[Any]):  # type: ignore[misc]
    """Hands an already-built panel to the SDK's dashboard builder."""

    def __init__(self, built: Any) -> None:
        self._built = built

    def build(self) -> Any:
        return self._built


@dataclass
class Board:
    """One dashboard under construction: metadata, variables, and panels laid out in order."""

    uid: str
    title: str
    description: str
    variables: Sequence[str]
    single_team: bool = False
    rate_window: str = DEFAULT_RATE_WINDOW
    time_from: str = "now-24h"
    empty_when_healthy: dict[str, str] = field(default_factory=dict)
    _panels: list[Any] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0
    _next_id: int = 1
    _annotations: list[tuple[str, str, str]] = field(default_factory=list)

    def row(self, title: str) -> None:
        self._newline()
        row = dashboard_builders.Row(title).id(self._take_id()).build()
        row.grid_pos = dashboard_models.GridPos(h=1, w=GRID_WIDTH, x=0, y=self._y)
        self._panels.append(("row", row))
        self._y += 1

    def add(self, panel: cogbuilder.Builder[Any], *, w: int, h: int, empty_when_healthy: str = "") -> None:
        """Place `panel`; `empty_when_healthy` says why it may show no data on a healthy cluster."""
        if self._x + w > GRID_WIDTH:
            self._newline()
        built = panel.build()
        built.id_val = self._take_id()
        built.grid_pos = dashboard_models.GridPos(h=h, w=w, x=self._x, y=self._y)
        if empty_when_healthy:
            built.description = f"{built.description} Empty when healthy: {empty_when_healthy}."
            self.empty_when_healthy[built.title] = empty_when_healthy
        self._panels.append(("panel", built))
        self._x += w
        self._row_height = max(self._row_height, h)

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_height
        self._x = 0
        self._row_height = 0

    def _take_id(self) -> int:
        taken = self._next_id
        self._next_id += 1
        return taken

    @property
    def recorded(self) -> RecordedNames:
        """The recorded-series names under this dashboard's rate window."""
        return RecordedNames(self.rate_window)

    def _variable_query(self, name: str) -> str:
        teams = f'{CLUSTER}, team=~"$team"' if "team" in self.variables else CLUSTER
        queries = {
            "cluster": "label_values(gpucost_exporter_build_info, cluster)",
            "team": f"label_values({self.recorded.select('team_cost_rate', CLUSTER)}, team)",
            "model": f"label_values({self.recorded.select('team_model_cost_rate', teams)}, model)",
            "namespace": f"label_values({self.recorded.select('namespace_team_cost_rate', teams)}, namespace)",
        }
        return queries[name]

    def _variable(self, name: str) -> dashboard_builders.QueryVariable:
        variable = (
            dashboard_builders.QueryVariable(name)
            .label(_VARIABLE_LABELS[name])
            .query(self._variable_query(name))
            .datasource(DATASOURCE)
            .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
        )
        if name == "team" and self.single_team:
            return variable
        # `.*` rather than a list of values, so series with an empty label (unattributed) stay in.
        return variable.multi(True).include_all(True).all_value(".*")

    def build(self) -> dict[str, Any]:
        """The dashboard as a JSON-ready dict."""
        builder = (
            dashboard_builders.Dashboard(self.title)
            .uid(self.uid)
            .description(self.description)
            .tags(["gpucost"])
            .editable()
            .time(self.time_from, "now")
            .refresh("1m")
            .timezone("utc")
            .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
            .link(
                dashboard_builders.DashboardLink("GPU cost dashboards")
                .type(dashboard_models.DashboardLinkType.DASHBOARDS)
                .tags(["gpucost"])
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
            )
            .with_variable(
                dashboard_builders.DatasourceVariable("datasource").label("Data source").type("prometheus")
            )
        )
        for name in self.variables:
            builder = builder.with_variable(self._variable(name))
        for name, expr, color in self._annotations:
            builder = builder.annotation(
                dashboard_builders.AnnotationQuery().name(name).datasource(DATASOURCE).enable(True).icon_color(color).expr(expr)
            )
        for kind, built in self._panels:
            builder = builder.with_row(_Prebuilt(built)) if kind == "row" else builder.with_panel(_Prebuilt(built))
        encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))
        return encoded

    def annotate(self, name: str, expr: str, color: str) -> None:
        """Mark the time of every series of `expr` on the time series panels."""
        self._annotations.append((name, expr, color))


def render(document: dict[str, Any]) -> str:
    """Stable text of a dashboard: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
