"""`gpucost scorecard`: compute the scorecard once (table, json, html) or serve it as metrics."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpucost.command_exit import fail
from gpucost.errors import SourceUnavailable, UserInputError
from gpucost.extras import MissingExtra, require_extra
from gpucost.listen_address import ListenAddressError, parse_listen_address

if TYPE_CHECKING:
    from gpucost.scorecard.combine import Scorecard

# The table (rich) and the HTML charts (matplotlib) come with the [report] extra;
# they are imported only once a scorecard is computed, so `gpucost --help` works
# on a bare install.
REPORT_EXTRA = "report"

__all__ = ["add_parser", "compute_scorecard", "main", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Mount `scorecard` on the admin CLI's subparsers; the caller sets its handler to `run`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "scorecard", help="savings potential per team, model and lever from measured data")
    _add_arguments(parser)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--prometheus", required=True, metavar="URL", help="Prometheus (or VictoriaMetrics) base URL")
    add("--team", default=None, help="only this team")
    add("--days", type=float, default=7.0, help="window of recorded data to read (default 7)")
    add("--tile-hours", type=float, default=1.0,
        help="spend tile whose minimum over the window is the steady baseline (commitment lever)")
    add("--at", type=float, default=None, help="evaluation time, unix seconds (default now)")
    add("--format", choices=("table", "json", "html"), default="table")
    add("--out", default="scorecard-report", help="directory of the HTML report (--format html)")
    add("--instance-type", default="", help="instance type of GPUs whose series carry no instance_type label")
    add("--region", default="", help="region of GPUs whose series carry no region label")
    add("--quantization-speedup", type=float, default=3.0, help="assumed 4-bit speed-up (estimate)")
    add("--commitment-discount", type=float, default=0.30, help="commitment / savings plan discount, 0..1")
    add("--right-size-headroom", type=float, default=0.2, help="memory/compute kept free when right-sizing")
    add("--serve", action="store_true", help="serve gpucost_savings_potential_usd_per_month instead")
    add("--web.listen-address", dest="listen_address", default=":9837")
    add("--recompute-minutes", type=float, default=15.0, help="with --serve: recompute interval")


def compute_scorecard(args: argparse.Namespace) -> Scorecard:
    from gpucost.pricing.catalog import shipped_catalog
    from gpucost.promapi import PrometheusClient
    from gpucost.scorecard.combine import ScorecardSettings, score_workloads
    from gpucost.scorecard.gather import GatherSettings, gather_usage
    from gpucost.scorecard.levers import GpuCandidate
    from gpucost.scorecard.prices import candidates_for

    if not 0 <= args.commitment_discount < 1:
        raise UserInputError("--commitment-discount", "", args.commitment_discount, "must be in [0, 1)")
    if args.days <= 0 or args.tile_hours <= 0:
        raise UserInputError("--days", "", args.days, "window and tile must be positive")
    gather = GatherSettings(window_seconds=args.days * 86400, tile_seconds=args.tile_hours * 3600, at=args.at,
                            team=args.team, instance_type=args.instance_type, region=args.region)
    settings = ScorecardSettings(quantization_speedup=args.quantization_speedup,
                                 commitment_discount=args.commitment_discount,
                                 right_size_headroom=args.right_size_headroom)
    table = shipped_catalog().gpu_models

    def candidates(gpu_model: str | None) -> list[GpuCandidate]:
        return candidates_for(gpu_model, table)

    usages = gather_usage(PrometheusClient(args.prometheus, retries=2), gather)
    return score_workloads(usages, candidates, gather.window_seconds, settings)


def _listen_on(address: str) -> tuple[str, int]:
    """`:9837` -> ("0.0.0.0", 9837); a UserInputError naming the flag otherwise."""
    try:
        host, port = parse_listen_address(address)
    except ListenAddressError:
        raise UserInputError("--web.listen-address", "", address, "must be [host]:port, e.g. :9837") from None
    # prometheus_client's server listens on IPv4 here, where "" and 0.0.0.0 are the same.
    return (host or "0.0.0.0", port)


def _serve(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from gpucost.scorecard.collector import Recomputer, ScorecardHolder, build_registry

    holder = ScorecardHolder()
    recomputer = Recomputer(holder, lambda: compute_scorecard(args), args.recompute_minutes * 60)
    host, port = _listen_on(args.listen_address)
    server, _ = start_http_server(port, host, registry=build_registry(holder))
    recomputer.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    recomputer.stop()
    server.shutdown()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        require_extra(REPORT_EXTRA, "the scorecard (Prometheus queries, table, HTML)")
    except MissingExtra as exc:
        return fail(f"gpucost scorecard: {exc.one_line()}")
    if args.serve:
        return _serve(args)
    from gpucost.scorecard.html import write_html_report
    from gpucost.scorecard.render import to_json_document, to_table_text

    try:
        scorecard = compute_scorecard(args)
    except SourceUnavailable as exc:  # PrometheusApiError: down, rejected or malformed
        return fail(f"gpucost scorecard: {exc}")
    if args.format == "json":
        sys.stdout.write(json.dumps(to_json_document(scorecard), indent=2) + "\n")
    elif args.format == "html":
        path = write_html_report(scorecard, Path(args.out))
        sys.stdout.write(f"wrote {path}\n")
    else:
        sys.stdout.write(to_table_text(scorecard))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpucost scorecard")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UserInputError as exc:
        return fail(f"gpucost scorecard: {exc.one_line()}")
