"""The rules, end to end: the simulated exporter and the real budget sidecar, scraped by a
real Prometheus that evaluates the generated rules, alerting a real Alertmanager that
posts to a Slack sink.

Month-to-date spend is hourly tiles plus `rate<window>` tiles of the current hour taken
at wall-clock multiples of the window (docs/rules.md), so with the committed 5m window
spend shows only at 5-minute boundaries and two tiers could not be crossed in under
six minutes.  The test runs the same generator (`gpucost.rulegen`) with
`--rate-window 15s --budget-for 10s`: the expressions are the committed ones with the
window and `for` substituted (tests/unit/test_rulegen.py pins the committed output).
The other committed rule files (inference, sidecar) are loaded unchanged.

The budget is sized from the exporter's measured burn rate so that one 15 s tile is
about 1/6 of it: the 50 % tier is crossed at the 3rd or 4th tile and the 80 % tier one
or two tiles later, so the two tiers fire at different evaluations.
"""

from __future__ import annotations

import contextlib
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from gpucost.alerting import DeliveryMode, Settings, Timings, render_config
from gpucost.rulegen import RuleOptions, write_rules
from gpucost_testing.servers import (
    REPO_ROOT,
    ManagedProcess,
    free_port,
    http_get_json,
    prom_query,
    start_alertmanager,
    start_exporter,
    start_prometheus,
    wait_for,
    write_prometheus_config,
)
from gpucost_testing.slack_sink import SlackSink

if TYPE_CHECKING:
    from tests.integration.rules_stacks import RulesStacks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/eight_gpus_static.yaml"
TEAM = "research"
BUDGET = "research-monthly"
RATE_WINDOW_SECONDS = 15
# One scenario hour per wall second: the research team's four A100s cost ~16 USD/s.
SPEED = 3600
TILES_PER_BUDGET = 6
FAST_RULES = RuleOptions(rate_window=f"{RATE_WINDOW_SECONDS}s", budget_for="10s")
FAST_AM = Timings(
    group_wait="1s",
    group_interval="1s",
    repeat_interval="1h",
    budget_repeat_interval={"50": "1h", "80": "1h", "100": "1h", "125": "1h"},
)
TEMPLATES_DIR = REPO_ROOT / "alertmanager" / "templates"


@dataclass
class Stack:
    workdir: Path
    exporter: ManagedProcess
    sidecar: ManagedProcess
    prometheus: ManagedProcess
    budget_usd: float
    rule_files: list[Path]
    scrape_configs: list[dict[str, Any]]


def write_fast_rules(directory: Path) -> list[Path]:
    """The generated rules with short windows, plus the other committed rule files."""
    directory.mkdir(parents=True, exist_ok=True)
    generated = write_rules(FAST_RULES, directory)
    names = {path.name for path in generated}
    others = [path for path in sorted((REPO_ROOT / "rules").glob("*.yaml")) if path.name not in names]
    assert len(generated) == 2 and others, (generated, others)
    return [*generated, *others]


def _team_spend(exporter: ManagedProcess) -> float:
    with urllib.request.urlopen(exporter.base_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = rf'^gpucost_workload_gpu_cost_usd_total{{[^}}]*team="{TEAM}"[^}}]*}} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, flags=re.MULTILINE))


def measure_usd_per_second(exporter: ManagedProcess, seconds: float = 4.0) -> float:
    before, start = _team_spend(exporter), time.monotonic()
    time.sleep(seconds)
    return (_team_spend(exporter) - before) / (time.monotonic() - start)


def start_sidecar(workdir: Path, budget_usd: float) -> ManagedProcess:
    budgets = workdir / "budgets.yaml"
    budgets.write_text(
        "budgets:\n"
        f"  - name: {BUDGET}\n"
        f"    scope: {{team: {TEAM}}}\n"
        f"    monthly_usd: {budget_usd:.2f}\n"
        "    thresholds_percent: [50, 80, 100, 125]\n"
    )
    port = free_port()
    argv = [
        str(REPO_ROOT / ".venv/bin/gpucost-budgets"),
        "serve",
        f"--budgets.file={budgets}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    sidecar = ManagedProcess("gpucost-budgets", argv, workdir / "sidecar.log", port=port).start()
    sidecar.wait_http("/metrics", timeout=30)
    return sidecar


def scrape_configs(exporter: ManagedProcess, sidecar: ManagedProcess) -> list[dict[str, Any]]:
    return [
        {
            "job_name": "gpucost-exporter",
            "scrape_interval": "2s",
            "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"], "labels": {"node": "sim-node"}}],
        },
        {
            "job_name": "gpucost-budgets",
            "scrape_interval": "2s",
            "honor_labels": True,
            "static_configs": [{"targets": [f"127.0.0.1:{sidecar.port}"]}],
        },
    ]


