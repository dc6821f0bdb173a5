"""`gpucost export`: closed UTC days of cost rows to Parquet, CSV or BigQuery.

Each day is read whole from Prometheus before anything is written, then
replaced whole in the sink, so a day is never half written; days are exported
in order and the first failure stops the run (the days before it are done).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpucost.command_exit import fail
from gpucost.errors import UserInputError
from gpucost.extras import require_extra

if TYPE_CHECKING:
    from gpucost.finance.reader import ResourceSource
    from gpucost.finance.rows import CostRow

__all__ = ["add_parser", "require_finance_extra", "run"]

PROMETHEUS_FLAG = "--prometheus.url"
GCP_CREDENTIALS_FLAG = "--gcp.credentials-file"

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
        help="resource to export, repeatable (default: every resource gpucost records; today: gpu)")
    add("--format", choices=("parquet", "csv", "bigquery"), default="parquet")
    add("--out", type=Path, default=Path("."), metavar="DIR",
        help="directory of the day files (--format parquet|csv): gpucost-cost-YYYY-MM-DD.<format>")
    add("--bigquery.table", dest="bigquery_table", default="", metavar="PROJECT.DATASET.TABLE",
        help="destination table (--format bigquery); created, partitioned and clustered when missing")
    add("--bigquery.endpoint", dest="bigquery_endpoint", default="", metavar="URL",
        help="BigQuery API endpoint (private endpoints, tests); default Google's")
    add("--bigquery.timeout-seconds", dest="bigquery_timeout", type=float, default=60.0, metavar="SECONDS",
        help="give up on an unreachable BigQuery after this long (default 60)")
    add(GCP_CREDENTIALS_FLAG, dest="gcp_credentials_file", type=Path, default=None, metavar="FILE",
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
    from gpucost.finance.reader import SOURCES, check_resources

    clock = now or (lambda: dt.datetime.now(dt.UTC))
    days = _requested_days(args, clock())
    sources = check_resources(args.resource) if args.resource else tuple(SOURCES.values())
    require_finance_extra()
    write = _sink(args)
    try:
        for day in days:
            rows = _read(args, day, sources)
            where = write(day, rows)
            total = sum(row.cost_usd for row in rows)
            print(f"{day.isoformat()}: {len(rows)} rows, ${total:,.2f} -> {where}")
    except SinkUnavailable as exc:
        return fail(f"gpucost export: {exc}")
    return 0


def _read(args: argparse.Namespace, day: dt.date, sources: Sequence[ResourceSource]) -> list[CostRow]:
    from gpucost.finance.bigquery import SinkUnavailable
    from gpucost.finance.reader import read_day
    from gpucost.promapi import PrometheusApiError, PrometheusClient

    client = PrometheusClient(args.prometheus_url, timeout_seconds=args.prometheus_timeout, retries=2)
    try:
        return read_day(client, day, sources)
    except PrometheusApiError as exc:
        # Named like a sink failure: nothing of the day was written.
        raise SinkUnavailable(PROMETHEUS_FLAG, args.prometheus_url, f"the day was not read ({exc.problem})") from exc


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


def _sink(args: argparse.Namespace) -> Callable[[dt.date, Sequence[CostRow]], str]:
    """A function that replaces one day in the chosen sink and says where it went."""
    if args.format == "bigquery":
        return _bigquery_sink(args)
    from gpucost.finance.files import write_day_file

    out: Path = args.out
    file_format = args.format

    def write_file(day: dt.date, rows: Sequence[CostRow]) -> str:
        return str(write_day_file(out, day, rows, file_format))

    return write_file


def _bigquery_sink(args: argparse.Namespace) -> Callable[[dt.date, Sequence[CostRow]], str]:
    from gpucost.finance.bigquery import BigQuerySink, parse_table

    if not args.bigquery_table:
        raise UserInputError("--bigquery.table", "", "", "is required with --format bigquery")
    table = parse_table(args.bigquery_table)
    client = _bigquery_client(table.project, args.bigquery_endpoint, args.gcp_credentials_file)
    sink = BigQuerySink(client, table, endpoint=args.bigquery_endpoint, timeout_seconds=args.bigquery_timeout)

    def write_partition(day: dt.date, rows: Sequence[CostRow]) -> str:
        sink.replace_day(day, rows)
        return table.partition(day)

    return write_partition


def _bigquery_client(project: str, endpoint: str, credentials_file: Path | None) -> Any:
    from google.cloud import bigquery

    options = {"api_endpoint": endpoint} if endpoint else None
    return bigquery.Client(project=project, credentials=_credentials(credentials_file, endpoint),
                           client_options=options)


def _credentials(credentials_file: Path | None, endpoint: str) -> Any:
    """The key file's credentials; else the environment's; else, for an explicit endpoint only, none at all."""
    if credentials_file is not None:
        from gpucost.budgets.credentials import load_gcp_credentials

        return load_gcp_credentials(credentials_file)
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _project = google.auth.default()
    except DefaultCredentialsError as exc:
        if endpoint:  # a local emulator or test server takes anonymous requests
            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        raise UserInputError(GCP_CREDENTIALS_FLAG, "", "", "is needed: no credentials in the environment") from exc
    return credentials
