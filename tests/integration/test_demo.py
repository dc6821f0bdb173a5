"""`python -m gpucost_demo` end to end: real Prometheus, Alertmanager, exporter and sidecar.

The demo runs as a user would start it; the test reads its plain output
(`--no-live`), waits for the budget messages in the local Slack, stops it with
SIGINT and checks that no child process is left.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gpucost_testing.servers import REPO_ROOT, require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

BUDGET_ALERTS_WITHIN_SECONDS = 180.0
STOP_WITHIN_SECONDS = 15.0


def _processes_mentioning(text: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in listing.splitlines() if text in line and "ps -eo" not in line]


def _start_demo(workdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpucost_demo", "--no-live", "--workdir", str(workdir), *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stop_after_failure(demo: subprocess.Popen[str], workdir: Path) -> None:
    """Stop a demo a failed assertion left running, and its children with it.

    A SIGKILL of the demo alone orphans its exporter, sidecar, Prometheus and Alertmanager,
    which then load every later test: ask it to stop first, then kill whatever still names
    the work dir.
    """
    if demo.poll() is None:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=STOP_WITHIN_SECONDS + 5)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
    for line in _processes_mentioning(str(workdir)):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(line.split(maxsplit=1)[0]), signal.SIGKILL)


def test_demo_shows_team_costs_sends_50_then_80_percent_budget_messages_and_stops_cleanly_on_sigint(
    tmp_path: Path,
) -> None:
    for binary in ("prometheus", "prometheus-alertmanager"):
        require_binary(binary)
    workdir = tmp_path / "demo"
    started = time.monotonic()
    demo = _start_demo(workdir, "--duration", "230", "--interval", "5")
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen_team_cost = False
    message_titles: list[tuple[float, str]] = []
    try:
        while time.monotonic() - started < BUDGET_ALERTS_WITHIN_SECONDS:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                assert demo.poll() is None, "demo exited early:\n" + "".join(output)
                continue
            output.append(line)
            if re.search(r"cost per team \(node time\): research \$[0-9.,]+/h", line):
                seen_team_cost = True
            if "Spend Alert" in line:
                message_titles.append((time.monotonic() - started, line.strip()))
            if line == "---\n" and any("⚠️" in title for _, title in message_titles):
                break  # the whole 80 % message is in
        text = "".join(output)
        assert seen_team_cost, text
        assert [title for _, title in message_titles][:2] == [
            "▌ (green) 📊 research Spend Alert",
            "▌ (amber) ⚠️ research Spend Alert",
        ], text
        assert "gpucost · budget research-monthly · 50% tier" in text
        assert "gpucost · budget research-monthly · 80% tier" in text

        demo.send_signal(signal.SIGINT)
        stop_started = time.monotonic()
        assert demo.wait(timeout=STOP_WITHIN_SECONDS + 5) == 0
        assert time.monotonic() - stop_started < STOP_WITHIN_SECONDS
    finally:
        _stop_after_failure(demo, workdir)
        reader.join(timeout=10)
        assert demo.stdout is not None
        demo.stdout.close()
    # Every child (exporter, sidecar, Prometheus, Alertmanager) names the work dir in its arguments.
    assert _processes_mentioning(str(workdir)) == []
    for log in ("exporter.log", "prometheus.log", "alertmanager.log", "budgets-sidecar.log"):
        assert (workdir / log).exists(), log


def test_a_fixed_port_that_is_taken_is_named_and_exits_2(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = _start_demo(tmp_path / "demo", "--prometheus-port", str(port))
        out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 2, out
    assert f"port {port} (--prometheus-port) is already in use" in out
    assert _processes_mentioning(str(tmp_path / "demo")) == []