@contextlib.contextmanager
def budget_stack(workdir: Path, *, remote_write_url: str | None = None, **prometheus_config: Any) -> Iterator[Stack]:
    """Exporter (speed 3600), sidecar with a budget of TILES_PER_BUDGET tiles, Prometheus with the rules."""
    exporter = start_exporter(
        workdir,
        [
            "--nvml.backend=simulated",
            f"--simulate.scenario={SCENARIO}",
            f"--simulate.speed={SPEED}",
            f"--state.file={workdir / 'state.json'}",
            "--sample.interval=1s",
        ],
    )
    processes = [exporter]
    try:
        tile_usd = measure_usd_per_second(exporter) * RATE_WINDOW_SECONDS
        budget_usd = round(TILES_PER_BUDGET * tile_usd, 2)
        sidecar = start_sidecar(workdir, budget_usd)
        processes.append(sidecar)
        rule_files = write_fast_rules(workdir / "rules")
        configs = scrape_configs(exporter, sidecar)
        config = write_prometheus_config(
            workdir / "prometheus.yml",
            evaluation_interval="2s",
            scrape_interval="2s",
            rule_files=rule_files,
            extra_scrape_configs=configs,
            **prometheus_config,
        )
        if remote_write_url:
            add_remote_write(config, remote_write_url)
        prometheus = start_prometheus(workdir, config)
        processes.append(prometheus)
        yield Stack(workdir, exporter, sidecar, prometheus, budget_usd, rule_files, configs)
    finally:
        for process in reversed(processes):
            process.stop()


def add_remote_write(config: Path, url: str) -> None:
    """Forward the scraped series (not the recorded ones, nor ALERTS) to `url`."""
    document = yaml.safe_load(config.read_text())
    document["remote_write"] = [
        {
            "url": url,
            "queue_config": {"batch_send_deadline": "1s"},
            "write_relabel_configs": [{"source_labels": ["__name__"], "regex": ".*:.*|ALERTS.*", "action": "drop"}],
        }
    ]
    config.write_text(yaml.safe_dump(document, sort_keys=False))


def budget_alerts(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The team's budget alerts from a `/api/v1/alerts` answer, by threshold."""
    return {
        alert["labels"]["threshold"]: alert
        for alert in alerts
        if alert["labels"]["alertname"].startswith("GpuCostBudget") and alert["labels"].get("team") == TEAM
    }


def prometheus_alerts(prometheus: ManagedProcess) -> list[dict[str, Any]]:
    answer = http_get_json(prometheus.base_url + "/api/v1/alerts")
    alerts: list[dict[str, Any]] = answer["data"]["alerts"]
    return alerts


def parse_usd(text: str) -> float:
    assert re.fullmatch(r"\d{1,3}(,\d{3})*\.\d\d", text), text
    return float(text.replace(",", ""))


def recent_values(prometheus: ManagedProcess, expr: str) -> list[float]:
    """The values a recorded series took in the last 20 s (what an annotation may have read)."""
    [series] = prom_query(prometheus, f"{expr}[20s]")
    return [float(value) for _ts, value in series["values"]]


@contextlib.contextmanager
def slack_alertmanager(workdir: Path, sink: SlackSink) -> Iterator[ManagedProcess]:
    """Alertmanager with the generated bot-mode config (FAST_AM timings), posting to `sink`."""
    secrets = workdir / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "slack-bot-token").write_text("xoxb-fake-test-token\n")
    (secrets / "slack-webhook-platform").write_text(sink.webhook_url("platform") + "\n")
    settings = Settings(
        mode=DeliveryMode.BOT,
        teams=(),
        secrets_dir=str(secrets),
        templates_dir=str(TEMPLATES_DIR),
        slack_api_url=sink.chat_post_message_url,
        timings=FAST_AM,
    )
    config = workdir / "alertmanager.yml"
    config.write_text(render_config(settings))
    with start_alertmanager(workdir, config) as running:
        yield running


# The stack, Alertmanager and sink come from `rules_stacks` (tests/integration/conftest.py), which
# test_rules_victoriametrics.py shares: one stack crosses the budget tiers once for both modules.
@pytest.fixture(scope="module")
def sink(rules_stacks: RulesStacks) -> SlackSink:
    return rules_stacks.sink


