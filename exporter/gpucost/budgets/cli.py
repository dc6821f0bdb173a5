"""`gpucost-budgets`: the budget sidecar and its one-shot commands.

serve | validate FILE | plan | sync | reconcile --date | digest --team | price-sync.
User errors (and a missing `budgets` extra) are one line on stderr and exit
code 2; a cloud that cannot be reached is one line and exit code 1.
Credentials come from the standard chains (AWS IRSA/profile, GCP Workload
Identity/Application Default Credentials) or from mounted files
(`--aws.shared-credentials-file`, `--gcp.credentials-file`,
`--slack.bot-token-file`), never from the budgets file.  The parser imports no
cloud library, so `--help` works without the extra.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpucost.budgets.settings import (
    BudgetSyncConfig,
    CommandConfig,
    DigestConfig,
    PriceSyncConfig,
    ReconcileConfig,
    SidecarConfig,
    config_from_args,
    parse_duration,
)
from gpucost.budgets.spec import BudgetFile, Month, load_budget_file
from gpucost.command_exit import fail
from gpucost.errors import SourceUnavailable, UserInputError
from gpucost.extras import MissingExtra, require_extra
from gpucost.logs import setup_logging

if TYPE_CHECKING:
    from gpucost.budgets.state import ReconciliationResult

# parse_duration moved to gpucost.budgets.settings; it stays importable from here, where the tests know it.
__all__ = ["build_parser", "main", "parse_duration"]

log = logging.getLogger("gpucost.budgets")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpucost-budgets",
        description="Budgets as code: metrics, AWS/GCP budget sync, price sync, reconciliation, digest.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--budgets.file", dest="budgets_file", default="/etc/gpucost/budgets.yaml", type=Path)
    common.add_argument(
        "--log.level", dest="log_level", default="info", choices=("debug", "info", "warning", "error")
    )
    common.add_argument("--dry-run", dest="dry_run", action="store_true", help="plan and log, never write")

    clouds = argparse.ArgumentParser(add_help=False)
    clouds.add_argument("--aws.enabled", dest="aws_enabled", action="store_true", help="sync AWS Budgets")
    clouds.add_argument("--aws.account-id", dest="aws_account_id", default="", help="default: from STS")
    clouds.add_argument("--aws.region", dest="aws_region", default=os.environ.get("AWS_REGION", "us-east-1"))
    clouds.add_argument(
        "--aws.shared-credentials-file",
        dest="aws_shared_credentials_file",
        type=Path,
        default=None,
        metavar="PATH",
        help="AWS shared-credentials file (INI) mounted from a Secret, where IRSA is not available",
    )
    clouds.add_argument(
        "--gcp.credentials-file",
        dest="gcp_credentials_file",
        type=Path,
        default=None,
        metavar="PATH",
        help="GCP service-account JSON key file mounted from a Secret, where Workload Identity is not available",
    )
    clouds.add_argument(
        "--gcp.billing-account", dest="gcp_billing_account", default="", help="enables GCP budgets"
    )
    clouds.add_argument(
        "--gcp.projects", dest="gcp_projects", default="", help="comma-separated project filter"
    )
    clouds.add_argument("--gcp.pubsub-topic", dest="gcp_pubsub_topic", default="", help="projects/P/topics/T")
    clouds.add_argument("--gcp.api-endpoint", dest="gcp_api_endpoint", default="", help=argparse.SUPPRESS)
    clouds.add_argument("--gcp.region", dest="gcp_region", default="us-central1")
    clouds.add_argument(
        "--gcp.billing-export-table",
        dest="gcp_billing_export_table",
        default="",
        metavar="PROJECT.DATASET.TABLE",
        help="Cloud Billing export table in BigQuery; enables GCP reconciliation",
    )
    clouds.add_argument(
        "--gcp.billing-export-label",
        dest="gcp_billing_export_label",
        default="team",
        help="label key holding the team (GKE cost allocation exports pod labels as k8s-label/<key>)",
    )
    clouds.add_argument(
        "--gcp.bigquery-project",
        dest="gcp_bigquery_project",
        default="",
        help="project the query job runs in (default: the export table's project)",
    )
    clouds.add_argument(
        "--gcp.bigquery-endpoint",
        dest="gcp_bigquery_endpoint",
        default="https://bigquery.googleapis.com",
        help=argparse.SUPPRESS,
    )

    prom = argparse.ArgumentParser(add_help=False)
    prom.add_argument("--prometheus.url", dest="prometheus_url", default="http://prometheus:9090")

    slack = argparse.ArgumentParser(add_help=False)
    slack.add_argument(
        "--slack.bot-token-file",
        dest="slack_bot_token_file",
        type=Path,
        default=None,
        metavar="PATH",
        help="file holding the Slack bot token (a mounted Secret); SLACK_BOT_TOKEN is a development fallback",
    )

    serve = sub.add_parser("serve", parents=[common, clouds, prom, slack], help="run the sidecar")
    serve.add_argument("--web.listen-address", dest="listen_address", default=":9836")
    serve.add_argument("--sync.interval", dest="sync_interval", default="1h", help="cloud budget sync period")
    serve.add_argument("--price-sync.interval", dest="price_sync_interval", default="24h")
    serve.add_argument("--price-sync.overrides-file", dest="overrides_file", type=Path, default=None)
    serve.add_argument("--reconcile.hour", dest="reconcile_hour", type=int, default=6, help="UTC hour, 0-23")
    serve.add_argument("--reconcile.lag-hours", dest="lag_hours", type=float, default=24.0)
    serve.add_argument("--digest.weekday", dest="digest_weekday", type=int, default=0, help="0 = Monday")
    serve.add_argument("--kubeconfig", dest="kubeconfig", default=None)
    serve.add_argument("--reload.interval", dest="reload_interval", default="10s")
    _add_export_flags(serve)

    validate = sub.add_parser("validate", help="check a budgets file; exit 2 when invalid")
    validate.add_argument("file", type=Path)

    sub.add_parser("plan", parents=[common, clouds], help="show the cloud budget changes (dry-run)")
    sub.add_parser("sync", parents=[common, clouds], help="apply the cloud budget changes")

    reconcile = sub.add_parser("reconcile", parents=[common, clouds, prom], help="reconcile one day")
    reconcile.add_argument("--date", dest="date", default="", help="YYYY-MM-DD (UTC), default yesterday")
    reconcile.add_argument("--reconcile.lag-hours", dest="lag_hours", type=float, default=24.0)

    digest = sub.add_parser("digest", parents=[common, prom, slack], help="send one team's Slack digest")
    digest.add_argument("--team", required=True)
    digest.add_argument("--slack.channel", dest="slack_channel", default="")
    digest.add_argument("--slack.base-url", dest="slack_base_url", default="", help=argparse.SUPPRESS)

    prices = sub.add_parser(
        "price-sync", parents=[common, clouds], help="refresh the price overrides file once"
    )
    prices.add_argument("--price-sync.overrides-file", dest="overrides_file", type=Path, required=True)
    prices.add_argument("--spot.window", dest="spot_window", default="7d")
    return parser


def _add_export_flags(serve: argparse.ArgumentParser) -> None:
    """`serve`'s finance export job (docs/finance.md); BigQuery takes the `--gcp.credentials-file` key when given."""
    export = serve.add_argument_group("finance export", "each closed UTC day's cost rows, once (off by default)")
    export.add_argument("--export.format", dest="export_format", default="", choices=("parquet", "csv", "bigquery"),
                        help="turns the job on: day files in --export.out, or partitions of --export.bigquery-table")
    export.add_argument("--export.out", dest="export_out", type=Path, default=None, metavar="DIR",
                        help="directory of the day files gpucost-cost-YYYY-MM-DD.parquet|csv")
    export.add_argument("--export.bigquery-table", dest="export_bigquery_table", default="",
                        metavar="PROJECT.DATASET.TABLE", help="created, day-partitioned and clustered when missing")
    export.add_argument("--export.bigquery-endpoint", dest="export_bigquery_endpoint", default="", metavar="URL",
                        help="BigQuery API endpoint (private endpoints); default Google's")
    export.add_argument("--export.interval", dest="export_interval", default="10m",
                        help="how often to look for a newly closed day, and to retry a failed one")


