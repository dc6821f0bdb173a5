"""`python -m gpucost_demo`: the whole stack on a simulated 8-GPU node, one command.

The exporter attributes through a fake kubelet (pod-resources gRPC on a unix
socket) and a fake Kubernetes API server, both driven by the demo scenario, as
it would in a cluster; `--no-kubernetes` runs it on the scenario directly.

Ctrl-C or SIGTERM stops every server and exits 0; a port the user asked for that
is taken is one line and exit code 2; a server that fails to start or dies is
reported with its log tail and exit code 1.

`--finance-out DIR` writes, when the demo stops, today's finance rows so far as
Parquet into DIR (`finance_out`: a partial UTC day, to the last complete minute).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from gpucost.errors import GpucostError
from gpucost_demo.finance_out import FINANCE_FLAG, prepare_out_dir, write_partial_day
from gpucost_demo.stack import DEMO_RULE_OPTIONS, DemoPorts, DemoStack, StackSettings, default_repo_dir
from gpucost_demo.summary import read_summary, render_lines, render_table
from gpucost_testing.processes import PortInUse, StartupFailed, reserve_port
from gpucost_testing.slack_sink import SlackRequest, render_slack_message

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gpucost_demo",
        description="Run gpucost end to end on 127.0.0.1: a simulated 8-GPU node with a fake kubelet and "
        "Kubernetes API server, the exporter attributing through them, Prometheus with all rules, the budget "
        "sidecar, Alertmanager and a local Slack that prints each message.",
    )
    add = parser.add_argument
    add("--duration", type=float, default=0.0, help="stop after this many seconds (default: until Ctrl-C)")
    add("--no-live", dest="live", action="store_false",
        help="print plain periodic lines instead of the live view (for logs and CI)")
    add("--interval", type=float, default=10.0, help="seconds between plain summaries with --no-live")
    add("--scale", action="store_true",
        help="also remote-write to VictoriaMetrics and evaluate the same rules there with vmalert")
    add("--no-kubernetes", dest="kubernetes", action="store_false",
        help="no fake kubelet or API server: the exporter reads the pods from the scenario directly")
    add("--speed", type=float, default=120.0, help="scenario seconds per wall second (default 120: a day in 12 min)")
    add(FINANCE_FLAG, dest="finance_out", type=Path, default=None, metavar="DIR",
        help="when the demo stops, write today's finance rows so far (UTC midnight to the last complete minute) "
        "as Parquet into DIR, the columns `gpucost export` writes")
    add("--workdir", type=Path, default=None, help="configs, logs and data (default: a temp dir removed at exit)")
    add("--repo-dir", type=Path, default=None,
        help="gpucost checkout holding rules/ and alertmanager/templates/ (default: the one this package is in)")
    add("--rules-dir", type=Path, default=None, help="rules folder (default: <repo>/rules)")
    for name in ("exporter", "prometheus", "alertmanager", "budgets", "victoria-metrics", "vmalert"):
        add(f"--{name}-port", type=int, default=0, help=f"fixed port for {name} (default: any free port)")
    return parser


def _ports(args: argparse.Namespace) -> DemoPorts:
    def pick(name: str) -> int:
        return reserve_port(f"--{name}-port", int(getattr(args, name.replace("-", "_") + "_port")))

    return DemoPorts(
        exporter=pick("exporter"),
        prometheus=pick("prometheus"),
        alertmanager=pick("alertmanager"),
        budgets=pick("budgets"),
        victoria_metrics=pick("victoria-metrics") if args.scale else 0,
        vmalert=pick("vmalert") if args.scale else 0,
    )


def _settings(args: argparse.Namespace, workdir: Path) -> StackSettings:
    repo = args.repo_dir or default_repo_dir()
    rules_dir = args.rules_dir or repo / "rules"
    templates_dir = repo / "alertmanager" / "templates"
    for path, flag in ((rules_dir, "--rules-dir"), (templates_dir, "--repo-dir")):
        if not path.is_dir():
            raise StartupFailed(f"{path} not found; pass {flag} pointing into a gpucost checkout")
    return StackSettings(workdir=workdir, rules_dir=rules_dir, templates_dir=templates_dir,
                         speed=args.speed, scale=args.scale, kubernetes=args.kubernetes)


def _links(stack: DemoStack) -> list[str]:
    lines = [
        f"Prometheus    {stack.child('prometheus').url}/graph  (try team:gpucost_cost_usd_per_hour:"
        f"rate{DEMO_RULE_OPTIONS.rate_window})",
        f"Alertmanager  {stack.child('alertmanager').url}/#/alerts",
        f"exporter      {stack.child('exporter').url}/metrics",
        f"budgets       {stack.child('budgets-sidecar').url}/metrics",
        f"Slack (local) {stack.slack.url}  (messages are printed here)",
    ]
    if stack.harness is not None:
        lines += [
            f"kubelet (fake)    unix://{stack.harness.kubelet.socket_path}  (pod-resources gRPC)",
            f"kubelet (fake)    {stack.harness.kubelet_resource.url}/metrics/resource  (CPU and memory usage, "
            "HTTPS with a token)",
            f"API server (fake) {stack.harness.apiserver.url}  (kubeconfig {stack.harness.kubeconfig_path})",
        ]
    if stack.settings.scale:
        lines += [
            f"VictoriaMetrics {stack.child('victoria-metrics').url}/vmui",
            f"vmalert         {stack.child('vmalert').url}/vmalert/groups",
        ]
    return lines


def _slack_text(request: SlackRequest) -> str:
    return render_slack_message(request)


def _run(stack: DemoStack, args: argparse.Namespace, stopping: threading.Event, console: Console) -> int:
    speed = stack.settings.speed
    rate_suffix = f"rate{DEMO_RULE_OPTIONS.rate_window}"
    started = time.monotonic()
    shown_messages = 0
    next_summary = 0.0

    def new_messages() -> list[SlackRequest]:
        nonlocal shown_messages
        delivered = stack.slack.messages()
        fresh = delivered[shown_messages:]
        shown_messages = len(delivered)
        return fresh

    def check_children() -> None:
        dead = stack.exited()
        if dead is not None:
            raise StartupFailed(f"{dead.name} exited unexpectedly; its log ({dead.log_path}):\n{dead.log_tail()}")

    def header() -> str:
        elapsed = time.monotonic() - started
        scenario_hours = elapsed * speed / 3600
        vmalert = ""
        if stack.settings.scale:
            firing = stack.vmalert_alerts.firing()
            vmalert = f" | vmalert firing: {len(firing)}"
        return (f"gpucost demo: {elapsed:4.0f}s wall = {scenario_hours:4.1f} h on the node (x{speed:g}) | "
                f"Prometheus {stack.child('prometheus').url} | Alertmanager {stack.child('alertmanager').url}"
                f"{vmalert} | Ctrl-C stops")

    if not args.live:
        while not stopping.is_set():
            check_children()
            for message in new_messages():
                print(f"--- Slack message ({message.channel}) ---\n{_slack_text(message)}\n---", flush=True)
            elapsed = time.monotonic() - started
            if elapsed >= next_summary:
                summary = read_summary(stack.prometheus_url, rate_suffix)
                print("\n".join(render_lines(summary, elapsed, speed)), flush=True)
                next_summary = elapsed + args.interval
            if args.duration and elapsed >= args.duration:
                break
            stopping.wait(0.5)
        return 0

    summary = read_summary(stack.prometheus_url, rate_suffix)
    with Live(render_table(summary, header(), speed), console=console, refresh_per_second=2,
              transient=False) as live:
        while not stopping.is_set():
            check_children()
            for message in new_messages():
                live.console.print(Panel(Text(_slack_text(message)), title=f"Slack · {message.channel}",
                                         title_align="left", expand=False))
            elapsed = time.monotonic() - started
            if elapsed >= next_summary:
                summary = read_summary(stack.prometheus_url, rate_suffix)
                next_summary = elapsed + 2.0
            live.update(render_table(summary, header(), speed))
            if args.duration and elapsed >= args.duration:
                break
            stopping.wait(0.5)
    return 0


def _write_finance(stack: DemoStack, out: Path) -> int:
    """Today's rows so far, while Prometheus still runs; 1 when they could not be written."""
    try:
        written = write_partial_day(stack.prometheus_url, DEMO_RULE_OPTIONS.rate_window, out, dt.datetime.now(dt.UTC))
    except GpucostError as err:  # Prometheus unreadable (PrometheusApiError) or the directory unwritable
        print(f"gpucost-demo: finance rows not written: {err}", file=sys.stderr)
        return 1
    print(f"gpucost demo: {written.summary()} (demo dollars: the node runs x{stack.settings.speed:g})", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    if args.live and not console.is_terminal:
        args.live = False
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    owned_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="gpucost-demo-")) if owned_workdir else args.workdir
    stack: DemoStack | None = None
    code = 0
    try:
        finance_out = prepare_out_dir(args.finance_out) if args.finance_out is not None else None
    except GpucostError as err:
        print(f"gpucost-demo: {err}", file=sys.stderr)
        return 2
    try:
        ports = _ports(args)
        stack = DemoStack(_settings(args, workdir), ports)
        print(f"gpucost demo: starting in {workdir} (logs: *.log there)", flush=True)
        stack.start()
        print("\n".join(["gpucost demo: all up", *("  " + line for line in _links(stack))]), flush=True)
        if not stopping.is_set():
            code = _run(stack, args, stopping, console)
            if finance_out is not None:
                code = code or _write_finance(stack, finance_out)
    except PortInUse as err:
        print(f"gpucost-demo: {err}", file=sys.stderr)
        code = 2
    except StartupFailed as err:
        print(f"gpucost-demo: {err}", file=sys.stderr)
        code = 1
    finally:
        # A second Ctrl-C while stopping must not leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if stack is not None:
            print("gpucost demo: stopping", flush=True)
            stack.stop()
            print("gpucost demo: stopped", flush=True)
        if owned_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return code
