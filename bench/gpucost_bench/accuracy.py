"""Attribution accuracy: per-team cost from gpucost's engine and two common methods against exact ground truth.

Ground truth is computed piece by piece between the trace's events, in
continuous time: each stretch's price x time is split into active and idle
from the trace's utilization by gpucost's documented definition
(`gpucost.engine.split`: all busy time is active, split by measured busy
time; the idle rest is split by share, and the idle capacity of replicas no one
holds is unallocated).  The plain "held" integral, price x share x lifetime, is
reported beside it: on an exclusive GPU the two agree; on a time-sliced GPU a
pod that kept the device busy pays more active cost than its share, by design.

gpucost is the real engine (`run_tick` feeding a `Ledger`) sampled the way the
exporter samples: a tick every second, holders as they are at the tick,
utilization averaged over the tick.  Seconds in which nothing changes give
identical ticks, so runs of them go to the engine as one tick of N seconds;
seconds that contain an event go one by one.  That is the 1-s sampler exactly,
and the benchmark checks it by running a window at true 1-s ticks.

The alternatives on the same trace:
- request x hours at 1-minute resolution (OpenCost / Kubecost): a pod seen at a
  minute sample pays the whole minute for its request of one `nvidia.com/gpu`
  at the GPU's price; a pod between samples pays nothing; a time-sliced
  replica is a request of one GPU.
- utilization x price (the seed's formula `hourly_rate * util * hours`),
  integrated exactly: no cost for held-but-idle time.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gpucost.attribution import pod_busy_by_device
from gpucost.engine.ledger import Ledger
from gpucost.engine.tick import TickInputs, run_tick
from gpucost.model import ContainerRef, DeviceAllocation, GpuDevice, GpuSample, PriceQuote
from gpucost_bench.trace import Trace, TraceGpu, TraceJob, generate_trace

__all__ = ["TARGET_MAX_ERROR_PCT", "TeamCost", "engine_team_costs", "run_accuracy", "truth_team_costs"]

TARGET_MAX_ERROR_PCT = 0.5
SECONDS_PER_HOUR = 3600.0
DEFAULT_SEED = 20240601
CROSS_CHECK_SECONDS = 3 * 3600


@dataclass(slots=True)
class TeamCost:
    active_usd: float = 0.0
    idle_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        return self.active_usd + self.idle_usd


class _Sweep:
    """Jobs of one GPU overlapping a window, for windows queried in increasing order."""

    def __init__(self, jobs: Sequence[TraceJob]) -> None:
        self._pending = sorted(jobs, key=lambda job: job.start)
        self._next = 0
        self._open: list[TraceJob] = []

    def overlapping(self, begin: float, end: float) -> list[TraceJob]:
        while self._next < len(self._pending) and self._pending[self._next].start < end:
            self._open.append(self._pending[self._next])
            self._next += 1
        self._open = [job for job in self._open if job.end > begin]
        return [job for job in self._open if job.start < end]


def _edges(jobs: Sequence[TraceJob], begin: float, end: float) -> list[float]:
    inside = {t for job in jobs for t in job.boundaries() if begin < t < end}
    return [begin, *sorted(inside), end]


def _split_exact(
    gpu: TraceGpu, running: Sequence[TraceJob], at: float, seconds: float, totals: dict[str, TeamCost]
) -> None:
    """gpucost's definition of active and idle, for a stretch in which nothing changes.

    All busy time is active and goes to the jobs by their busy time; idle capacity
    goes to the jobs by share, and unheld replicas' part of it is nobody's.
    """
    if not running:
        return
    cost = gpu.price_per_hour_usd * seconds / SECONDS_PER_HOUR
    busy = [job.utilization_at(at) for job in running]
    busy_sum = sum(busy)
    total_share = sum(job.share for job in running)
    held = min(total_share, 1.0)
    device_busy = min(busy_sum, 1.0)
    active_total = cost * device_busy
    idle_total = cost * (1.0 - device_busy) * held
    for job, job_busy in zip(running, busy, strict=True):
        share = job.share / total_share
        weight = job_busy / busy_sum if busy_sum > 0.0 else share
        team = totals.setdefault(job.team, TeamCost())
        team.active_usd += active_total * weight
        team.idle_usd += idle_total * share


def truth_team_costs(trace: Trace, horizon: float | None = None) -> dict[str, TeamCost]:
    """Exact per-team cost: piecewise-constant integration between the trace's events."""
    end = trace.horizon_seconds if horizon is None else horizon
    totals: dict[str, TeamCost] = {}
    for gpu in trace.gpus:
        jobs = trace.jobs_on(gpu.uuid)
        sweep = _Sweep(jobs)
        edges = _edges(jobs, 0.0, end)
        for a, b in itertools.pairwise(edges):
            middle = (a + b) / 2.0
            running = [job for job in sweep.overlapping(a, b) if job.start <= middle < job.end]
            _split_exact(gpu, running, middle, b - a, totals)
    return totals


