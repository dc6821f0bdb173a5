"""Synthetic exporter history for a fleet: what `nodes` x 8 GPUs would have exposed over `days`.

`SyntheticFleet` (`fleet_model`) decides, deterministically, which pod holds which GPUs at any second;
`write_history_chunks` writes the series as OpenMetrics in time order, cut into chunk files
at step boundaries (so chunks never overlap in time and each can be backfilled on its own,
while the next one is written); `LiveExposition` serves the same fleet over HTTP from the
moment the history ends, continuing its counters, as the exporters would after a backfill.

What the rules read decides what is written at full resolution.  The longest raw range in
the rules is `[1d]` (inference rules), so the last `RAW_LOOKBACK_SECONDS` are written every
`step` seconds; older raw history is written every `history_step` seconds: it still puts
every churned pod's series into the blocks' index, but no rule reads its samples at the
evaluation time.  The recorded series that rules read over 7 to 31 days (hourly spend tiles,
team/model rates) are written at every step, so the long subqueries cost what they cost in
a Prometheus that has run for `days` days; so is the inference split per model and business
unit over the last day, which the daily inference group integrates over one day.

Serving pods (the `Deployment` workloads, about two thirds of all pods) run an app with the
`GpuCostMiddleware`: they export share-seconds, requests and tokens for two business units,
so the inference rules join and split the load a serving fleet gives them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event, Thread
from typing import IO

from gpucost_bench.fleet_model import (
    BUSINESS_UNITS,
    GPUS_PER_NODE,
    NODE_POOLS,
    SLOT_SIZES,
    TEAMS,
    Pod,
    SyntheticFleet,
    Workload,
)
from gpucost_testing.http_fixture import HttpFixture, RecordedRequest, Reply

__all__ = ["GPUS_PER_NODE", "NODE_POOLS", "RAW_LOOKBACK_SECONDS", "SPLIT_RECORD", "FleetCounters", "HistoryChunk",
           "HistoryTotals", "LiveExposition", "SyntheticFleet", "write_history_chunks"]

# Longest raw-series range the rules read (`increase(...[1d])` in the inference rules) plus margin.
RAW_LOOKBACK_SECONDS = 25 * 3600
FLUSH_LINES = 200_000
# A serving pod's traffic: its workload's business unit takes 70 % of the share-seconds, the next one 30 %.
INFERENCE_MIX = (0.7, 0.3)
REQUESTS_PER_SECOND = 20.0
PROMPT_TOKENS_PER_REQUEST, COMPLETION_TOKENS_PER_REQUEST = 100.0, 25.0
SPLIT_RECORD = "model_business_unit:gpucost_inference_cost_usd_per_hour:rate5m"


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
    """What the exporters carry from one sample to the next: integrated counters, and the series and pods seen.

    Series and pods are kept as hashes of their keys: at full size there are millions, and only
    their number is reported.
    """

    unallocated: list[list[float]]
    workload_cost: list[dict[tuple[int, str], float]]
    series: set[int] = field(default_factory=set)
    pods: set[int] = field(default_factory=set)
    serving_pods: set[int] = field(default_factory=set)
    previous_raw: int | None = None

    @classmethod
    def empty(cls, nodes: int) -> FleetCounters:
        return cls([[0.0] * GPUS_PER_NODE for _ in range(nodes)], [{} for _ in range(nodes)])


@dataclass(frozen=True, slots=True)
class HistoryChunk:
    """One closed OpenMetrics file: samples from `first_ts` to `last_ts` (both included), ending in `# EOF`."""

    path: Path
    first_ts: int
    last_ts: int
    samples: int
    bytes: int


@dataclass
class HistoryTotals:
    """Running totals over every chunk written so far."""

    samples: int = 0
    recorded_history_samples: int = 0
    bytes: int = 0
    chunks: int = 0
    write_seconds: float = 0.0


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)


class LiveExposition:
    """Serves the fleet (OpenMetrics) from where its history ends, continuing its counters.

    Like the real exporter, it renders on its own clock (every `period_seconds`, in a thread) and a
    scrape only sends the latest bytes: rendering 1,000 nodes takes about a second of Python, which
    under a loaded machine outlasted the scrapers' 10 s timeout when it was done per request.
    """

    def __init__(self, fleet: SyntheticFleet, counters: FleetCounters, period_seconds: float = 5.0) -> None:
        self._fleet, self._counters, self._period = fleet, counters, period_seconds
        self._body = b"# EOF\n"
        self._stop = Event()
        self.renders = 0
        self._render()  # the first scrape already gets the fleet
        self.server = HttpFixture({("GET", "*"): self._scrape}, name="exposition-http", keep_requests=0).start()
        self._render_thread = Thread(target=self._render_loop, name="exposition-render", daemon=True)
        self._render_thread.start()
        # Every thread this exposition started, for a test to check that stop() ends them all.
        self.threads = [thread for thread in (self.server.serving_thread, self._render_thread) if thread is not None]

    def _scrape(self, request: RecordedRequest) -> Reply:
        # A scraper that gives up (timeout, size limit) only ends its own connection: its own log says why.
        return Reply(200, self._body, "application/openmetrics-text; version=1.0.0; charset=utf-8")

    def _render(self) -> None:
        t = int(time.time())
        counters = self._counters
        dt = 0 if counters.previous_raw is None else max(0, t - counters.previous_raw)
        counters.previous_raw = t
        lines = _Lines()
        _write_raw_step(lines, self._fleet, t, dt, False, counters)
        self._body = ("".join(lines.lines) + "# EOF\n").encode()  # one reference swap: readers see old or new
        self.renders += 1

    def _render_loop(self) -> None:
        while not self._stop.wait(self._period):
            self._render()

    @property
    def body_bytes(self) -> int:
        """Size of the latest rendered exposition."""
        return len(self._body)

    @property
    def gpus(self) -> int:
        return self._fleet.nodes * GPUS_PER_NODE

    @property
    def target(self) -> str:
        return self.server.target

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()
        self._render_thread.join(10)


def write_history_chunks(
    directory: Path,
    fleet: SyntheticFleet,
    end: int,
    step: int,
    history_step: int,
    counters: FleetCounters,
    totals: HistoryTotals,
    chunk_samples: int,
) -> Iterator[HistoryChunk]:
    """Write the fleet's series from `fleet.start` to `end` in time order, one file per ~`chunk_samples`.

    A chunk is closed at a step boundary once it holds `chunk_samples` samples, so chunks are
    disjoint in time: promtool turns each into its own blocks, and Prometheus reads them as one
    history.  Only one chunk is on disk at a time unless the caller keeps them.
    """
    raw_full_from = end - RAW_LOOKBACK_SECONDS
    catalog = fleet.workloads
    # Recorded history: a steady rate per combination, from the fleet's size (values do not change the cost).
    fleet_usd_per_hour = sum(p[2] for p in fleet.pool) * GPUS_PER_NODE * 0.9
    combos = sorted({(w.namespace, w.team, w.model) for w in catalog})
    team_models = sorted({(w.team, w.model) for w in catalog})
    combo_rate = _fmt(fleet_usd_per_hour / len(combos))
    team_model_rate = _fmt(fleet_usd_per_hour / len(team_models))
    split_series = _inference_split_series(catalog)
    split_rate = _fmt(fleet_usd_per_hour / 2 / len(split_series))
    directory.mkdir(parents=True, exist_ok=True)
    handle: IO[str] | None = None
    out: OpenMetricsWriter | None = None
    first_ts = fleet.start
    started = time.monotonic()
    for t in range(fleet.start, end + 1, step):
        if handle is None or out is None:
            path = directory / f"history-{totals.chunks:04d}.om"
            handle = path.open("w", encoding="utf-8")
            out = OpenMetricsWriter(handle)
            first_ts = t
        if t >= raw_full_from or (t - fleet.start) % history_step == 0 or t == end:
            dt = 0 if counters.previous_raw is None else t - counters.previous_raw
            counters.previous_raw = t
            _write_raw_step(out, fleet, t, dt, t >= raw_full_from, counters)
        for ns, team, model in combos:
            labels = f'namespace="{ns}",team="{team}",model="{model}"'
            out.add(f"namespace_team_model:gpucost_cost_usd_per_hour:rate5m{{{labels}}} {combo_rate} {t}\n")
            out.add(f"namespace_team_model:gpucost_spend_usd:increase1h{{{labels}}} {combo_rate} {t}\n")
        for team, model in team_models:
            out.add(f'team_model:gpucost_cost_usd_per_hour:rate5m{{team="{team}",model="{model}"}} '
                    f"{team_model_rate} {t}\n")
        totals.recorded_history_samples += 2 * len(combos) + len(team_models)
        if t >= end - 86400:  # the daily inference group reads the split over [1d]
            for labels in split_series:
                out.add(f"{SPLIT_RECORD}{{{labels}}} {split_rate} {t}\n")
            totals.recorded_history_samples += len(split_series)
        if out.lines + len(out.buffer) >= chunk_samples or t + step > end:
            out.flush()
            samples = out.lines
            handle.write("# EOF\n")
            handle.close()
            handle, out = None, None
            size = path.stat().st_size
            totals.samples += samples
            totals.bytes += size
            totals.chunks += 1
            totals.write_seconds += time.monotonic() - started
            yield HistoryChunk(path, first_ts, t, samples, size)
            started = time.monotonic()


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
                pods.add(hash(f"{workload.namespace}/{pod.name}"))
                age = t - pod.started
                wl = workload.labels()
                pod_labels = f'{target},namespace="{workload.namespace}",pod="{pod.name}"'
                owner = f'owner_kind="{pod.owner_kind}",owner_name="{pod.owner_name}"'
                key = f"gpucost_pod_owner_info{{{pod_labels},{owner}}}"
                series.add(hash(key))
                out.add(f"{key} 1 {t}\n")
                for g in gpus:
                    base = f'{pod_labels},container="main",uuid="{uuids[g]}"'
                    for component, share in (("active", utilization), ("idle", 1 - utilization)):
                        key = f'gpucost_container_gpu_cost_usd_total{{{base},component="{component}",{wl}}}'
                        series.add(hash(key))
                        out.add(f"{key} {_fmt(price * share * age / 3600)} {t}\n")
                    key = f"gpucost_container_gpu_seconds_total{{{base},{wl}}}"
                    series.add(hash(key))
                    out.add(f"{key} {age} {t}\n")
                for component, share in (("active", utilization), ("idle", 1 - utilization)):
                    cost_key = (pod.workload, component)
                    workload_cost[n][cost_key] = workload_cost[n].get(cost_key, 0.0) + (
                        price * share * len(gpus) * dt / 3600)
                if pod.owner_kind == "Deployment":
                    counters.serving_pods.add(hash(f"{workload.namespace}/{pod.name}"))
                    _write_app_step(out, series, workload, pod, f"10.{n // 250}.{n % 250}.{10 + slot}:8000",
                                    len(gpus) * pod.utilization * age, age, t)
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
                    series.add(hash(key))
                    out.add(f"{key} {value} {t}\n")
        for (index, component), spent in workload_cost[n].items():
            key = (f'gpucost_workload_gpu_cost_usd_total{{{target},component="{component}",'
                   f'namespace="{catalog[index].namespace}",{catalog[index].labels()}}}')
            series.add(hash(key))
            out.add(f"{key} {_fmt(spent)} {t}\n")
    for team in TEAMS:
        budget = f'gpucost_budget_usd{{job="gpucost-budgets",budget="{team}-monthly",team="{team}"}}'
        series.add(hash(budget))
        out.add(f"{budget} 50000 {t}\n")


def _serving_business_units(workload: Workload) -> list[tuple[str, float]]:
    """A serving workload's business units and their share of its traffic: its own first, then the next."""
    first = BUSINESS_UNITS.index(workload.business_unit)
    return [(BUSINESS_UNITS[(first + offset) % len(BUSINESS_UNITS)], fraction)
            for offset, fraction in enumerate(INFERENCE_MIX)]


