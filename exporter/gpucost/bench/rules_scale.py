"""Rule evaluation time at fleet scale: synthetic exporter history backfilled into a real Prometheus.

`run_rules_scale(workdir, nodes, days)` writes OpenMetrics for `nodes` nodes x 8 GPUs over
`days` days (streamed to disk in chunks), backfills it with `promtool tsdb create-blocks-from
openmetrics`, starts Prometheus on that TSDB with every `rules/*.yaml` file, waits until each
rule group has evaluated twice and reports each group's evaluation time, the input size and
the recorded series per name.

What the rules read decides what is written at full resolution.  The longest raw range in
the rules is `[1d]` (inference rules), so the last `RAW_LOOKBACK_SECONDS` are written every
`step_seconds`; older raw history is written every `history_step_seconds`: it still puts
every churned pod's series into the blocks' index, but no rule reads its samples at the
evaluation time.  The recorded series that rules read over 7 to 31 days (hourly spend tiles,
team/model rates, pod cost) are backfilled too, so the long subqueries cost what they cost
in a Prometheus that has run for `days` days.

Full size (the docs' target): `python -m gpucost.bench.rules_scale --nodes 1000 --days 30`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Lock, Thread
from typing import IO, Any

import yaml

__all__ = ["RAW_LOOKBACK_SECONDS", "SyntheticFleet", "run_rules_scale"]

REPO_ROOT = Path(__file__).resolve().parents[3]
RULES_DIR = REPO_ROOT / "rules"
GPUS_PER_NODE = 8
# GPUs per pod slot on a node: two single-GPU pods, one 2-GPU pod, one 4-GPU pod.
SLOT_SIZES = (1, 1, 2, 4)
NODE_POOLS = (("h100-pool", "NVIDIA H100 80GB HBM3", 4.10), ("a100-pool", "NVIDIA A100-SXM4-80GB", 2.90),
              ("l4-pool", "NVIDIA L4", 0.80))
TEAMS = ("research", "search", "ads", "vision", "speech", "recsys", "nlp", "platform", "fraud", "maps",
         "robotics", "health")
JOB_KINDS = ("Job", "PyTorchJob", "Deployment")
# Longest raw-series range the rules read (`increase(...[1d])` in the inference rules) plus margin.
RAW_LOOKBACK_SECONDS = 25 * 3600
TARGET_GROUP_SECONDS = 2.0
TARGET_SIZE = {"nodes": 1000, "gpus_per_node": GPUS_PER_NODE, "days": 30}
FLUSH_LINES = 200_000
WORKLOADS_PER_NODE = 4


def _hash(*parts: object) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


@dataclass(frozen=True, slots=True)
class Workload:
    namespace: str
    team: str
    model: str
    model_version: str
    cost_center: str
    business_unit: str
    owner_kind: str

    def labels(self) -> str:
        """The workload labels the exporter adds (namespace is one of the series' own labels)."""
        return (f'team="{self.team}",model="{self.model}",'
                f'model_version="{self.model_version}",cost_center="{self.cost_center}",'
                f'business_unit="{self.business_unit}"')


def workload_catalog() -> tuple[Workload, ...]:
    """12 teams x 2 namespaces x 3 models, plus one workload nobody labelled (team="")."""
    workloads = []
    for t, team in enumerate(TEAMS):
        for n in range(2):
            for m in range(3):
                workloads.append(Workload(
                    namespace=f"{team}-{('train', 'serve')[n]}", team=team, model=f"{team}-model-{m}",
                    model_version=f"v{1 + (t + m) % 3}", cost_center=f"cc-{100 + t}",
                    business_unit=("consumer", "enterprise", "infra")[t % 3],
                    owner_kind=JOB_KINDS[(n * 3 + m) % len(JOB_KINDS)] if n == 0 else "Deployment"))
    workloads.append(Workload("default", "", "unknown", "", "", "", "Pod"))
    return tuple(workloads)


@dataclass(frozen=True, slots=True)
class Pod:
    name: str
    workload: int
    owner_kind: str
    owner_name: str
    started: int
    utilization: float


class SyntheticFleet:
    """Deterministic fleet: every slot runs a pod for `pod_lifetime_seconds`, then a new one replaces it.

    About one generation in ten leaves the slot empty (unallocated).  Counters are exact
    closed forms or integrals over the written steps, so the file is what an exporter that
    never restarted would have exposed.
    """

    def __init__(self, nodes: int, start: int, pod_lifetime_seconds: int) -> None:
        self.nodes = nodes
        self.start = start
        self.lifetime = pod_lifetime_seconds
        self.workloads = workload_catalog()
        self.phase = [[_hash("phase", n, s) % pod_lifetime_seconds for s in range(len(SLOT_SIZES))]
                      for n in range(nodes)]
        self.node_name = [f"gpu-node-{n:04d}" for n in range(nodes)]
        self.pool = [NODE_POOLS[n % len(NODE_POOLS)] for n in range(nodes)]
        self.uuid = [[f"GPU-{_hash('uuid', n, g):08x}-{n:04x}-{g:04x}" for g in range(GPUS_PER_NODE)]
                     for n in range(nodes)]
        self.target = [f'job="gpucost",instance="{self.node_name[n]}:9400",node="{self.node_name[n]}",'
                       f'node_pool="{self.pool[n][0]}"' for n in range(nodes)]

    def slot_gpus(self, slot: int) -> range:
        first = sum(SLOT_SIZES[:slot])
        return range(first, first + SLOT_SIZES[slot])

    def pod_at(self, node: int, slot: int, t: int) -> Pod | None:
        generation = (t - self.start + self.phase[node][slot]) // self.lifetime
        h = _hash("pod", node, slot, generation)
        if h % 10 == 0:
            return None
        # A node serves a few workloads (its team's pools), so per-node workload counters stay few.
        index = (node * 3 + (h >> 8) % WORKLOADS_PER_NODE) % len(self.workloads)
        workload = self.workloads[index]
        started = max(self.start, self.start + generation * self.lifetime - self.phase[node][slot])
        if workload.owner_kind == "Deployment":
            owner = f"{workload.model}-serve"
        elif workload.owner_kind == "Pod":
            owner = f"scratch-{h % 100_000:05d}"
        else:
            owner = f"{workload.model}-run-{h % 100_000:05d}"
        name = owner if workload.owner_kind == "Pod" else f"{owner}-{h % 0xFFFFF:05x}"
        return Pod(name, index, workload.owner_kind, owner, started, 0.15 + (h % 80) / 100)


def _fmt(value: float) -> str:
    return f"{value:.6f}"


class OpenMetricsWriter:
    """Buffers lines and flushes them in chunks, so memory stays flat whatever the size."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.buffer: list[str] = []
        self.lines = 0

    def add(self, line: str) -> None:
        self.buffer.append(line)
        if len(self.buffer) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        self.out.write("".join(self.buffer))
        self.lines += len(self.buffer)
        self.buffer.clear()


@dataclass
class FleetCounters:
    """What the exporters would carry from one sample to the next: integrated counters, series seen."""

    unallocated: list[list[float]]
    workload_cost: list[dict[tuple[int, str], float]]
    series: set[str]
    pods: set[str]
    previous_raw: int | None = None

    @classmethod
    def empty(cls, nodes: int) -> FleetCounters:
        return cls([[0.0] * GPUS_PER_NODE for _ in range(nodes)], [{} for _ in range(nodes)], set(), set())


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)


class LiveExposition:
    """Serves the fleet at request time (OpenMetrics), continuing the backfilled counters: the scrape after backfill."""

    def __init__(self, fleet: SyntheticFleet, counters: FleetCounters) -> None:
        lock = Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    t = int(time.time())
                    dt = 0 if counters.previous_raw is None else max(0, t - counters.previous_raw)
                    counters.previous_raw = t
                    lines = _Lines()
                    _write_raw_step(lines, fleet, t, dt, False, counters)
                body = ("".join(lines.lines) + "# EOF\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_openmetrics(
    path: Path,
    fleet: SyntheticFleet,
    end: int,
    step: int,
    history_step: int,
    counters: FleetCounters,
) -> dict[str, Any]:
    """Write the fleet's series from `fleet.start` to `end` (time-major, as promtool needs per series)."""
    raw_full_from = end - RAW_LOOKBACK_SECONDS
    catalog = fleet.workloads
    # Recorded history: a steady rate per combination, from the fleet's size (values do not change the cost).
    fleet_usd_per_hour = sum(p[2] for p in fleet.pool) * GPUS_PER_NODE * 0.9
    combos = sorted({(w.namespace, w.team, w.model) for w in catalog})
    team_models = sorted({(w.team, w.model) for w in catalog})
    recorded_lines = 0
    with path.open("w", encoding="utf-8") as handle:
        out = OpenMetricsWriter(handle)
        for t in range(fleet.start, end + 1, step):
            raw = t >= raw_full_from or (t - fleet.start) % history_step == 0 or t == end
            if raw:
                dt = 0 if counters.previous_raw is None else t - counters.previous_raw
                counters.previous_raw = t
                _write_raw_step(out, fleet, t, dt, t >= raw_full_from, counters)
            for ns, team, model in combos:
                rate = fleet_usd_per_hour / len(combos)
                labels = f'namespace="{ns}",team="{team}",model="{model}"'
                out.add(f"namespace_team_model:gpucost_cost_usd_per_hour:rate5m{{{labels}}} {_fmt(rate)} {t}\n")
                out.add(f"namespace_team_model:gpucost_spend_usd:increase1h{{{labels}}} {_fmt(rate)} {t}\n")
            for team, model in team_models:
                rate = fleet_usd_per_hour / len(team_models)
                out.add(f'team_model:gpucost_cost_usd_per_hour:rate5m{{team="{team}",model="{model}"}} '
                        f"{_fmt(rate)} {t}\n")
            recorded_lines += 2 * len(combos) + len(team_models)
        out.add("# EOF\n")
        out.flush()
    return {"lines": out.lines, "input_series": len(counters.series), "distinct_pods": len(counters.pods),
            "recorded_history_samples": recorded_lines, "file_bytes": path.stat().st_size}


def _write_raw_step(
    out: OpenMetricsWriter | _Lines,
    fleet: SyntheticFleet,
    t: int,
    dt: int,
    with_pod_cost_history: bool,
    counters: FleetCounters,
) -> None:
    unallocated, workload_cost = counters.unallocated, counters.workload_cost
    series, pods = counters.series, counters.pods
    catalog = fleet.workloads
    elapsed = t - fleet.start
    for n in range(fleet.nodes):
        target = fleet.target[n]
        _, gpu_model, price = fleet.pool[n]
        uuids = fleet.uuid[n]
        gpu_cost = _fmt(price * elapsed / 3600)
        for slot in range(len(SLOT_SIZES)):
            pod = fleet.pod_at(n, slot, t)
            gpus = fleet.slot_gpus(slot)
            if pod is None:
                for g in gpus:
                    unallocated[n][g] += price * dt / 3600
                utilization = 0.0
            else:
                utilization = pod.utilization
                workload = catalog[pod.workload]
                pods.add(f"{workload.namespace}/{pod.name}")
                age = t - pod.started
                wl = workload.labels()
                pod_labels = f'{target},namespace="{workload.namespace}",pod="{pod.name}"'
                owner = f'owner_kind="{pod.owner_kind}",owner_name="{pod.owner_name}"'
                key = f"gpucost_pod_owner_info{{{pod_labels},{owner}}}"
                series.add(key)
                out.add(f"{key} 1 {t}\n")
                for g in gpus:
                    base = f'{pod_labels},container="main",uuid="{uuids[g]}"'
                    for component, share in (("active", utilization), ("idle", 1 - utilization)):
                        key = f'gpucost_container_gpu_cost_usd_total{{{base},component="{component}",{wl}}}'
                        series.add(key)
                        out.add(f"{key} {_fmt(price * share * age / 3600)} {t}\n")
                    key = f"gpucost_container_gpu_seconds_total{{{base},{wl}}}"
                    series.add(key)
                    out.add(f"{key} {age} {t}\n")
                for component, share in (("active", utilization), ("idle", 1 - utilization)):
                    cost_key = (pod.workload, component)
                    workload_cost[n][cost_key] = workload_cost[n].get(cost_key, 0.0) + (
                        price * share * len(gpus) * dt / 3600)
                if with_pod_cost_history:
                    out.add(f'pod_owner:gpucost_cost_usd:sum{{namespace="{workload.namespace}",pod="{pod.name}",'
                            f'team="{workload.team}",model="{workload.model}",owner_kind="{pod.owner_kind}",'
                            f'owner_name="{pod.owner_name}"}} {_fmt(price * len(gpus) * age / 3600)} {t}\n')
            for g in gpus:
                gpu = f'{target},uuid="{uuids[g]}"'
                for key, value in (
                    (f"gpucost_gpu_cost_usd_total{{{gpu}}}", gpu_cost),
                    (f"gpucost_gpu_unallocated_cost_usd_total{{{gpu}}}", _fmt(unallocated[n][g])),
                    (f"gpucost_gpu_utilization_ratio{{{gpu}}}", _fmt(utilization)),
                    (f'gpucost_gpu_info{{{gpu},gpu="{g}",gpu_model="{gpu_model}",parent_uuid="",mig_profile=""}}',
                     "1"),
                ):
                    series.add(key)
                    out.add(f"{key} {value} {t}\n")
        for (index, component), spent in workload_cost[n].items():
            key = (f'gpucost_workload_gpu_cost_usd_total{{{target},component="{component}",'
                   f'namespace="{catalog[index].namespace}",{catalog[index].labels()}}}')
            series.add(key)
            out.add(f"{key} {_fmt(spent)} {t}\n")
    for team in TEAMS:
        budget = f'gpucost_budget_usd{{job="gpucost-budgets",budget="{team}-monthly",team="{team}"}}'
        series.add(budget)
        out.add(f"{budget} 50000 {t}\n")


def _backfill(openmetrics: Path, data_dir: Path, days: int) -> float:
    started = time.monotonic()
    # One block window per pass over the file: a block as long as the data keeps it to one or two passes.
    max_block = f"{max(2, (days + 31) * 24)}h"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", f"--max-block-duration={max_block}",
         str(openmetrics), str(data_dir)],
        check=True, capture_output=True, text=True,
    )
    return time.monotonic() - started


