"""The demo without Kubernetes (`--no-kubernetes`): whole-node cost beside GPU cost, today's rows as Parquet.

The exporter reads the scenario directly, with the demo's exporter.yaml (the
GPUs are 80 % of the node price), so CPU and memory cost something; the demo
runs for its `--duration`, exits 0 on its own and, on the way out, writes
today's finance rows so far into the `--finance-out` directory.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from gpucost_demo.summary import Summary, render_table
from gpucost_testing.demo_runs import DemoRun, finance_rows, processes_mentioning, whole_node_beside_gpu
from gpucost_testing.servers import require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

# The recorded 30 s rates need a few scrapes and rule evaluations; 75 s also holds a whole minute mark
# after the first value, which is what today's rows so far are read at.
DURATION_SECONDS = 75
EXIT_WITHIN_SECONDS = DURATION_SECONDS + 120.0


def test_without_kubernetes_the_demo_shows_whole_node_cost_per_team_and_writes_todays_rows(tmp_path: Path) -> None:
    for binary in ("prometheus", "prometheus-alertmanager"):
        require_binary(binary)
    workdir, finance = tmp_path / "demo", tmp_path / "finance"
    demo = DemoRun(workdir, "--no-kubernetes", "--duration", str(DURATION_SECONDS), "--interval", "10",
                   "--finance-out", str(finance))
    try:
        text = demo.rest_of_output(timeout=EXIT_WITHIN_SECONDS)
    finally:
        demo.close()
    assert demo.process.returncode == 0, text
    assert processes_mentioning(str(workdir)) == []
    readings = [reading for line in text.splitlines() if (reading := whole_node_beside_gpu(line))]
    assert readings, text
    for team in ("research", "search", "assistants"):
        whole_node, gpu = readings[-1][team]
        assert whole_node > gpu > 0, (team, text)
    assert re.search(r"whole-node cost per model: research/llama-70b \$[0-9.,]+/h", text), text
    assert re.search(r"node unallocated by resource: cpu \$[0-9.,]+/h, gpu \$[0-9.,]+/h, memory", text), text

    rows = finance_rows(finance)
    written = re.search(r"finance rows: partial day: (\S+) 00:00-\d\d:\d\d UTC .*: (\d+) rows, \$[0-9.,]+ -> (\S+)",
                        text)
    assert written is not None, text
    day, count, path = written.groups()
    assert Path(path) == finance / f"gpucost-cost-{day}.parquet"
    assert int(count) == len(rows)
    assert {"gpu", "cpu", "memory"} <= {row["x_Resource"] for row in rows}
    assert {row["x_Team"] for row in rows} >= {"research", "search", "assistants"}
    assert sum(float(str(row["EffectiveCost"])) for row in rows) > 0


def test_a_finance_out_that_cannot_be_a_directory_is_named_and_exits_2(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a directory\n")
    demo = DemoRun(tmp_path / "demo", "--no-kubernetes", "--finance-out", str(taken / "finance"))
    try:
        out = demo.rest_of_output(timeout=60)
    finally:
        demo.close()
    assert demo.process.returncode == 2, out
    assert out.strip().splitlines() == [
        f"gpucost-demo: --finance-out: cannot be created (Not a directory) (got '{taken / 'finance'}')"
    ]
    assert "Traceback" not in out


def test_the_live_view_shows_whole_node_cost_in_a_column_beside_gpu_cost() -> None:
    summary = Summary(
        team_usd_per_hour={"research": 2400.0, "search": 600.0},
        model_usd_per_hour={("research", "llama-70b"): 2000.0, ("search", "ranker"): 600.0},
        team_whole_node_usd_per_hour={"research": 3000.0},  # search's whole-node series has no value yet
        model_whole_node_usd_per_hour={("research", "llama-70b"): 2500.0},
        unallocated_by_resource={"cpu": 60.0, "gpu": 120.0},
    )
    console = Console(width=160, record=True)
    console.print(render_table(summary, "header", 120.0))
    text = console.export_text()
    assert re.search(r"team +┃ model +┃ GPU \$/h ┃ whole node \$/h ┃ GPU \$/h recorded \(x120\)", text), text
    assert re.search(r"research +│ +│ +\$20\.00 │ +\$25\.00 │ +\$2,400\.00", text), text
    assert re.search(r"│ llama-70b +│ +\$16\.67 │ +\$20\.83 │", text), text
    assert re.search(r"search +│ +│ +\$5\.00 │ +- │", text), text
    assert "Node unallocated by resource: cpu $0.50/h, gpu $1.00/h" in text