def _tick_plan(jobs: Sequence[TraceJob], ticks: int, every_tick: bool) -> Iterator[tuple[int, int, bool]]:
    """(last tick, seconds, straddles an event) for the ticks 1..`ticks`; tick k covers (k-1, k]."""
    if every_tick:
        for k in range(1, ticks + 1):
            yield k, 1, True
        return
    dirty = sorted({math.ceil(t) for job in jobs for t in job.boundaries() if 0.0 < t <= ticks})
    previous = 0
    for tick in [*dirty, ticks + 1]:
        if tick - 1 > previous:
            yield tick - 1, tick - 1 - previous, False
        if tick <= ticks:
            yield tick, 1, True
        previous = tick


def _window_average(jobs: Sequence[TraceJob], begin: float, end: float) -> tuple[float, dict[str, float]]:
    """Device busy fraction and each job's process busy fraction, averaged over [begin, end)."""
    edges = _edges(jobs, begin, end)
    device = 0.0
    per_job = dict.fromkeys((job.name for job in jobs), 0.0)
    for a, b in itertools.pairwise(edges):
        middle = (a + b) / 2.0
        busy = [(job, job.utilization_at(middle)) for job in jobs]
        device += min(sum(value for _, value in busy), 1.0) * (b - a)
        for job, value in busy:
            per_job[job.name] += value * (b - a)
    width = end - begin
    return device / width, {name: value / width for name, value in per_job.items()}


def _device_ledger(gpu: TraceGpu, jobs: Sequence[TraceJob], ticks: int, every_tick: bool, ledger: Ledger) -> int:
    """Feed one GPU's ticks through the real engine into `ledger`; returns the engine calls made."""
    device = GpuDevice(uuid=gpu.uuid, index="0", model="NVIDIA A100-SXM4-80GB")
    prices = {gpu.uuid: PriceQuote(gpu.price_per_hour_usd, "on_demand", source="bench")}
    pids = {job.name: 10_000 + index for index, job in enumerate(jobs)}
    sweep = _Sweep(jobs)
    calls = 0
    for tick, seconds, straddles in _tick_plan(jobs, ticks, every_tick):
        begin = float(tick - seconds)
        nearby = sweep.overlapping(begin, float(tick) + 1e-9)
        holding = [job for job in nearby if job.start <= tick < job.end]
        window = [job for job in nearby if job.start < tick and job.end > tick - 1]
        if straddles:
            utilization, process_busy = _window_average(window, tick - 1.0, float(tick))
        else:
            utilization = min(sum(job.utilization_at(tick) for job in holding), 1.0)
            process_busy = {job.name: job.utilization_at(tick) for job in holding}
        owner_by_pid = {pids[job.name]: job.name for job in holding}
        sample = GpuSample(
            uuid=gpu.uuid,
            timestamp=float(tick),
            utilization=utilization,
            process_utilization={pids[name]: busy for name, busy in process_busy.items() if busy > 0.0},
        )
        allocations = [
            DeviceAllocation(gpu.uuid, ContainerRef(job.team, job.name, "main"), job.share, pod_uid=job.name)
            for job in holding
        ]
        busy = pod_busy_by_device({gpu.uuid: sample}, owner_by_pid)
        inputs = TickInputs(float(seconds), [device], {gpu.uuid: sample}, prices, allocations, busy)
        workload = {allocation.container: (job.team,) for allocation, job in zip(allocations, holding, strict=True)}
        for cost in run_tick(inputs):
            ledger.record(cost, workload, float(tick))
        calls += 1
    return calls


