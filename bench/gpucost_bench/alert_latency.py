"""Alert latency: a team's spend crosses 80 % of its budget; how long until Slack has the message.

Real processes end to end: the simulated exporter provides spend, real
Prometheus evaluates `rules/gpucost.rules.yaml` and `rules/gpucost.alerts.yaml`,
real Alertmanager runs the generated config (production timers) and posts to
the Slack sink.  A tiny exposition serves the budget; once spend is flowing the
budget is lowered to spend / 0.9 at a known instant, so the used ratio jumps
from ~0 to 0.9.  Expected: the alert's `for:` + up to one scrape interval (the
new budget is seen) + up to two evaluation intervals (recording rule, then
alert) + Alertmanager's group_wait.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from gpucost.alerting import DeliveryMode, Settings, Timings, render_config
from gpucost.durations import parse_duration
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply

__all__ = ["run_alert_latency"]

TEAM = "research"
BUDGET = "research-monthly"
INTERVAL_SECONDS = 5
CROSSING_RATIO = 0.9
ALERT = "GpuCostBudgetThresholdReached"  # the 80 % tier: threshold="80"


class _BudgetExposition:
    """Serves gpucost_budget_usd and the thresholds; `budget_usd` can be changed at any time."""

    def __init__(self) -> None:
        self.budget_usd = 1e12
        self._http = HttpFixture({("GET", "*"): self._scrape}, name="budget-exposition", keep_requests=0)

    def _scrape(self, request: RecordedRequest) -> Reply:
        return Reply(200, self.render().encode(), "text/plain; version=0.0.4")

    def render(self) -> str:
        lines = [f'gpucost_budget_usd{{budget="{BUDGET}",team="{TEAM}",slack_channel="#bench-budget"}} '
                 f"{self.budget_usd!r}"]
        lines += [f'gpucost_budget_threshold_ratio{{budget="{BUDGET}",threshold="{t}"}} {t}'
                  for t in ("0.5", "0.8", "1", "1.25")]
        return "\n".join(lines) + "\n"

    @property
    def target(self) -> str:
        return self._http.target

    def __enter__(self) -> _BudgetExposition:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()


def _alert_for_seconds(repo: Path) -> float:
    document = yaml.safe_load((repo / "rules" / "gpucost.alerts.yaml").read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == ALERT:
                return parse_duration(str(rule.get("for", "0s")))
    raise RuntimeError(f"{ALERT} not in rules/gpucost.alerts.yaml")


def run_alert_latency(workdir: Path, quick: bool) -> dict[str, Any]:
    from gpucost_testing.servers import (
        REPO_ROOT,
        prom_query,
        start_alertmanager,
        start_exporter,
        start_prometheus,
        wait_for,
        write_prometheus_config,
    )
    from gpucost_testing.slack_sink import SlackSink

    started = time.perf_counter()
    root = workdir / "alert-latency"
    root.mkdir(parents=True, exist_ok=True)
    timings = Timings()
    secrets = root / "secrets"
    secrets.mkdir()
    (secrets / "slack-bot-token").write_text("xoxb-bench\n")
    scenario = REPO_ROOT / "tests" / "fixtures" / "scenarios" / "eight_gpus_static.yaml"
    with SlackSink() as sink, _BudgetExposition() as budget:
        (secrets / "slack-webhook-platform").write_text(sink.webhook_url("platform") + "\n")
        settings = Settings(mode=DeliveryMode.BOT, secrets_dir=str(secrets),
                            templates_dir=str(REPO_ROOT / "alertmanager" / "templates"),
                            slack_api_url=sink.chat_post_message_url, timings=timings)
        am_config = root / "alertmanager.yml"
        am_config.write_text(render_config(settings))
        exporter = start_exporter(root, ["--nvml.backend=simulated", f"--simulate.scenario={scenario}",
                                         "--sample.interval=1s", f"--state.file={root / 'state.json'}"])
        with exporter, start_alertmanager(root, am_config) as alertmanager:
            interval = f"{INTERVAL_SECONDS}s"
            config = write_prometheus_config(
                root / "prometheus.yml", scrape_targets=[exporter.base_url.removeprefix("http://")],
                scrape_interval=interval, evaluation_interval=interval,
                rule_files=[REPO_ROOT / "rules" / "gpucost.rules.yaml", REPO_ROOT / "rules" / "gpucost.alerts.yaml"],
                alertmanager_url=alertmanager.base_url,
                extra_scrape_configs=[{"job_name": "budgets", "scrape_interval": interval,
                                       "static_configs": [{"targets": [budget.target]}]}])
            with start_prometheus(root, config) as prometheus:
                spend_query = f'budget:gpucost_spend_usd:month_to_date{{team="{TEAM}"}}'

                def spend() -> float:
                    result = prom_query(prometheus, spend_query)
                    return float(result[0]["value"][1]) if result else 0.0

                # The month-to-date rule sums a 5-minute-step subquery: spend shows once a step boundary passed.
                data_wait_started = time.monotonic()
                wait_for(lambda: spend() > 0.0, timeout=420, interval=1.0, what="month-to-date spend")
                data_wait = time.monotonic() - data_wait_started
                budget.budget_usd = spend() / CROSSING_RATIO
                crossed_at = time.time()
                message = sink.wait_for(1, timeout=300, delivered_only=True)[0]
                latency = message.received_at.timestamp() - crossed_at
    for_seconds = _alert_for_seconds(REPO_ROOT)
    group_wait = parse_duration(timings.group_wait)
    expected_max = for_seconds + INTERVAL_SECONDS + 2 * INTERVAL_SECONDS + group_wait
    return {
        "benchmark": "alert_latency",
        "alert": ALERT,
        "alert_for_seconds": for_seconds,
        "scrape_interval_seconds": INTERVAL_SECONDS,
        "evaluation_interval_seconds": INTERVAL_SECONDS,
        "group_wait_seconds": group_wait,
        "expected_min_seconds": for_seconds + group_wait,
        "expected_max_seconds": expected_max,
        "measured_seconds": latency,
        "within_expected": latency <= expected_max + 2.0,
        "message_title": message.title,
        "message_budget_used": message.field("Budget Used"),
        "waited_for_first_spend_seconds": data_wait,
        "quick": quick,
        "wall_seconds": time.perf_counter() - started,
    }
