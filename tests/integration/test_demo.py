"""`python -m gpucost_demo` end to end: real Prometheus, Alertmanager, exporter and sidecar.

The demo runs as a user would start it; the test reads its plain output
(`--no-live`), waits for the budget messages in the local Slack and for
whole-node cost per team beside GPU cost, stops it with SIGINT, checks that no
child process is left and reads the Parquet rows `--finance-out` wrote.
Without Kubernetes: tests/integration/test_demo_whole_node.py.
"""

from __future__ import annotations

import re
import signal
import socket
import time
from pathlib import Path

import pytest

from gpucost_testing.demo_runs import (
    STOP_WITHIN_SECONDS,
    DemoRun,
    finance_rows,
    processes_mentioning,
    whole_node_beside_gpu,
)
from gpucost_testing.servers import require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

BUDGET_ALERTS_WITHIN_SECONDS = 180.0


def test_demo_shows_team_costs_sends_50_then_80_percent_budget_messages_and_stops_cleanly_on_sigint(
    tmp_path: Path,
) -> None:
    for binary in ("prometheus", "prometheus-alertmanager"):
        require_binary(binary)
    workdir = tmp_path / "demo"
    started = time.monotonic()
    demo = DemoRun(workdir, "--duration", "230", "--interval", "5", "--finance-out", str(tmp_path / "finance"))
    seen_team_cost = False
    whole_node: dict[str, tuple[float, float]] = {}
    message_titles: list[tuple[float, str]] = []
    try:
        while time.monotonic() - started < BUDGET_ALERTS_WITHIN_SECONDS:
            line = demo.next_line()
            if line is None:
                assert demo.process.poll() is None, "demo exited early:\n" + demo.text
                continue
            if re.search(r"^\[ *[0-9]+s\] cost per team \(node time\): research \$[0-9.,]+/h", line):
                seen_team_cost = True
            whole_node = whole_node_beside_gpu(line) or whole_node
            if "Spend Alert" in line:
                message_titles.append((time.monotonic() - started, line.strip()))
            if line == "---\n" and any("⚠️" in title for _, title in message_titles):
                break  # the whole 80 % message is in
        text = demo.text
        assert seen_team_cost, text
        # Through the fake kubelet's /metrics/resource and the API server's requests: CPU and memory cost too.
        research_whole_node, research_gpu = whole_node["research"]
        assert research_whole_node > research_gpu > 0, text
        assert [title for _, title in message_titles][:2] == [
            "▌ (green) 📊 research Spend Alert",
            "▌ (amber) ⚠️ research Spend Alert",
        ], text
        assert "gpucost · budget research-monthly · 50% tier" in text
        assert "gpucost · budget research-monthly · 80% tier" in text

        demo.process.send_signal(signal.SIGINT)
        stop_started = time.monotonic()
        text = demo.rest_of_output(timeout=STOP_WITHIN_SECONDS + 5)
        assert demo.process.returncode == 0, text
        assert time.monotonic() - stop_started < STOP_WITHIN_SECONDS
    finally:
        demo.close()
    # Every child (exporter, sidecar, Prometheus, Alertmanager) names the work dir in its arguments.
    assert processes_mentioning(str(workdir)) == []
    for log in ("exporter.log", "prometheus.log", "alertmanager.log", "budgets-sidecar.log"):
        assert (workdir / log).exists(), log
    rows = finance_rows(tmp_path / "finance")
    assert re.search(rf"finance rows: partial day: .* {len(rows)} rows, \$[0-9.,]+ -> ", text), text
    assert {"gpu", "cpu", "memory"} <= {row["x_Resource"] for row in rows}
    assert sum(float(str(row["EffectiveCost"])) for row in rows) > 0


def test_a_fixed_port_that_is_taken_is_named_and_exits_2(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = DemoRun(tmp_path / "demo", "--prometheus-port", str(port))
        try:
            out = demo.rest_of_output(timeout=60)
        finally:
            demo.close()
    assert demo.process.returncode == 2, out
    assert f"port {port} (--prometheus-port) is already in use" in out
    assert processes_mentioning(str(tmp_path / "demo")) == []
