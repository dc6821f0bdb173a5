"""`gpucost-budgets serve`: the HTTP server plus the scheduled jobs, each failing alone.

Jobs: reload the budgets file (every few seconds), cloud budget sync,
AWS anomaly detection sync and spend read-back (hourly), enforcement (with each sync), price sync (daily),
reconciliation per cloud (daily at `--reconcile.hour` UTC, and once at start), the
weekly Slack digest with the scorecard's top saving (when a bot token is given: `--slack.bot-token-file`, or
SLACK_BOT_TOKEN in development).  A job that fails marks its provider down and the others keep running; each
provider's jobs run in a thread of their own, so a cloud API that hangs delays nothing else.  A job that cannot
run where the sidecar runs (enforcement outside a cluster) says so in one warning line and reports down.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from gpucost.budgets import clouds
from gpucost.budgets.aws_anomaly import AwsAnomalySync
from gpucost.budgets.aws_budgets import AwsBudgetSync
from gpucost.budgets.collector import build_registry
from gpucost.budgets.reconcile import Reconciler
from gpucost.budgets.reload import BudgetFileWatcher
from gpucost.budgets.server import SidecarHttpServer, parse_listen_address
from gpucost.budgets.spec import Budget, Month
from gpucost.budgets.state import SidecarState
from gpucost.errors import GpucostError, SourceUnavailable

__all__ = ["Job", "JobDisabled", "run_service", "start_job_threads"]

log = logging.getLogger(__name__)
DurationParser = Callable[[str, str], dt.timedelta]


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


def build_jobs(args: argparse.Namespace, state: SidecarState, parse_duration: DurationParser) -> list[Job]:
    jobs: list[Job] = []
    sync_period = parse_duration(args.sync_interval, "--sync.interval")
    apply = not args.dry_run

    if args.aws_enabled:
        aws_holder: list[AwsBudgetSync] = []

        def aws_budgets(now: dt.datetime) -> None:
            budget_file = state.budgets()
            if budget_file is None:
                return
            if not aws_holder:  # built lazily: an STS outage at start must not stop the sidecar
                aws_holder.append(clouds.make_aws_budget_sync(args, state))
            aws_sync = aws_holder[0]
            plan = aws_sync.plan(budget_file, Month.of(now.date()))
            log.info("aws budget plan:\n%s", plan.render())
            if apply:
                aws_sync.apply(plan)
            aws_sync.read_spend(budget_file)

        jobs.append(Job("aws budget sync", "aws", "budgets", _every(sync_period), aws_budgets))
        anomaly_holder: list[AwsAnomalySync] = []

        def aws_anomaly_detection(now: dt.datetime) -> None:
            budget_file = state.budgets()
            if budget_file is None or budget_file.anomaly_detection is None:
                return
            if not anomaly_holder:
                anomaly_holder.append(clouds.make_aws_anomaly_sync(args))
            plan = anomaly_holder[0].plan(budget_file)
            log.info("aws anomaly detection plan:\n%s", plan.render())
            if apply:
                anomaly_holder[0].apply(plan)

        jobs.append(
            Job("aws anomaly detection", "aws", "anomaly_detection", _every(sync_period), aws_anomaly_detection)
        )
    if args.gcp_billing_account:
        gcp_sync = clouds.make_gcp_budget_sync(args)
        projects = [p.strip() for p in str(args.gcp_projects).split(",") if p.strip()]

        def gcp_budgets(now: dt.datetime) -> None:
            budget_file = state.budgets()
            if budget_file is None:
                return
            plan = gcp_sync.plan(budget_file, Month.of(now.date()), projects)
            log.info("gcp budget plan:\n%s", plan.render())
            if apply:
                gcp_sync.apply(plan)

        jobs.append(Job("gcp budget sync", "gcp", "budgets", _every(sync_period), gcp_budgets))
    jobs.extend(_reconciliation_job(r, state, args.reconcile_hour) for r in clouds.make_reconcilers(args, state))
    if args.overrides_file is not None:
        from gpucost.budgets.price_sync import run_price_sync

        providers = clouds.price_providers(args, dt.timedelta(days=7))
        period = parse_duration(args.price_sync_interval, "--price-sync.interval")
        jobs.append(
            Job(
                "price sync",
                "all",
                "price_sync",
                _every(period),
                lambda now: (
                    None if not providers else _price_sync(run_price_sync, args, providers, state, now)
                ),
            )
        )
    jobs.extend(_enforcement_jobs(args, state, sync_period))
    jobs.extend(_digest_jobs(args, state))
    return jobs


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


def _price_sync(
    runner: Callable[..., object],
    args: argparse.Namespace,
    providers: object,
    state: SidecarState,
    now: dt.datetime,
) -> None:
    runner(args.overrides_file, providers, state, now)


def _enforcement_jobs(args: argparse.Namespace, state: SidecarState, period: dt.timedelta) -> list[Job]:
    from gpucost.budgets.prometheus_api import PrometheusClient

    prometheus = PrometheusClient(args.prometheus_url)
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
                core_v1 = load_core_v1(args.kubeconfig)
            except KubernetesUnavailable as err:
                # Expected on a laptop (`serve --dry-run`): say it once, retry each period (a kubeconfig may appear).
                if "warned" not in holder:
                    holder["warned"] = True
                    log.warning("enforcement is off: %s", err)
                raise JobDisabled(str(err)) from err
            holder["enforcer"] = QuotaEnforcer(core_v1, state, dry_run=args.dry_run)
        enforcer = holder["enforcer"]
        assert isinstance(enforcer, QuotaEnforcer)
        enforcer.run(budget_file, spend_of, now)

    return [Job("enforcement", "kubernetes", "enforcement", _every(period), enforce)]


def _digest_jobs(args: argparse.Namespace, state: SidecarState) -> list[Job]:
    from gpucost.budgets.credentials import slack_bot_token

    token = slack_bot_token(getattr(args, "slack_bot_token_file", None))
    if not token:
        return []
    from gpucost.budgets.digest import default_channel, gather_team_digest, make_slack_client, send_digest
    from gpucost.budgets.prometheus_api import PrometheusClient
    from gpucost.budgets.top_saving import ScorecardTopSavings

    prometheus = PrometheusClient(args.prometheus_url)
    # One scorecard per digest run (the weekly window), shared by every team's digest.
    top_savings = ScorecardTopSavings.from_prometheus(prometheus.base_url)
    client = make_slack_client(token)
    sent: set[dt.date] = set()

    def due(now: dt.datetime) -> bool:
        return now.weekday() == args.digest_weekday and now.hour >= 9 and now.date() not in sent

    def send(now: dt.datetime) -> None:
        sent.add(now.date())
        budget_file = state.budgets()
        if budget_file is None:
            return
        for team in sorted({budget.scope.team for budget in budget_file.budgets}):
            digest = gather_team_digest(prometheus, team, budget_file, now, top_savings=top_savings)
            send_digest(client, default_channel(team, budget_file), digest)

    return [Job("slack digest", "slack", "digest", due, send)]


def run_service(args: argparse.Namespace, parse_duration: DurationParser) -> int:
    state = SidecarState()
    watcher = BudgetFileWatcher(args.budgets_file, state)
    watcher.check()
    reload_period = parse_duration(args.reload_interval, "--reload.interval").total_seconds()
    server = SidecarHttpServer(
        parse_listen_address(args.listen_address), build_registry(state), state
    ).start()
    log.info(
        "gpucost-budgets listening on %s (port %d)%s",
        args.listen_address,
        server.port,
        " in dry-run mode" if args.dry_run else "",
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start_job_threads(build_jobs(args, state, parse_duration), state, stop)
    while not stop.wait(reload_period):
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
