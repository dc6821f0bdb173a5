"""`python -m gpucost.dashboards [--out dashboards/] [--rate-window 5m] [--check]`: write or check the JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gpucost.dashboards import DEFAULT_RATE_WINDOW, rendered, write_all
from gpucost.rulegen.options import RuleOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpucost.dashboards", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("dashboards"), help="output folder (default: dashboards/)")
    parser.add_argument(
        "--rate-window",
        default=DEFAULT_RATE_WINDOW,
        help="the rate window the rules were generated with (`python -m gpucost.rulegen --rate-window`); "
        f"the recorded names follow it (default: {DEFAULT_RATE_WINDOW}; the demo's rules use 30s)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a file differs from the generator")
    return parser


def _stale(out: Path, rate_window: str) -> list[Path]:
    return [out / name for name, text in rendered(rate_window).items()
            if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # The rules accept only some windows (dividing the hour, at most 5m); so do the dashboards.
        RuleOptions(rate_window=args.rate_window)
    except ValueError as exc:
        print(f"gpucost.dashboards: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = _stale(args.out, args.rate_window)
        for path in stale:
            print(f"{path} is stale; run `make dashboards`", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(args.out, args.rate_window):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
