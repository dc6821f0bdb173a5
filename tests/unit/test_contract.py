"""The contract tables: every series name the repository's artefacts name is in a table.

Scanned: rule files and their promtool tests, the Slack template, docs/*.md and the
dashboards. A recorded name (`level:metric:operation`) must be in the recorded-series table
under the rules' rate window (5m) or the demo's (30s, the dashboards' other window); a
`gpucost_*` name must be an exporter, sidecar, scorecard or app metric (a counter's or a
histogram's sample suffixes included), or, ending in `_`, a prefix of one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpucost.alerting.slack_tiers import TEMPLATE, replace_tier_block
from gpucost.budgets import names as sidecar_names
from gpucost.contract import metrics, recorded, tiers
from gpucost.instrument import inference_metrics
from gpucost.scorecard import collector as scorecard_collector
from gpucost_testing.servers import REPO_ROOT

# The rate windows the committed artefacts are rendered with: rules (5m) and the demo (30s).
RATE_WINDOWS = ("5m", "30s")
SERIES_NAME = re.compile(
    r"(?<![A-Za-z0-9_:.])(?:[a-z_]+:[a-z0-9_]+:[a-z0-9_]+|gpucost_[a-z0-9_]+)(?![A-Za-z0-9_:])"
)
_SAMPLE_SUFFIXES = ("_bucket", "_sum", "_count", "_created")
# The checkout's packages outside the wheel, named in the docs (`tests/gpucost_testing/slack_sink.py`): not series.
CHECKOUT_PACKAGES = frozenset({"gpucost_testing", "gpucost_bench", "gpucost_demo"})

SCANNED = sorted(
    path
    for pattern in (
        "rules/*.yaml",
        "rules/tests/*.yaml",
        "alertmanager/templates/*.tmpl",
        "docs/*.md",
        "dashboards/*.json",
    )
    for path in REPO_ROOT.glob(pattern)
)


def known_names() -> frozenset[str]:
    names = set(metrics.all_metric_names())
    for window in RATE_WINDOWS:
        names |= recorded.names(window)
    return frozenset(names)


def unknown_series(text: str, known: frozenset[str]) -> set[str]:
    unknown = set()
    for token in SERIES_NAME.findall(text):
        if token in known or token in CHECKOUT_PACKAGES:
            continue
        if token.endswith("_") and any(name.startswith(token) for name in known):
            continue
        if token.endswith(_SAMPLE_SUFFIXES) and token.rsplit("_", 1)[0] in known:
            continue
        unknown.add(token)
    return unknown


def test_there_is_something_to_scan() -> None:
    kinds = {path.parent.name for path in SCANNED}
    assert {"rules", "tests", "templates", "docs", "dashboards"} <= kinds


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_series_an_artefact_names_is_in_a_table(path: Path) -> None:
    assert unknown_series(path.read_text(encoding="utf-8"), known_names()) == set()


def test_an_unknown_series_is_found_in_a_rule_or_a_dashboard() -> None:
    known = known_names()
    assert unknown_series("sum(team:gpucost_cost_usd_per_hour:rate7m)", known) == {
        "team:gpucost_cost_usd_per_hour:rate7m"
    }
    assert unknown_series('{"expr": "rate(gpucost_gpu_cost_dollars_total[5m])"}', known) == {
        "gpucost_gpu_cost_dollars_total"
    }
    assert unknown_series("team:gpucost_cost_usd_per_hour:rate30s gpucost_budgets_", known) == set()
    assert unknown_series("histogram_quantile(0.9, gpucost_exporter_collector_duration_seconds_bucket)", known) == set()
    assert unknown_series("`tests/gpucost_testing/slack_sink.py`, `gpucost_bench.live_node`", known) == set()


def test_the_recorded_table_names_follow_the_rate_window() -> None:
    assert recorded.name("team_cost_rate") == "team:gpucost_cost_usd_per_hour:rate5m"
    assert recorded.name("team_cost_rate", "30s") == "team:gpucost_cost_usd_per_hour:rate30s"
    assert recorded.name("pod_utilization", "30s") == "pod:gpucost_gpu_utilization:avg30s"
    assert recorded.name("budget_used_ratio", "30s") == "budget:gpucost_budget_used:ratio"
    assert not recorded.by_key("inference_split_cost_rate").windowed
    with pytest.raises(KeyError, match="no recorded series"):
        recorded.name("no_such_series")


def test_the_recorded_table_has_one_entry_per_name_and_key() -> None:
    keys = [series.key for series in recorded.RECORDED_SERIES]
    assert len(keys) == len(set(keys))
    assert len(recorded.names("5m")) == len(keys)


def test_the_component_tables_match_the_constants_their_collectors_use() -> None:
    assert set(metrics.SCORECARD_METRIC_NAMES) == {
        scorecard_collector.SAVINGS_METRIC,
        scorecard_collector.SUCCESS_METRIC,
    }
    assert set(metrics.APP_METRIC_NAMES) == {
        inference_metrics.REQUESTS,
        inference_metrics.GPU_SHARE_SECONDS,
        inference_metrics.TOKENS,
        inference_metrics.DUPLICATES,
    }
    assert set(metrics.SIDECAR_METRIC_NAMES) == {
        value for key, value in vars(sidecar_names).items() if key.isupper() and isinstance(value, str)
    }


def test_the_slack_template_tier_texts_come_from_the_tier_table() -> None:
    text = (REPO_ROOT / TEMPLATE).read_text(encoding="utf-8")
    assert replace_tier_block(text) == text, "run `python -m gpucost.alerting.slack_tiers`"
    for tier in tiers.BUDGET_TIERS:
        assert f'eq .CommonLabels.threshold "{tier.label}" }}}}{tier.emoji}' in text


def test_the_default_tiers_keep_the_seed_wording() -> None:
    assert [(t.label, t.emoji, t.severity) for t in tiers.BUDGET_TIERS] == [
        ("50", "📊", "info"),
        ("80", "⚠️", "warning"),
        ("100", "🚨", "critical"),
        ("125", "🚨", "critical"),
    ]
    assert tiers.tier_for(5).advice == "5% of this month's budget is used."
    assert tiers.tier_for(150).severity == "critical"
    assert tiers.percent_label(12.5) == "12.5"
    assert tiers.ratio_label(80) == "0.8"
