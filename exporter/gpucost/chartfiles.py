"""Copy the rule files, dashboards and Alertmanager templates into the Helm chart.

The chart reads them from `helm/gpucost/files/` with `.Files`.  They are real copies, not
links out of the chart: helm warns about links on every command, and a packaged, copied or
Windows-checked-out chart would lose them.  `make rules`, `make dashboards` and
`make alertmanager-config` run `python -m gpucost.chartfiles` after regenerating the
sources; `--check` exits 1 when a copy is stale (tests/unit/test_chart_files.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CHART_FILES_DIR", "chart_copies", "main", "stale_copies", "sync_chart_files"]

CHART_FILES_DIR = Path("helm/gpucost/files")

# (source folder, glob, folder under files/): only what a template reads.  The promtool tests
# under rules/tests/ and the generated alertmanager*.yml are not shipped.
_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("rules", "*.yaml", "rules"),
    ("dashboards", "*.json", "dashboards"),
    ("alertmanager/templates", "*.tmpl", "alertmanager/templates"),
)


def chart_copies(repo: Path) -> dict[Path, Path]:
    """Every copy the chart should hold, mapped to its source."""
    copies: dict[Path, Path] = {}
    for source_dir, pattern, target_dir in _SOURCES:
        for source in sorted((repo / source_dir).glob(pattern)):
            if source.is_file():
                copies[repo / CHART_FILES_DIR / target_dir / source.name] = source
    return copies


def _shipped(repo: Path) -> set[Path]:
    files = repo / CHART_FILES_DIR
    return {path for path in files.rglob("*") if path.is_file() or path.is_symlink()} if files.exists() else set()


def stale_copies(repo: Path) -> list[Path]:
    """Copies that are missing, differ from their source, or have no source any more."""
    copies = chart_copies(repo)
    stale = [copy for copy, source in copies.items()
             if copy.is_symlink() or not copy.is_file() or copy.read_bytes() != source.read_bytes()]
    stale += sorted(_shipped(repo) - set(copies))
    return stale


def sync_chart_files(repo: Path) -> list[Path]:
    """Write every copy (bytes as in the source) and remove copies whose source is gone."""
    copies = chart_copies(repo)
    for orphan in _shipped(repo) - set(copies):
        orphan.unlink()
    for copy, source in copies.items():
        copy.parent.mkdir(parents=True, exist_ok=True)
        if copy.is_symlink():
            copy.unlink()
        copy.write_bytes(source.read_bytes())
    return sorted(copies)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpucost.chartfiles", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository root (default: .)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a copy is stale; write nothing")
    args = parser.parse_args(argv)
    repo: Path = args.repo
    if args.check:
        stale = stale_copies(repo)
        for path in stale:
            print(f"stale chart copy: {path}", file=sys.stderr)
        return 1 if stale else 0
    for path in sync_chart_files(repo):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