def engine_team_costs(
    trace: Trace, horizon: int | None = None, every_tick: bool = False
) -> tuple[dict[str, TeamCost], int]:
    """Per-team cost from gpucost's engine sampled at 1 s, and the number of engine calls."""
    ticks = int(trace.horizon_seconds) if horizon is None else horizon
    ledger = Ledger(("team",), retention_seconds=math.inf)
    calls = sum(_device_ledger(gpu, trace.jobs_on(gpu.uuid), ticks, every_tick, ledger) for gpu in trace.gpus)
    totals: dict[str, TeamCost] = {}
    for key, counters in ledger.workloads.items():
        team = totals.setdefault(key.workload[0], TeamCost())
        team.active_usd += counters.active_usd
        team.idle_usd += counters.idle_usd
    return totals, calls


def held_team_costs(trace: Trace) -> dict[str, float]:
    """Price x share x lifetime per team: what each team held, whatever it ran."""
    price = {gpu.uuid: gpu.price_per_hour_usd for gpu in trace.gpus}
    totals: dict[str, float] = {}
    for job in trace.jobs:
        cost = price[job.uuid] * job.share * (job.end - job.start) / SECONDS_PER_HOUR
        totals[job.team] = totals.get(job.team, 0.0) + cost
    return totals


def request_hours_team_costs(trace: Trace, resolution_seconds: float = 60.0) -> dict[str, float]:
    """OpenCost-style: every pod seen at a sample pays the whole step for one requested GPU."""
    price = {gpu.uuid: gpu.price_per_hour_usd for gpu in trace.gpus}
    totals: dict[str, float] = {}
    for job in trace.jobs:
        samples_seen = math.ceil(job.end / resolution_seconds) - math.ceil(job.start / resolution_seconds)
        cost = samples_seen * resolution_seconds / SECONDS_PER_HOUR * price[job.uuid]
        totals[job.team] = totals.get(job.team, 0.0) + cost
    return totals


def utilization_price_team_costs(trace: Trace) -> dict[str, float]:
    """The seed's `hourly_rate * util * hours`, integrated exactly over each job's phases."""
    price = {gpu.uuid: gpu.price_per_hour_usd for gpu in trace.gpus}
    totals: dict[str, float] = {}
    for job in trace.jobs:
        ends = [begin for begin, _ in job.phases[1:]] + [job.end]
        cost = sum(
            price[job.uuid] * busy * (end - begin) / SECONDS_PER_HOUR
            for (begin, busy), end in zip(job.phases, ends, strict=True)
        )
        totals[job.team] = totals.get(job.team, 0.0) + cost
    return totals


def _error_pct(estimate: float, truth: float) -> float:
    return (estimate - truth) / truth * 100.0 if truth > 0.0 else 0.0


def _cross_check(trace: Trace) -> dict[str, Any]:
    """The merged-tick run against true 1-s ticks over a window of two GPUs (one exclusive, one shared)."""
    shared = [gpu for gpu in trace.gpus if gpu.replicas > 1][:1]
    exclusive = [gpu for gpu in trace.gpus if gpu.replicas == 1][:1]
    gpus = tuple(exclusive + shared)
    chosen = {gpu.uuid for gpu in gpus}
    window = Trace(trace.seed, trace.horizon_seconds, gpus, tuple(j for j in trace.jobs if j.uuid in chosen))
    seconds = int(min(CROSS_CHECK_SECONDS, trace.horizon_seconds))
    merged, _ = engine_team_costs(window, seconds, every_tick=False)
    ticked, calls = engine_team_costs(window, seconds, every_tick=True)
    teams = set(merged) | set(ticked)
    difference = max(
        (abs(merged.get(t, TeamCost()).total_usd - ticked.get(t, TeamCost()).total_usd) for t in teams), default=0.0
    )
    return {"gpus": len(gpus), "seconds": seconds, "one_second_ticks": calls, "max_team_difference_usd": difference}


