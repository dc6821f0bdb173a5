"""`python -m gpucost.dashboards [--out dashboards/] [--check]`: write or check dashboards/*.json."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gpucost.dashboards import rendered, write_all


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpucost.dashboards", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("dashboards"), help="output folder (default: dashboards/)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file differs from the generator")
    args = parser.parse_args(argv)
    if args.check:
        stale = [name for name, text in rendered().items()
                 if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != text]
        for name in stale:
            print(f"{args.out / name} is stale; run `make dashboards`", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