def _write_app_step(out: OpenMetricsWriter | _Lines, series: set[int], workload: Workload, pod: Pod, instance: str,
                    share_seconds: float, age: int, t: int) -> None:
    """What a serving pod's app exports."""
    app = (f'job="inference",instance="{instance}",namespace="{workload.namespace}",pod="{pod.name}",'
           f'model="{workload.model}",model_version="{workload.model_version}"')
    for business_unit, fraction in _serving_business_units(workload):
        labels = f'{app},business_unit="{business_unit}"'
        requests = REQUESTS_PER_SECOND * age * fraction
        for key, value in (
            (f"gpucost_inference_gpu_share_seconds_total{{{labels}}}", share_seconds * fraction),
            (f'gpucost_inference_requests_total{{{labels},status="2xx"}}', requests),
            (f'gpucost_inference_tokens_total{{{labels},kind="prompt"}}', requests * PROMPT_TOKENS_PER_REQUEST),
            (f'gpucost_inference_tokens_total{{{labels},kind="completion"}}', requests * COMPLETION_TOKENS_PER_REQUEST),
        ):
            series.add(hash(key))
            out.add(f"{key} {_fmt(value)} {t}\n")


def _inference_split_series(catalog: tuple[Workload, ...]) -> list[str]:
    """The label sets of the recorded split per model and business unit (what the serving workloads give)."""
    label_sets = set()
    for workload in catalog:
        if workload.owner_kind != "Deployment":
            continue
        for business_unit, _ in _serving_business_units(workload):
            for component in ("active", "idle"):
                label_sets.add(f'model="{workload.model}",model_version="{workload.model_version}",'
                               f'business_unit="{business_unit}",component="{component}"')
    return sorted(label_sets)
