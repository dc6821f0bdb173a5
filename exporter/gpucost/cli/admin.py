"""`gpucost`: the admin command line.

    gpucost validate-config FILE        check an exporter config file without starting
    gpucost price NODE-OR-GPU           show the resolved price and where it came from
    gpucost budgets ...                 the budget sidecar's commands (validate, plan, ...)
    gpucost training-cost --job NS/NAME the cost of a finished Kubernetes Job
    gpucost scorecard --prometheus URL  savings levers per team and model, measured
    gpucost export --prometheus.url URL daily cost rows for finance (Parquet, CSV, BigQuery)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from gpucost import __version__
from gpucost.command_exit import fail
from gpucost.errors import UserInputError
from gpucost.extras import MissingExtra, missing_modules, require_extra

__all__ = ["main"]


def _validate_config(args: argparse.Namespace) -> int:
    from gpucost.config import check_kubeconfig_in_use, load_config_file

    config = load_config_file(args.file)
    check_kubeconfig_in_use(config)
    if config.scenario_file:
        from gpucost.sources.scenario import load_scenario

        load_scenario(config.scenario_file)
    print(f"{args.file}: ok")
    return 0


def _price(args: argparse.Namespace) -> int:
    from gpucost.config import load_config_file, parse_config
    from gpucost.pricing.book import PriceBook

    config = load_config_file(args.config_file) if args.config_file else parse_config({}, "")
    book = PriceBook.from_settings(config.pricing)
    for line in book.explain(args.query):
        print(line)
    return 0


def _budgets(args: argparse.Namespace) -> int:
    return _run_budgets(args.rest)


def _run_budgets(argv: Sequence[str]) -> int:
    from gpucost.budgets.cli import main as budgets_main

    return int(budgets_main(list(argv)))


def _training_cost(args: argparse.Namespace) -> int:
    # Reading Prometheus needs httpx and logging to a run needs mlflow: both come with [mlflow].
    if args.mlflow_run or "httpx" in missing_modules("mlflow"):
        require_extra("mlflow", "the training cost (Prometheus queries, MLflow)")
    from gpucost.instrument.training_cli import run

    return int(run(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpucost", description="gpucost admin commands.")
    parser.add_argument("--version", action="version", version=f"gpucost {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate-config", help="validate an exporter config file")
    validate.add_argument("file")
    validate.set_defaults(handler=_validate_config)

    price = commands.add_parser("price", help="show the resolved price of an instance type or GPU model")
    price.add_argument("query", metavar="NODE-OR-GPU",
                       help="instance type (p4d.24xlarge, optionally @region) or GPU model (A100-80GB)")
    price.add_argument("--config.file", dest="config_file", default="",
                       help="exporter config whose pricing section applies")
    price.set_defaults(handler=_price)

    budgets = commands.add_parser("budgets", help="budget sidecar commands (see gpucost budgets --help)",
                                  add_help=False)
    budgets.add_argument("rest", nargs=argparse.REMAINDER)
    budgets.set_defaults(handler=_budgets)

    # Both modules import their optional libraries only when the command runs.
    from gpucost.instrument.training_cli import add_parser as add_training_parser

    training = add_training_parser(commands)
    training.set_defaults(handler=_training_cost)
    from gpucost.scorecard.cli import add_parser as add_scorecard_parser
    from gpucost.scorecard.cli import run as run_scorecard

    scorecard = add_scorecard_parser(commands)
    scorecard.set_defaults(handler=run_scorecard)
    from gpucost.finance.cli import add_parser as add_export_parser
    from gpucost.finance.cli import run as run_export

    export = add_export_parser(commands)
    export.set_defaults(handler=run_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["budgets"]:
        # Everything after `budgets` belongs to the budgets CLI, `--help` included; argparse's
        # REMAINDER would let the admin parser claim options that come first.
        return _run_budgets(arguments[1:])
    args = build_parser().parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UserInputError as exc:
        return fail(f"gpucost {args.command}: {exc.one_line()}")
    except MissingExtra as exc:
        return fail(f"gpucost {args.command}: {exc.one_line()}")


if __name__ == "__main__":
    sys.exit(main())
