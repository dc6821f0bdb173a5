"""`python -m gpucost_bench [--quick] [--out bench/results] [--only a,b] [--write-docs]`.

Runs from a checkout (`make bench`): the servers are started with
`gpucost_testing.servers` and the rule files come from `rules/`.  The exporter's
RSS/CPU window starts first and runs while the other benchmarks do, so everything
but rules at scale fits in about eight minutes on two cores; rules at scale at the
target size (1,000 nodes x 8 GPUs x 30 days) takes most of an hour there
(`--rules-scale NODESxDAYS` for a smaller fleet).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gpucost_bench.results import machine_info, read_results, write_result

__all__ = ["BENCHMARKS", "main"]

BENCHMARKS = ("accuracy", "live_node", "exporter_k8s_memory", "exporter_cost", "alert_latency", "asgi_overhead",
              "rules_scale")
DOCS_FILE = Path("docs/benchmarks.md")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpucost_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs and windows (about 90 s)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="directory for <name>.json")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--write-docs", action="store_true", help=f"regenerate the figures in {DOCS_FILE}")
    parser.add_argument("--docs-only", action="store_true",
                        help=f"run nothing: regenerate the figures in {DOCS_FILE} from the results in --out")
    parser.add_argument("--rules-scale", type=_size, default=None, metavar="NODESxDAYS",
                        help="fleet size of the rules-at-scale benchmark (default 1000x30, the target; --quick: 10x1)")
    args = parser.parse_args(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.quick and not args.only:
        # Its floor is the alert's `for:` plus a 5-minute rule step: not something a quick run can hold.
        selected.remove("alert_latency")
    args.selected = selected
    return args


def _size(text: str) -> tuple[int, int]:
    nodes, _, days = text.lower().partition("x")
    if not (nodes.isdigit() and days.isdigit() and int(nodes) > 0 and int(days) > 0):
        raise argparse.ArgumentTypeError(f"expected NODESxDAYS such as 100x7, got {text!r}")
    return int(nodes), int(days)


def _asgi(quick: bool) -> dict[str, Any]:
    from gpucost_bench.asgi_overhead import measure_overhead  # imported late: only when selected

    requests = 20_000 if quick else 200_000
    return {"benchmark": "asgi_overhead", **measure_overhead(requests)}


def _live_node(quick: bool) -> dict[str, Any]:
    from gpucost_bench.live_node import run_live_node  # imported late: needs the 'k8s' extra

    return run_live_node(quick)


def _exporter_k8s_memory(workdir: Path, quick: bool) -> dict[str, Any]:
    from gpucost_bench.exporter_k8s_memory import run_exporter_k8s_memory  # imported late: needs the 'k8s' extra

    return run_exporter_k8s_memory(workdir, quick)


def _rules_scale(workdir: Path, quick: bool, size: tuple[int, int] | None) -> dict[str, Any]:
    from gpucost_bench import rules_scale

    target = (int(rules_scale.TARGET_SIZE["nodes"]), int(rules_scale.TARGET_SIZE["days"]))
    nodes, days = size or ((10, 1) if quick else target)
    result: dict[str, Any] = rules_scale.run_rules_scale(workdir, nodes, days)
    return {"benchmark": "rules_scale", "status": "run", **result}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.docs_only:
        return _write_docs(args.out)
    from gpucost_bench import accuracy, alert_latency, exporter_cost  # imported late: after --help

    print(f"machine: {machine_info()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpucost-bench-") as scratch:
        workdir = Path(scratch)
        watch = None
        if "exporter_cost" in args.selected:
            watch = exporter_cost.ExporterWatch(workdir, 60.0 if args.quick else 300.0)
        runs: dict[str, Callable[[], dict[str, Any]]] = {
            "accuracy": lambda: accuracy.run_accuracy(args.quick),
            "live_node": lambda: _live_node(args.quick),
            "exporter_k8s_memory": lambda: _exporter_k8s_memory(workdir, args.quick),
            "exporter_cost": lambda: exporter_cost.run_exporter_cost(workdir, args.quick, watch),
            "alert_latency": lambda: alert_latency.run_alert_latency(workdir, args.quick),
            "asgi_overhead": lambda: _asgi(args.quick),
            "rules_scale": lambda: _rules_scale(workdir / "rules-scale", args.quick, args.rules_scale),
        }
        # exporter_cost last: it waits out the RSS/CPU window the others ran inside.
        order = [name for name in BENCHMARKS if name != "exporter_cost"] + ["exporter_cost"]
        for name in order:
            if name not in args.selected:
                continue
            started = time.monotonic()
            print(f"{name}: running", flush=True)
            result = runs[name]()
            path = write_result(args.out, name, result, args.quick)
            print(f"{name}: {time.monotonic() - started:.1f} s -> {path}", flush=True)
    return _write_docs(args.out) if args.write_docs else 0


def _write_docs(results_dir: Path) -> int:
    from gpucost_bench.report import write_docs

    write_docs(DOCS_FILE, read_results(results_dir))
    print(f"wrote {DOCS_FILE} from {results_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