# Commands that run on the standard library and PyYAML alone; every other one needs the `budgets` extra.
_WITHOUT_EXTRA = frozenset({"validate"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The redacting handler first: every later line, a library's debug output included, passes its filter.
    setup_logging(getattr(args, "log_level", "info"))
    try:
        if args.command in _WITHOUT_EXTRA:
            return _validate(args.file)
        require_extra("budgets", f"gpucost-budgets {args.command}")
        config = config_from_args(args)
        _check_credential_files(config)
        return _run(config)
    except MissingExtra as err:
        return fail(f"gpucost-budgets: {err.one_line()}")
    except UserInputError as err:
        return fail(f"gpucost-budgets: {err.one_line()}")
    except SourceUnavailable as err:
        print(f"gpucost-budgets: {err}", file=sys.stderr)
        return 1


def _run(config: CommandConfig) -> int:
    match config:
        case SidecarConfig():
            from gpucost.budgets.service import run_service

            return run_service(config)
        case BudgetSyncConfig():
            return _plan_or_sync(config)
        case ReconcileConfig():
            return _reconcile(config)
        case DigestConfig():
            return _digest(config)
        case PriceSyncConfig():
            return _price_sync(config)


def _check_credential_files(config: CommandConfig) -> None:
    """Read every credential file a flag names before any work: a bad one is exit 2 at start, not a job failure."""
    from gpucost.credentials import slack_bot_token

    if isinstance(config, SidecarConfig | DigestConfig) and config.slack.bot_token_file is not None:
        slack_bot_token(config.slack.bot_token_file)
    if not isinstance(config, DigestConfig) and config.clouds.credential_files:
        from gpucost.budgets import clouds

        clouds.check_credential_files(config.clouds)


def _validate(file: Path) -> int:
    budgets = load_budget_file(file)
    for overlap in budgets.overlaps:
        print(f"{file}: warning: {overlap}")
    print(f"{file}: ok ({len(budgets.budgets)} budgets, {len(budgets.fixed_costs)} fixed costs)")
    return 0


def _plan_or_sync(config: BudgetSyncConfig) -> int:
    from gpucost.budgets import clouds

    budget_file = load_budget_file(config.budgets_file)
    month = Month.of(dt.datetime.now(dt.UTC).date())
    for text in clouds.plan_and_apply(config.clouds, budget_file, month, apply=config.apply):
        print(text)
    return 0


def _reconcile(config: ReconcileConfig) -> int:
    from gpucost.budgets import clouds

    day = config.day or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    reconcilers = clouds.make_reconcilers(config.clouds, config.reconciliation, config.prometheus)
    now = dt.datetime.now(dt.UTC)
    failed: list[str] = []
    for reconciler in reconcilers:
        results = reconciler.reconcile_day(day, now)
        if not results:  # the reconciler logged why and marked the provider down
            failed.append(reconciler.actual_source.provider)
        for result in results:
            print(_result_line(day, result))
    if failed:
        raise SourceUnavailable(f"reconciliation of {', '.join(failed)} for {day} failed; see the log")
    return 0


def _result_line(day: dt.date, result: ReconciliationResult) -> str:
    ratio = f"{result.ratio:.3f}" if result.ratio is not None else "n/a"
    return (
        f"{day} {result.provider} {result.scope}: billed {result.actual_usd:.2f} USD, "
        f"estimated {result.estimated_usd:.2f} USD, ratio {ratio}, delta {result.delta_usd:+.2f} USD"
        f"{'' if result.final else ' (not final)'}"
    )


def _digest(config: DigestConfig) -> int:
    from gpucost.budgets.digest import (
        default_channel,
        gather_team_digest,
        make_slack_client,
        render_blocks,
        send_digest,
    )
    from gpucost.budgets.top_saving import ScorecardTopSavings
    from gpucost.credentials import SLACK_TOKEN_FLAG, slack_bot_token
    from gpucost.promapi import PrometheusClient

    token = slack_bot_token(config.slack.bot_token_file)  # before any query: a missing token is exit 2 at once
    if not token and not config.dry_run:
        raise UserInputError(
            "", SLACK_TOKEN_FLAG, None, "name the file holding the Slack bot token (SLACK_BOT_TOKEN in development)"
        )
    budget_file: BudgetFile | None = (
        load_budget_file(config.budgets_file) if config.budgets_file.exists() else None
    )
    prometheus = PrometheusClient(config.prometheus.url)
    digest = gather_team_digest(
        prometheus,
        config.team,
        budget_file,
        dt.datetime.now(dt.UTC),
        top_savings=ScorecardTopSavings.from_prometheus(prometheus.base_url),
    )
    channel = config.channel or default_channel(config.team, budget_file)
    if config.dry_run:
        text, _blocks = render_blocks(digest)
        print(f"{channel}: {text}")
        return 0
    send_digest(make_slack_client(token, config.slack_base_url), channel, digest)
    return 0


def _price_sync(config: PriceSyncConfig) -> int:
    from gpucost.budgets import clouds
    from gpucost.budgets.price_sync import run_price_sync
    from gpucost.budgets.state import SidecarState

    providers = clouds.price_providers(config.clouds, config.spot_window)
    state = SidecarState()
    entries = run_price_sync(config.overrides_file, providers, state, dt.datetime.now(dt.UTC))
    failed = [key[0] for key, up in state.snapshot().provider_up.items() if not up]
    print(
        f"{config.overrides_file}: {len(entries)} prices written"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
