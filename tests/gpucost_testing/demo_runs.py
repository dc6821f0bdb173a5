"""`python -m gpucost_demo` as a user starts it, for the demo's end-to-end tests.

`DemoRun` starts the demo with `--no-live` in a work dir of the test's, pumps
its output lines into a queue from a thread (so a test can wait for a line
with a timeout), and `close()` stops it and every child it started even after
a failed assertion: a SIGKILL of the demo alone would orphan its exporter,
sidecar, Prometheus and Alertmanager, which would then load every later test,
so it asks the demo to stop first, then kills whatever still names the work
dir.  `processes_mentioning` is how a test checks that nothing was left.

What the tests read back: `whole_node_beside_gpu` parses the plain line of
whole-node cost per team (each team's whole-node $/h and its GPU $/h), and
`finance_rows` the Parquet files `--finance-out` left.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from gpucost_testing.servers import REPO_ROOT

__all__ = ["STOP_WITHIN_SECONDS", "DemoRun", "finance_rows", "processes_mentioning", "whole_node_beside_gpu"]

STOP_WITHIN_SECONDS = 15.0
_WHOLE_NODE_LINE = re.compile(r"whole-node cost per team \(node time\): (?P<teams>.*\S)")
_TEAM_BESIDE_GPU = re.compile(r"(?P<team>[^,]+?) \$(?P<whole>[0-9.,]+)/h \(GPU \$(?P<gpu>[0-9.,]+)/h\)")


def _dollars(text: str) -> float:
    return float(text.replace(",", ""))


def whole_node_beside_gpu(line: str) -> dict[str, tuple[float, float]]:
    """team -> (whole-node $/h, GPU $/h) from a `--no-live` line; {} for any other line or 'no data yet'."""
    found = _WHOLE_NODE_LINE.search(line)
    if found is None:
        return {}
    return {
        match["team"].strip(): (_dollars(match["whole"]), _dollars(match["gpu"]))
        for match in _TEAM_BESIDE_GPU.finditer(found["teams"])
    }


def finance_rows(directory: Path) -> list[dict[str, object]]:
    """Every row of every Parquet file under `directory` (needs pyarrow, the finance extra)."""
    import pyarrow.parquet as pq

    rows: list[dict[str, object]] = []
    for path in sorted(directory.glob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def processes_mentioning(text: str) -> list[str]:
    """`pid args` of every process whose command line contains `text`."""
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in listing.splitlines() if text in line and "ps -eo" not in line]


class DemoRun:
    """One demo process; `lines` receives its output (stdout and stderr) line by line."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.output: list[str] = []  # what `next_line` has handed out, in order
        self.lines: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gpucost_demo", "--no-live", "--workdir", str(workdir), *args],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def next_line(self, timeout: float = 1.0) -> str | None:
        """The next output line, or None if none came within `timeout` (the demo may have exited)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        self.output.append(line)
        return line

    def rest_of_output(self, timeout: float) -> str:
        """Wait up to `timeout` for the demo to exit, then take every line it wrote; the whole output so far."""
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        while self.next_line(timeout=0) is not None:
            pass
        return self.text

    @property
    def text(self) -> str:
        return "".join(self.output)

    def close(self) -> None:
        """Stop the demo if it still runs, kill any child left, close its output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_WITHIN_SECONDS + 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for line in processes_mentioning(str(self.workdir)):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(line.split(maxsplit=1)[0]), signal.SIGKILL)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()