def run_accuracy(quick: bool = False, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    gpus, hours = (16, 24) if quick else (48, 48)
    started = time.perf_counter()
    trace = generate_trace(seed, gpus, hours * SECONDS_PER_HOUR)
    truth = truth_team_costs(trace)
    engine_started = time.perf_counter()
    engine, calls = engine_team_costs(trace)
    engine_seconds = time.perf_counter() - engine_started
    request_hours = request_hours_team_costs(trace)
    util_price = utilization_price_team_costs(trace)
    held = held_team_costs(trace)

    teams: dict[str, dict[str, float]] = {}
    for team in sorted(truth):
        exact, ours = truth[team], engine.get(team, TeamCost())
        teams[team] = {
            "truth_usd": exact.total_usd,
            "truth_active_usd": exact.active_usd,
            "truth_idle_usd": exact.idle_usd,
            "gpucost_usd": ours.total_usd,
            "gpucost_error_pct": _error_pct(ours.total_usd, exact.total_usd),
            "gpucost_active_error_pct": _error_pct(ours.active_usd, exact.active_usd),
            "gpucost_idle_error_pct": _error_pct(ours.idle_usd, exact.idle_usd),
            "request_hours_1m_usd": request_hours.get(team, 0.0),
            "request_hours_1m_error_pct": _error_pct(request_hours.get(team, 0.0), exact.total_usd),
            "utilization_times_price_usd": util_price.get(team, 0.0),
            "utilization_times_price_error_pct": _error_pct(util_price.get(team, 0.0), exact.total_usd),
            "held_usd": held[team],
            "gpucost_vs_held_pct": _error_pct(ours.total_usd, held[team]),
            "request_hours_1m_vs_held_pct": _error_pct(request_hours.get(team, 0.0), held[team]),
            "utilization_times_price_vs_held_pct": _error_pct(util_price.get(team, 0.0), held[team]),
        }
    durations = [job.end - job.start for job in trace.jobs]
    max_abs = {
        method: max(abs(row[f"{method}_error_pct"]) for row in teams.values())
        for method in ("gpucost", "request_hours_1m", "utilization_times_price")
    }
    max_abs_vs_held = {
        method: max(abs(row[f"{method}_vs_held_pct"]) for row in teams.values())
        for method in ("gpucost", "request_hours_1m", "utilization_times_price")
    }
    total_truth = sum(t.total_usd for t in truth.values())
    return {
        "benchmark": "accuracy",
        "trace": {
            "seed": seed,
            "gpus": gpus,
            "time_sliced_gpus": sum(1 for g in trace.gpus if g.replicas > 1),
            "replicas_per_shared_gpu": max(g.replicas for g in trace.gpus),
            "hours": hours,
            "jobs": len(trace.jobs),
            "jobs_under_60s": sum(1 for d in durations if d < 60.0),
            "shortest_job_seconds": min(durations),
            "median_job_seconds": statistics.median(durations),
            "longest_job_seconds": max(durations),
            "teams": len(teams),
        },
        "engine": {
            "sample_interval_seconds": 1.0,
            "equivalent_one_second_ticks": int(trace.horizon_seconds) * gpus,
            "engine_calls": calls,
            "engine_wall_seconds": engine_seconds,
            "one_second_cross_check": _cross_check(trace),
        },
        "teams": teams,
        "total": {
            "truth_usd": total_truth,
            "gpucost_error_pct": _error_pct(sum(t.total_usd for t in engine.values()), total_truth),
            "request_hours_1m_error_pct": _error_pct(sum(request_hours.values()), total_truth),
            "utilization_times_price_error_pct": _error_pct(sum(util_price.values()), total_truth),
        },
        "max_abs_team_error_pct": max_abs,
        "max_abs_team_difference_vs_held_pct": max_abs_vs_held,
        "target": {"gpucost_max_abs_team_error_pct": TARGET_MAX_ERROR_PCT},
        "passed": max_abs["gpucost"] <= TARGET_MAX_ERROR_PCT,
        "wall_seconds": time.perf_counter() - started,
    }