def _get(base_url: str, path: str, params: dict[str, str] | None = None, timeout: float = 60.0) -> Any:
    url = base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _query(base_url: str, expr: str) -> list[dict[str, Any]]:
    answer = _get(base_url, "/api/v1/query", {"query": expr})
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yaml"))


def _recorded_names(files: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for path in files:
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule and rule["record"] not in names:
                    names.append(rule["record"])
    return names


def _wait_for_two_evaluations(base_url: str, timeout: float) -> dict[str, dict[str, Any]]:
    """Poll /api/v1/rules until every group's lastEvaluation has changed at least once after its first."""
    first: dict[str, str] = {}
    done: dict[str, dict[str, Any]] = {}
    seen_max: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        groups = _get(base_url, "/api/v1/rules")["data"]["groups"]
        for group in groups:
            key = f"{Path(group['file']).name}:{group['name']}"
            last = group["lastEvaluation"]
            if last.startswith("0001-"):
                continue
            seen_max[key] = max(seen_max.get(key, 0.0), float(group["evaluationTime"]))
            first.setdefault(key, last)
            if last != first[key]:
                done[key] = {
                    "evaluation_seconds": round(float(group["evaluationTime"]), 4),
                    "max_seen_evaluation_seconds": round(seen_max[key], 4),
                    "last_evaluation": last,
                    "rules": len(group["rules"]),
                    "rule_errors": [r["lastError"] for r in group["rules"] if r.get("lastError")],
                }
        if groups and len(done) == len(groups):
            return done
        time.sleep(1.0)
    raise TimeoutError(f"rule groups not evaluated twice within {timeout:.0f} s: {sorted(set(first) - set(done))}")


def run_rules_scale(
    workdir: Path,
    nodes: int,
    days: int,
    *,
    step_seconds: int = 60,
    history_step_seconds: int = 900,
    pod_lifetime_hours: float = 4.0,
    evaluation_interval_seconds: int = 30,
) -> dict[str, Any]:
    """Generate, backfill, evaluate; return the figures (plain JSON values)."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.servers import start_prometheus, write_prometheus_config  # imported late: checkout only

    workdir.mkdir(parents=True, exist_ok=True)
    history_step_seconds = max(step_seconds, history_step_seconds // step_seconds * step_seconds)
    now = int(time.time()) // step_seconds * step_seconds
    # Blocks end at now: the head refuses samples older than the newest block ("out of bounds").
    end = now
    fleet = SyntheticFleet(nodes, end - days * 86400, int(pod_lifetime_hours * 3600))

    started = time.monotonic()
    openmetrics = workdir / "input.om"
    counters = FleetCounters.empty(nodes)
    written = write_openmetrics(openmetrics, fleet, end, step_seconds, history_step_seconds, counters)
    generate_seconds = time.monotonic() - started
    data_dir = workdir / "tsdb"
    backfill_seconds = _backfill(openmetrics, data_dir, days)
    openmetrics.unlink()

    files = _rule_files()
    # From here on the exporters are scraped live, as after a real backfill: series stay fresh however long it took.
    live = LiveExposition(fleet, counters)
    config = write_prometheus_config(workdir / "prometheus.yml", evaluation_interval=f"{evaluation_interval_seconds}s",
                                     scrape_interval="15s", rule_files=files,
                                     extra_scrape_configs=[{"job_name": "gpucost", "honor_labels": True,
                                                            "static_configs": [{"targets": [live.target]}]}])
    started = time.monotonic()
    prometheus = start_prometheus(workdir, config, retention=f"{days + 35}d")
    try:
        startup_seconds = time.monotonic() - started
        groups = _wait_for_two_evaluations(prometheus.base_url, timeout=10 * evaluation_interval_seconds + 600)
        wait_seconds = time.monotonic() - started
        recorded: dict[str, int] = {}
        for name in _recorded_names(files):
            # Series whose newest sample is from the newest evaluation: the live output, not backfilled history.
            expr = (f'count(timestamp({{__name__="{name}"}}) == scalar(max(timestamp({{__name__="{name}"}}))))')
            result = _query(prometheus.base_url, expr)
            recorded[name] = int(float(result[0]["value"][1])) if result else 0
        pods_by = "count(count by (namespace, pod) ({}))"
        live_pods = _query(prometheus.base_url, pods_by.format("gpucost_container_gpu_cost_usd_total"))
        churn_pods = _query(prometheus.base_url,
                            pods_by.format("last_over_time(gpucost_container_gpu_cost_usd_total[1d])"))
    finally:
        prometheus.stop()
        live.stop()

    slowest = max(groups.items(), key=lambda item: float(item[1]["evaluation_seconds"]))
    worst_seen = max(float(g["max_seen_evaluation_seconds"]) for g in groups.values())
    workload_key = "namespace_workload:gpucost_cost_usd_per_hour:rate5m"
    return {
        "size": {"nodes": nodes, "gpus": nodes * GPUS_PER_NODE, "days": days, "step_seconds": step_seconds,
                 "history_step_seconds": history_step_seconds,
                 "full_resolution_hours": RAW_LOOKBACK_SECONDS / 3600,
                 "pod_lifetime_hours": pod_lifetime_hours, "evaluation_interval_seconds": evaluation_interval_seconds,
                 "data_end_utc": datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        "input": {"series": written["input_series"], "samples": written["lines"] - 1,
                  "recorded_history_samples": written["recorded_history_samples"],
                  "openmetrics_mib": round(written["file_bytes"] / 2**20, 1),
                  "distinct_pods": written["distinct_pods"]},
        "seconds": {"generate": round(generate_seconds, 1), "promtool_backfill": round(backfill_seconds, 1),
                    "prometheus_start": round(startup_seconds, 1), "until_two_evaluations": round(wait_seconds, 1)},
        "groups": groups,
        "slowest_group": {"group": slowest[0], "evaluation_seconds": slowest[1]["evaluation_seconds"]},
        "recorded_series": recorded,
        "pod_churn": {
            "distinct_pods_in_input": written["distinct_pods"],
            "pods_with_series_in_last_5m": int(float(live_pods[0]["value"][1])) if live_pods else 0,
            "pods_with_series_in_last_1d": int(float(churn_pods[0]["value"][1])) if churn_pods else 0,
            f"recorded {workload_key}": recorded.get(workload_key, 0),
            "workloads_in_catalog": len(fleet.workloads),
        },
        "target": {**TARGET_SIZE, "group_evaluation_seconds_max": TARGET_GROUP_SECONDS,
                   "this_run_is_target_size": nodes >= TARGET_SIZE["nodes"] and days >= TARGET_SIZE["days"],
                   "every_group_under_target_here": worst_seen < TARGET_GROUP_SECONDS},
        "victoriametrics": ("not run: importing this many samples through /api/v1/import/prometheus does not fit "
                            "the bench's time on 2 cores; rule portability is checked by "
                            "tests/integration/test_rules_victoriametrics.py"),
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpucost.bench.rules_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=TARGET_SIZE["nodes"])
    parser.add_argument("--days", type=int, default=TARGET_SIZE["days"])
    parser.add_argument("--step", type=int, default=60, help="sample step of the recent raw data, seconds")
    parser.add_argument("--history-step", type=int, default=900, help="sample step of older raw data, seconds")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gpucost-rules-scale"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    result = run_rules_scale(args.workdir, args.nodes, args.days, step_seconds=args.step,
                             history_step_seconds=args.history_step)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
