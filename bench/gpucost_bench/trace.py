"""A generated GPU cluster trace with exactly known utilization: the input of the accuracy benchmark.

Jobs of 10 s to 6 h (log-uniform) run back to back, with gaps, on every slot of
every GPU: a whole GPU when it is exclusive, one replica of R when it is
time-sliced.  Each job's process utilization of its device is piecewise
constant over a few phases.  Start and end times are real numbers, not
multiples of a second, as pods never wait for the exporter's sample grid.
The same seed always gives the same trace.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["TEAMS", "Trace", "TraceGpu", "TraceJob", "generate_trace"]

TEAMS: tuple[str, ...] = ("research", "search", "ads", "vision", "speech", "platform")
# Relative job counts per team: a few heavy users, a long tail.
_TEAM_WEIGHTS = (5.0, 3.0, 2.0, 2.0, 1.0, 0.5)
_MIN_JOB_SECONDS = 10.0
_MAX_JOB_SECONDS = 6 * 3600.0
_MEAN_GAP_SECONDS = 900.0
# (price per hour, replicas): on-demand A100 and H100 list prices; a quarter of the GPUs time-sliced 4 ways.
_PRICES = (4.10, 6.88)
_SHARED_REPLICAS = 4


@dataclass(frozen=True, slots=True)
class TraceGpu:
    uuid: str
    price_per_hour_usd: float
    replicas: int  # 1: exclusive; R > 1: time-sliced into R replicas

    @property
    def share(self) -> float:
        return 1.0 / self.replicas


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One pod holding one slot of one GPU over [start, end).

    `phases` are (from, process utilization) pairs: the utilization holds from
    `from` until the next phase's `from`, the last one until `end`.
    """

    name: str
    team: str
    uuid: str
    replica: int
    share: float
    start: float
    end: float
    phases: tuple[tuple[float, float], ...]

    def utilization_at(self, t: float) -> float:
        if not self.start <= t < self.end:
            return 0.0
        value = 0.0
        for begin, utilization in self.phases:
            if begin > t:
                break
            value = utilization
        return value

    def boundaries(self) -> list[float]:
        return [self.start, *(begin for begin, _ in self.phases[1:]), self.end]


@dataclass(frozen=True, slots=True)
class Trace:
    seed: int
    horizon_seconds: float
    gpus: tuple[TraceGpu, ...]
    jobs: tuple[TraceJob, ...]

    def jobs_on(self, uuid: str) -> list[TraceJob]:
        return [job for job in self.jobs if job.uuid == uuid]


def _phases(rng: random.Random, start: float, end: float) -> tuple[tuple[float, float], ...]:
    kind = rng.random()
    if kind < 0.5:  # training: busy, with dips (checkpoints, data stalls)
        low, high = 0.55, 0.99
    elif kind < 0.8:  # inference: traffic-shaped
        low, high = 0.05, 0.6
    else:  # notebooks and stuck jobs: holding, barely using
        low, high = 0.0, 0.12
    duration = end - start
    count = max(1, min(12, int(duration / rng.uniform(600.0, 3600.0)) + 1))
    cuts = sorted(rng.uniform(start, end) for _ in range(count - 1))
    return tuple((begin, round(rng.uniform(low, high), 4)) for begin in [start, *cuts])


def generate_trace(seed: int, gpus: int, horizon_seconds: float) -> Trace:
    """`gpus` GPUs (a quarter time-sliced) over [0, horizon_seconds), fully determined by `seed`."""
    rng = random.Random(seed)
    devices = tuple(
        TraceGpu(
            uuid=f"GPU-{index:04d}-bench",
            price_per_hour_usd=_PRICES[index % len(_PRICES)],
            replicas=_SHARED_REPLICAS if index % 4 == 3 else 1,
        )
        for index in range(gpus)
    )
    jobs: list[TraceJob] = []
    log_min, log_max = math.log(_MIN_JOB_SECONDS), math.log(_MAX_JOB_SECONDS)
    for gpu in devices:
        for replica in range(gpu.replicas):
            t = rng.uniform(0.0, _MEAN_GAP_SECONDS)
            while t < horizon_seconds:
                duration = math.exp(rng.uniform(log_min, log_max))
                end = min(t + duration, horizon_seconds)
                team = rng.choices(TEAMS, weights=_TEAM_WEIGHTS)[0]
                jobs.append(
                    TraceJob(
                        name=f"job-{len(jobs):05d}",
                        team=team,
                        uuid=gpu.uuid,
                        replica=replica,
                        share=gpu.share,
                        start=t,
                        end=end,
                        phases=_phases(rng, t, end),
                    )
                )
                t = end + rng.expovariate(1.0 / _MEAN_GAP_SECONDS)
    return Trace(seed=seed, horizon_seconds=horizon_seconds, gpus=devices, jobs=tuple(jobs))
