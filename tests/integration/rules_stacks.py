"""One rules stack for tests/integration/test_rules_e2e.py and test_rules_victoriametrics.py.

The budget stack of test_rules_e2e.py (simulated exporter, budget sidecar, Prometheus with the
fast rules) alerting a real Alertmanager that posts to a Slack sink, with Prometheus forwarding
the raw scraped series by remote_write to VictoriaMetrics, where vmalert evaluates the same rule
files.  Crossing the budget tiers takes about 100 s of wall time; the two modules used to cross
them once each (about 270 s together), now they share one crossing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gpucost_testing.servers import ManagedProcess, start_victoria_metrics, start_vmalert
from gpucost_testing.slack_sink import SlackSink
from tests.integration.test_rules_e2e import Stack, budget_stack, slack_alertmanager

__all__ = ["RulesStacks", "start_rules_stacks", "start_vm"]


@dataclass(frozen=True)
class RulesStacks:
    stack: Stack
    alertmanager: ManagedProcess
    sink: SlackSink
    vm: ManagedProcess
    vmalert: ManagedProcess


def start_vm(workdir: Path) -> ManagedProcess:
    return start_victoria_metrics(workdir, extra_args=[
        "-search.latencyOffset=1s",
        # The rollup cache serves month-to-date subqueries from before the newest tiles were written,
        # which froze the ratio on a quiet machine; a test wants every query answered from the data.
        "-search.disableCache",
    ])


@contextlib.contextmanager
def start_rules_stacks(workdir: Path) -> Iterator[RulesStacks]:
    alertmanager_dir = workdir / "alertmanager"
    alertmanager_dir.mkdir(parents=True)
    with (
        SlackSink() as sink,
        slack_alertmanager(alertmanager_dir, sink) as alertmanager,
        start_vm(workdir) as vm,
        budget_stack(
            workdir, remote_write_url=vm.base_url + "/api/v1/write", alertmanager_url=alertmanager.base_url
        ) as stack,
        start_vmalert(workdir, vm, stack.rule_files, evaluation_interval="2s",
                      extra_args=["-remoteWrite.flushInterval=1s"]) as vmalert,
    ):
        yield RulesStacks(stack, alertmanager, sink, vm, vmalert)
