"""Run `python -m gpucost_bench --quick` from this checkout, as `make bench BENCH_ARGS=--quick` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gpucost_testing.servers import REPO_ROOT

__all__ = ["run_quick_bench"]


def run_quick_bench(only: str, out: Path, timeout_seconds: float = 170) -> None:
    """Run the named benchmarks (`--only`, comma-separated) in quick mode, writing their results to `out`."""
    run = subprocess.run(
        [sys.executable, "-m", "gpucost_bench", "--quick", "--only", only, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_seconds,
    )
    assert run.returncode == 0, run.stdout + run.stderr
