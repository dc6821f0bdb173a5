"""`python -m gpucost.rulegen`: write every generated rule file (rules/*.yaml)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from gpucost.rulegen import RuleOptions, write_rule_files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpucost.rulegen", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("rules"), help="output folder (default: rules/)")
    parser.add_argument(
        "--workload-labels",
        default=",".join(RuleOptions().workload_labels),
        help="comma-separated workload labels of the exporter (must include team and model)",
    )
    for option in dataclasses.fields(RuleOptions):
        if option.name in {"workload_labels"}:
            continue
        default = getattr(RuleOptions(), option.name)
        parser.add_argument(
            "--" + option.name.replace("_", "-"),
            type=type(default),
            default=default,
            help=f"default: {default}",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    out: Path = args.pop("out")
    labels = tuple(label.strip() for label in args.pop("workload_labels").split(",") if label.strip())
    try:
        options = RuleOptions(workload_labels=labels, **args)
    except ValueError as exc:
        print(f"gpucost.rulegen: {exc}", file=sys.stderr)
        return 2
    for path in write_rule_files(options, out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