@pytest.fixture(scope="module")
def alertmanager(rules_stacks: RulesStacks) -> ManagedProcess:
    return rules_stacks.alertmanager


@pytest.fixture(scope="module")
def stack(rules_stacks: RulesStacks) -> Stack:
    return rules_stacks.stack


@dataclass
class Observed:
    first_seen: dict[str, float]
    alerts: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def observed(stack: Stack) -> Observed:
    """Poll Prometheus until the 80 % tier fires, noting when each tier was first firing."""
    first_seen: dict[str, float] = {}

    def eighty_firing() -> dict[str, dict[str, Any]] | None:
        alerts = budget_alerts(prometheus_alerts(stack.prometheus))
        for threshold, alert in alerts.items():
            if alert["state"] == "firing":
                first_seen.setdefault(threshold, time.monotonic())
        return alerts if "80" in first_seen else None

    alerts = wait_for(eighty_firing, timeout=150, interval=0.5, what="the 80 % budget tier firing")
    return Observed(first_seen, alerts)


def test_the_50_percent_tier_fires_before_the_80_percent_tier(observed: Observed) -> None:
    assert set(observed.first_seen) >= {"50", "80"}
    assert observed.first_seen["50"] < observed.first_seen["80"]
    assert "125" not in observed.first_seen


def test_budget_alerts_carry_the_contract_labels(observed: Observed) -> None:
    for threshold, severity in (("50", "info"), ("80", "warning")):
        labels = observed.alerts[threshold]["labels"]
        assert labels == {
            "alertname": "GpuCostBudgetThresholdReached",
            "team": TEAM,
            "budget": BUDGET,
            "threshold": threshold,
            "tier": {"50": "0", "80": "1"}[threshold],
            "severity": severity,
        }


def test_budget_alert_annotations_match_the_recorded_series(stack: Stack, observed: Observed) -> None:
    selector = f'{{budget="{BUDGET}",team="{TEAM}"}}'
    spend_values = recent_values(stack.prometheus, f"budget:gpucost_spend_usd:month_to_date{selector}")
    for threshold in ("50", "80"):
        annotations = observed.alerts[threshold]["annotations"]
        spend = parse_usd(annotations["current_spend_usd"])
        budget = parse_usd(annotations["budget_usd"])
        percent = int(annotations["percent_used"])
        assert budget == pytest.approx(stack.budget_usd, abs=0.005)
        assert any(spend == pytest.approx(value, abs=0.005) for value in spend_values), (spend, spend_values)
        assert percent == int(100 * spend / budget)
        assert percent >= int(threshold)
        assert parse_usd(annotations["forecast_usd"]) > spend
        assert annotations["top_model"] == "llama-70b"
        assert annotations["summary"] == f"Team {TEAM} has used {threshold}% of GPU budget {BUDGET}"
    ratio = recent_values(stack.prometheus, f"budget:gpucost_budget_used:ratio{selector}")[-1]
    assert ratio == pytest.approx(spend_values[-1] / stack.budget_usd, rel=1e-9)


def test_alertmanager_posts_50_then_80_to_the_team_channel_and_inhibits_50(
    stack: Stack, observed: Observed, alertmanager: ManagedProcess, sink: SlackSink
) -> None:
    channel = f"#team-{TEAM}-alerts"
    sink.wait_for(2, 30, delivered_only=True)

    def suppressed_fifty() -> dict[str, Any] | None:
        alerts = http_get_json(alertmanager.base_url + "/api/v2/alerts", {"filter": f'team="{TEAM}"'})
        for alert in alerts:
            if (
                alert["labels"]["alertname"] == "GpuCostBudgetThresholdReached"
                and alert["labels"]["threshold"] == "50"
                and alert["status"]["state"] == "suppressed"
            ):
                return dict(alert)
        return None

    fifty = wait_for(suppressed_fifty, timeout=20, what="the 50 % alert inhibited in Alertmanager")
    assert fifty["status"]["inhibitedBy"], fifty
    time.sleep(3)  # an extra 📊 after inhibition would show up here
    titles = [message.title for message in sink.messages(channel)]
    assert titles[:2] == [f"📊 {TEAM} Spend Alert", f"⚠️ {TEAM} Spend Alert"], titles
    assert f"📊 {TEAM} Spend Alert" not in titles[2:], titles
    fields = [message.field("Monthly Budget") for message in sink.messages(channel)[:2]]
    assert fields == [f"${stack.budget_usd:,.2f}"] * 2
