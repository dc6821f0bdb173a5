"""`gpucost export`: closed UTC days of cost rows to Parquet, CSV or BigQuery.

Each day is read whole from Prometheus before anything is written, then
replaced whole in the sink (`finance.export`), so a day is never half written;
days are exported in order and the first failure stops the run (the days
before it are done).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpucost.command_exit import fail
from gpucost.errors import UserInputError
from gpucost.extras import require_extra

if TYPE_CHECKING:
    from gpucost.finance.sink import SinkSettings

__all__ = ["add_parser", "require_finance_extra", "run"]

Clock = Callable[[], dt.datetime]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Mount `export` on the admin CLI's subparsers; the caller sets its handler to `run`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export", help="write closed UTC days of cost rows (FOCUS columns) to Parquet, CSV or BigQuery",
        description="Write one row per day, team, model, namespace and resource for closed UTC days, read "
                    "from Prometheus's recorded series; re-exporting a day replaces it. See docs/finance.md.")
    add = parser.add_argument
    add("--prometheus.url", dest="prometheus_url", required=True, metavar="URL",
        help="Prometheus (or VictoriaMetrics) base URL holding gpucost's recorded series")
    add("--day", type=_date("--day"), default=None, metavar="YYYY-MM-DD", help="the UTC day (default: yesterday)")
    add("--from", dest="first", type=_date("--from"), default=None, metavar="YYYY-MM-DD",
        help="first UTC day of a range (with --to)")
    add("--to", dest="last", type=_date("--to"), default=None, metavar="YYYY-MM-DD",
        help="last UTC day of a range, inclusive (with --from)")
    add("--resource", action="append", default=None, metavar="NAME",
        help="resource to export, repeatable: gpu, cpu, memory, storage (default: all of them)")
    add("--format", choices=("parquet", "csv", "bigquery"), default="parquet")
    add("--out", type=Path, default=Path("."), metavar="DIR",
        help="directory of the day files (--format parquet|csv): gpucost-cost-YYYY-MM-DD.<format>")
    add("--bigquery.table", dest="bigquery_table", default="", metavar="PROJECT.DATASET.TABLE",
        help="destination table (--format bigquery); created, partitioned and clustered when missing")
    add("--bigquery.endpoint", dest="bigquery_endpoint", default="", metavar="URL",
        help="BigQuery API endpoint (private endpoints, tests); default Google's")
    add("--bigquery.timeout-seconds", dest="bigquery_timeout", type=float, default=60.0, metavar="SECONDS",
        help="give up on an unreachable BigQuery after this long (default 60)")
    add("--gcp.credentials-file", dest="gcp_credentials_file", type=Path, default=None, metavar="FILE",
        help="service-account JSON key file (default: the environment's credentials, e.g. Workload Identity)")
    add("--prometheus.timeout-seconds", dest="prometheus_timeout", type=float, default=60.0, metavar="SECONDS",
        help="timeout of each Prometheus query (default 60)")
    return parser


def _date(flag: str) -> Callable[[str], dt.date]:
    def parse(text: str) -> dt.date:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text!r} is not a date (YYYY-MM-DD)") from None

    return parse


def require_finance_extra() -> None:
    """MissingExtra naming `finance` when pyarrow or the BigQuery client is not installed."""
    require_extra("finance", "the finance export (Parquet, CSV, BigQuery)")


def run(args: argparse.Namespace, now: Clock | None = None) -> int:
    """Export every requested day; bad input raises UserInputError/MissingExtra, an unreachable end is one line."""
    from gpucost.finance.bigquery import SinkUnavailable
    from gpucost.finance.export import export_day
    from gpucost.finance.reader import SOURCES, check_resources
    from gpucost.finance.sink import open_sink
    from gpucost.promapi import PrometheusClient

    clock = now or (lambda: dt.datetime.now(dt.UTC))
    days = _requested_days(args, clock())
    sources = check_resources(args.resource) if args.resource else tuple(SOURCES.values())
    require_finance_extra()
    sink = open_sink(_sink_settings(args))
    client = PrometheusClient(args.prometheus_url, timeout_seconds=args.prometheus_timeout, retries=2)
    try:
        for day in days:
            print(export_day(client, day, sources, sink).summary())
    except SinkUnavailable as exc:
        return fail(f"gpucost export: {exc}")
    return 0


def _requested_days(args: argparse.Namespace, now: dt.datetime) -> list[dt.date]:
    from gpucost.finance.reader import check_closed, days_between

    if args.day is not None and (args.first is not None or args.last is not None):
        raise UserInputError("--day", "", args.day.isoformat(), "cannot be combined with --from/--to")
    if (args.first is None) != (args.last is None):
        flag, given = ("--from", args.first) if args.first is not None else ("--to", args.last)
        raise UserInputError(flag, "", given.isoformat(), "needs --from and --to together")
    if args.first is not None:
        if args.last < args.first:
            raise UserInputError("--to", "", args.last.isoformat(), f"is before --from {args.first.isoformat()}")
        check_closed(args.last, now, "--to")
        return days_between(args.first, args.last)
    day = args.day if args.day is not None else now.date() - dt.timedelta(days=1)
    return [check_closed(day, now, "--day")]


def _sink_settings(args: argparse.Namespace) -> SinkSettings:
    from gpucost.finance.sink import SinkSettings

    return SinkSettings(format=args.format, out=args.out, bigquery_table=args.bigquery_table,
                        bigquery_endpoint=args.bigquery_endpoint, credentials_file=args.gcp_credentials_file,
                        timeout_seconds=args.bigquery_timeout)
