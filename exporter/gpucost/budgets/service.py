"""`gpucost-budgets serve`: the HTTP server plus the scheduled jobs, each failing alone.

Jobs: reload the budgets file (every few seconds), cloud budget sync,
AWS anomaly detection sync and spend read-back (hourly), enforcement (with each sync), price sync (daily),
reconciliation per cloud (daily at `--reconcile.hour` UTC, and once at start), the finance export of each closed
UTC day (`--export.format`, looked for every `--export.interval`; `gpucost.finance.job`), the
weekly Slack digest with the scorecard's top saving (when a bot token is given: `--slack.bot-token-file`, or
SLACK_BOT_TOKEN in development).  A job that fails marks its provider down and the others keep running; each
provider's jobs run in a thread of their own, so a cloud API that hangs delays nothing else.  A job that cannot
run where the sidecar runs (enforcement outside a cluster) says so in one warning line and reports down.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from gpucost.budgets import clouds
from gpucost.budgets.aws_anomaly import AwsAnomalySync
from gpucost.budgets.aws_budgets import AwsBudgetSync
from gpucost.budgets.collector import build_registry
from gpucost.budgets.reconcile import Reconciler
from gpucost.budgets.reload import BudgetFileWatcher
from gpucost.budgets.server import SidecarHttpServer
from gpucost.budgets.settings import DEFAULT_SPOT_WINDOW, PriceSyncSchedule, SidecarConfig
from gpucost.budgets.spec import Budget, Month
from gpucost.budgets.state import SidecarState
from gpucost.errors import GpucostError, SourceUnavailable

if TYPE_CHECKING:
    from gpucost.finance.job import ExportJobSettings
    from gpucost.promapi import PrometheusClient

__all__ = ["Job", "JobDisabled", "run_service", "start_job_threads"]

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    provider: str
    feature: str
    due: Callable[[dt.datetime], bool]
    run: Callable[[dt.datetime], None]


class JobDisabled(GpucostError):
    """The job cannot run in this environment; it logged why once, and its feature reports down quietly."""


def _every(period: dt.timedelta) -> Callable[[dt.datetime], bool]:
    last: list[dt.datetime] = []

    def due(now: dt.datetime) -> bool:
        if last and now - last[0] < period:
            return False
        last[:] = [now]
        return True

    return due


def _daily_at(hour: int) -> Callable[[dt.datetime], bool]:
    done: set[dt.date] = set()

    def due(now: dt.datetime) -> bool:
        if not done:  # once at start, then at `hour` each day
            done.add(now.date() - dt.timedelta(days=1))
            return True
        if now.hour >= hour and now.date() not in done:
            done.add(now.date())
            return True
        return False

    return due


def _run_guarded(job: Job, state: SidecarState, now: dt.datetime) -> None:
    try:
        job.run(now)
    except JobDisabled:
        state.set_provider_up(job.provider, job.feature, False)
        return
    except GpucostError as err:
        log.error("%s failed: %s", job.name, err)
        state.set_provider_up(job.provider, job.feature, False)
        return
    except Exception:  # health wrapper: one job's bug must not stop the sidecar
        log.exception("%s crashed", job.name)
        state.set_provider_up(job.provider, job.feature, False)
        return
    state.set_provider_up(job.provider, job.feature, True)


def build_jobs(config: SidecarConfig, state: SidecarState) -> list[Job]:
    from gpucost.promapi import PrometheusClient

    # One client for enforcement, the digest and the finance export: they read the same Prometheus.
    prometheus = PrometheusClient(config.prometheus.url)
    jobs: list[Job] = []
    if config.clouds.aws.enabled:
        jobs.extend(_aws_jobs(config, state))
    if config.clouds.gcp.budgets_enabled:
        jobs.append(_gcp_budget_job(config, state))
    reconcilers = clouds.make_reconcilers(config.clouds, config.reconciliation, config.prometheus, state)
    jobs.extend(_reconciliation_job(r, state, config.schedule.reconcile_hour) for r in reconcilers)
    if config.price_sync is not None:
        jobs.append(_price_sync_job(config, config.price_sync, state))
    jobs.append(_enforcement_job(config, state, prometheus))
    jobs.extend(_digest_jobs(config, state, prometheus))
    if config.finance_export is not None:
        jobs.append(_finance_export_job(config.finance_export, state, prometheus))
    return jobs


def _aws_jobs(config: SidecarConfig, state: SidecarState) -> list[Job]:
    """AWS Budgets sync with spend read-back, and anomaly detection; the clients are built at the first run."""
    apply = not config.dry_run
    aws_holder: list[AwsBudgetSync] = []

    def aws_budgets(now: dt.datetime) -> None:
        budget_file = state.budgets()
        if budget_file is None:
            return
        if not aws_holder:  # built lazily: an STS outage at start must not stop the sidecar
            aws_holder.append(clouds.make_aws_budget_sync(config.clouds.aws, state))
        aws_sync = aws_holder[0]
        plan = aws_sync.plan(budget_file, Month.of(now.date()))
        log.info("aws budget plan:\n%s", plan.render())
        if apply:
            aws_sync.apply(plan)
        aws_sync.read_spend(budget_file)

    anomaly_holder: list[AwsAnomalySync] = []

    def aws_anomaly_detection(now: dt.datetime) -> None:
        budget_file = state.budgets()
        if budget_file is None or budget_file.anomaly_detection is None:
            return
        if not anomaly_holder:
            anomaly_holder.append(clouds.make_aws_anomaly_sync(config.clouds.aws))
        plan = anomaly_holder[0].plan(budget_file)
        log.info("aws anomaly detection plan:\n%s", plan.render())
        if apply:
            anomaly_holder[0].apply(plan)

    period = config.schedule.sync_interval
    return [
        Job("aws budget sync", "aws", "budgets", _every(period), aws_budgets),
        Job("aws anomaly detection", "aws", "anomaly_detection", _every(period), aws_anomaly_detection),
    ]


def _gcp_budget_job(config: SidecarConfig, state: SidecarState) -> Job:
    gcp_sync = clouds.make_gcp_budget_sync(config.clouds.gcp)

    def gcp_budgets(now: dt.datetime) -> None:
        budget_file = state.budgets()
        if budget_file is None:
            return
        plan = gcp_sync.plan(budget_file, Month.of(now.date()), config.clouds.gcp.projects)
        log.info("gcp budget plan:\n%s", plan.render())
        if not config.dry_run:
            gcp_sync.apply(plan)

    return Job("gcp budget sync", "gcp", "budgets", _every(config.schedule.sync_interval), gcp_budgets)


def _reconciliation_job(reconciler: Reconciler, state: SidecarState, hour: int) -> Job:
    """A daily job per cloud ("aws reconciliation", "gcp reconciliation"), failing alone.

    `Reconciler.run` logs a failed day and marks its provider down instead of raising; the job raises
    then, so that `_run_guarded` does not mark the provider up again after a failed run.
    """
    provider = reconciler.actual_source.provider

    def run(now: dt.datetime) -> None:
        reconciler.run(now)
        if not state.snapshot().provider_up.get((provider, "reconciliation"), True):
            raise SourceUnavailable("the billed cost or the estimate was unavailable; the day stays pending")

    return Job(f"{provider} reconciliation", provider, "reconciliation", _daily_at(hour), run)


def _price_sync_job(config: SidecarConfig, schedule: PriceSyncSchedule, state: SidecarState) -> Job:
    from gpucost.budgets.price_sync import run_price_sync

    providers = clouds.price_providers(config.clouds, DEFAULT_SPOT_WINDOW)

    def sync_prices(now: dt.datetime) -> None:
        if providers:  # no cloud enabled: the overrides file stays as it is
            run_price_sync(schedule.overrides_file, providers, state, now)

    return Job("price sync", "all", "price_sync", _every(schedule.interval), sync_prices)


def _finance_export_job(settings: ExportJobSettings, state: SidecarState, prometheus: PrometheusClient) -> Job:
    """Provider `finance`: a thread of its own, so a BigQuery that hangs delays no other job."""
    from gpucost.finance.job import DailyExport

    export = DailyExport(prometheus, settings.sink,
                         on_success=lambda _exported, now: state.set_finance_export_success(now.timestamp()))
    return Job("finance export", "finance", "export", _every(settings.interval), export.run)


def _enforcement_job(config: SidecarConfig, state: SidecarState, prometheus: PrometheusClient) -> Job:
    holder: dict[str, object] = {}

    def spend_of(budget: Budget) -> float:
        from gpucost.budgets.enforcement import spend_query

        return sum(value for _labels, value in prometheus.query(spend_query(budget)))

    def enforce(now: dt.datetime) -> None:
        from gpucost.budgets.enforcement import KubernetesUnavailable, QuotaEnforcer, load_core_v1

        budget_file = state.budgets()
        if budget_file is None or not any(b.enforce == "quota" for b in budget_file.budgets):
            return
        if "enforcer" not in holder:
            try:
                core_v1 = load_core_v1(config.enforcement.kubeconfig)
            except KubernetesUnavailable as err:
                # Expected on a laptop (`serve --dry-run`): say it once, retry each period (a kubeconfig may appear).
                if "warned" not in holder:
                    holder["warned"] = True
                    log.warning("enforcement is off: %s", err)
                raise JobDisabled(str(err)) from err
            holder["enforcer"] = QuotaEnforcer(core_v1, state, dry_run=config.dry_run)
        enforcer = holder["enforcer"]
        assert isinstance(enforcer, QuotaEnforcer)
        enforcer.run(budget_file, spend_of, now)

    return Job("enforcement", "kubernetes", "enforcement", _every(config.schedule.sync_interval), enforce)


def _digest_jobs(config: SidecarConfig, state: SidecarState, prometheus: PrometheusClient) -> list[Job]:
    from gpucost.credentials import slack_bot_token

    token = slack_bot_token(config.slack.bot_token_file)
    if not token:
        return []
    from gpucost.budgets.digest import default_channel, gather_team_digest, make_slack_client, send_digest
    from gpucost.budgets.top_saving import ScorecardTopSavings

    # One scorecard per digest run (the weekly window), shared by every team's digest.
    top_savings = ScorecardTopSavings.from_prometheus(prometheus.base_url)
    client = make_slack_client(token)
    sent: set[dt.date] = set()

    def due(now: dt.datetime) -> bool:
        return now.weekday() == config.schedule.digest_weekday and now.hour >= 9 and now.date() not in sent

    def send(now: dt.datetime) -> None:
        sent.add(now.date())
        budget_file = state.budgets()
        if budget_file is None:
            return
        for team in sorted({budget.scope.team for budget in budget_file.budgets}):
            digest = gather_team_digest(prometheus, team, budget_file, now, top_savings=top_savings)
            send_digest(client, default_channel(team, budget_file), digest)

    return [Job("slack digest", "slack", "digest", due, send)]


def run_service(config: SidecarConfig) -> int:
    """Serve until SIGTERM or SIGINT; `config` was checked when it was built, so nothing here is a user error."""
    state = SidecarState()
    watcher = BudgetFileWatcher(config.budgets_file, state)
    watcher.check()
    server = SidecarHttpServer(config.listen_on, build_registry(state), state).start()
    log.info(
        "gpucost-budgets listening on %s (port %d)%s",
        config.listen_address,
        server.port,
        " in dry-run mode" if config.dry_run else "",
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start_job_threads(build_jobs(config, state), state, stop)
    while not stop.wait(config.schedule.reload_interval.total_seconds()):
        watcher.check()
    server.stop()
    return 0


def start_job_threads(jobs: list[Job], state: SidecarState, stop: threading.Event) -> list[threading.Thread]:
    """One thread per provider: a slow or hanging cloud API delays only its own jobs.

    Jobs of one provider stay one after another (they share its client and its rate limits).
    """
    by_provider: dict[str, list[Job]] = {}
    for job in jobs:
        by_provider.setdefault(job.provider, []).append(job)
    threads = [
        threading.Thread(target=_job_loop, args=(group, state, stop), name=f"jobs-{provider}", daemon=True)
        for provider, group in by_provider.items()
    ]
    for thread in threads:
        thread.start()
    return threads


def _job_loop(jobs: list[Job], state: SidecarState, stop: threading.Event) -> None:
    while not stop.is_set():
        now = dt.datetime.now(dt.UTC)
        for job in jobs:
            if stop.is_set():
                return
            if job.due(now):
                started = time.monotonic()
                _run_guarded(job, state, now)
                log.debug("%s took %.1fs", job.name, time.monotonic() - started)
        stop.wait(5.0)
