"""The Kubernetes acceptance run of tests/integration/test_kubernetes_e2e.py, as plain values:
its timeline and device ids, the scenario with its churn pods, the ground truth integrated from
that scenario, and `Run`, which reads the finished run's Prometheus on the scenario's clock.

Ground truth is integrated here, independently of the exporter's engine, from the scenario
timeline: per half scenario second, each held device's busy time split between its holders by
per-process utilization, its idle time by the holders' shares, and the idle time of replicas no
one holds unallocated.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gpucost.sources.scenario import REPLICA_SEPARATOR, Scenario, ScenarioGpu
from gpucost_testing.kube_harness import KubeHarness
from gpucost_testing.servers import REPO_ROOT, ManagedProcess, prom_query, prom_scalar

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/kubernetes_acceptance.yaml"
SPEED = 6.0
NAMESPACE_LABELS = {"trust-safety": {"team": "trust"}}

# The run, in wall seconds after scenario second 0.
# The counters stand a few seconds behind the samples (a tick is booked once the kubelet's
# view of it has settled: a poll gap plus a margin, about 4 s at this 1 s poll), so the
# measured windows start and end that much after the moments the churn and the run use.
BOOKING_DELAY = 6.0
EARLY_AT = 15.0 + BOOKING_DELAY
KUBELET_DOWN_AT = 55.0
KUBELET_UP_AT = 75.0
APISERVER_DOWN_AT = 90.0
APISERVER_UP_AT = 100.0
LATE_AT = 160.0 + BOOKING_DELAY

TRAINING_GPUS = tuple(f"GPU-4a0c1d2e-000{n}-4f10-8a00-00000000a00{n}" for n in range(4))
TIME_SLICED_GPU = "GPU-4a0c1d2e-0004-4f10-8a00-00000000a004"
MIG_GPU = "GPU-4a0c1d2e-0005-4f10-8a00-00000000a005"
IDLE_GPU = "GPU-4a0c1d2e-0006-4f10-8a00-00000000a006"
CHURN_GPU = "GPU-4a0c1d2e-0007-4f10-8a00-00000000a007"
SPARE_MIG_SLICE = "MIG-5b1d2e3f-0003-5a10-9b00-00000000b009"
UNKNOWN_DEVICE = "GPU-00000000-dead-4bee-8f00-000000000000"

CHURN_PODS = 200
CHURN_NAMESPACE = "batch"
CHURN_LABELS = {"team": "batch", "model": "hparam-sweep"}
CHURN_SEED = 20251128
CHURN_FROM = 10.0 * SPEED

JOINER_NAMESPACE = "search"
JOINER_POD = "retrieval-canary-0"
JOINER_LABELS = {"team": "search", "model": "retrieval-canary"}
JOINER_FROM = (APISERVER_DOWN_AT + 3.0) * SPEED

SECONDS_PER_HOUR = 3600.0


# --- the churn scenario ------------------------------------------------------------------


@dataclass(frozen=True)
class ChurnPod:
    name: str
    start: float
    end: float


def churn_pods(lanes: int) -> list[ChurnPod]:
    """200 pods of 10-90 scenario seconds, back to back on each replica of the churn GPU.

    Back to back, so the GPU never sits unallocated between two pods and the
    summed cost does not depend on when exactly the exporter polled the kubelet.
    They start shortly before the measured window, once the exporter is up.
    """
    rng = random.Random(CHURN_SEED)
    free_at = [CHURN_FROM] * lanes
    pods = []
    for number in range(CHURN_PODS):
        duration = float(round(10 + 80 * rng.random() ** 2))
        lane = min(range(lanes), key=lambda index: free_at[index])
        pods.append(ChurnPod(f"sweep-trial-{number:03d}-{lane}", free_at[lane], free_at[lane] + duration))
        free_at[lane] += duration
    return pods


def write_run_scenario(path: Path) -> Path:
    """The acceptance node plus the churn pods and a pod that starts while the API server is down."""
    document = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    lanes = next(gpu["replicas"] for gpu in document["gpus"] if gpu["uuid"] == CHURN_GPU)
    rng = random.Random(CHURN_SEED + 1)
    for number, pod in enumerate(churn_pods(lanes)):
        lane = int(pod.name.rsplit("-", 1)[1])
        document["pods"].append(
            {
                "namespace": CHURN_NAMESPACE,
                "name": pod.name,
                "uid": f"7d3e4f50-{number:04x}-4c30-8d00-{number:012x}",
                "labels": dict(CHURN_LABELS),
                "owner": {"kind": "Job", "name": pod.name},
                "start": pod.start,
                "end": pod.end,
                "containers": [
                    {
                        "name": "trial",
                        "devices": [f"{CHURN_GPU}{REPLICA_SEPARATOR}{lane}"],
                        "processes": [
                            {"pid": 50000 + number, "device": CHURN_GPU,
                             "utilization": round(rng.uniform(0.03, 0.12), 3)}
                        ],
                    }
                ],
            }
        )
    document["pods"].append(
        {
            "namespace": JOINER_NAMESPACE,
            "name": JOINER_POD,
            "uid": "7d3e4f50-ffff-4c30-8d00-00000000ffff",
            "labels": dict(JOINER_LABELS),
            "owner": {"kind": "StatefulSet", "name": "retrieval-canary"},
            "start": JOINER_FROM,
            "containers": [
                {
                    "name": "server",
                    "devices": [SPARE_MIG_SLICE],
                    "processes": [{"pid": 49999, "device": SPARE_MIG_SLICE, "utilization": 0.35}],
                }
            ],
        }
    )
    document["duration"] = max(pod["end"] for pod in document["pods"] if "end" in pod)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


# --- ground truth ----------------------------------------------------------------------


@dataclass
class Truth:
    """Cost in USD over one window of scenario time, by what the exporter reports."""

    by_workload: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    by_pod: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    allocated: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    unallocated: dict[str, float] = field(default_factory=lambda: defaultdict(float))


@dataclass(frozen=True)
class _Holding:
    namespace: str
    pod: str
    workload: tuple[str, str]
    share: float
    busy: float


def _device_prices(gpu: ScenarioGpu, full_price: float) -> list[tuple[str, float]]:
    """(uuid, $/h) of what is priced on one GPU: each MIG slice, and the parent's uncarved rest."""
    if not gpu.mig_slices:
        return [(gpu.uuid, full_price)]
    carved = sum(mig.slices for mig in gpu.mig_slices)
    priced = [(mig.uuid, full_price * mig.slices / gpu.parent_slices) for mig in gpu.mig_slices]
    return [(gpu.uuid, full_price * (gpu.parent_slices - carved) / gpu.parent_slices), *priced]


def _workload(labels: Mapping[str, str], namespace: str) -> tuple[str, str]:
    fallback = NAMESPACE_LABELS.get(namespace, {})
    return (labels.get("team") or fallback.get("team", ""), labels.get("model") or fallback.get("model", ""))


def integrate(scenario: Scenario, begin: float, end: float, full_price: float, step: float = 0.5) -> Truth:
    """What every device cost from scenario second `begin` to `end`, split as documented."""
    truth = Truth()
    moment = begin
    while moment < end:
        width = min(step, end - moment)
        _integrate_slice(scenario, moment + width / 2, width, full_price, truth)
        moment += width
    return truth


def _integrate_slice(scenario: Scenario, t: float, seconds: float, full_price: float, truth: Truth) -> None:
    holdings: dict[str, list[_Holding]] = defaultdict(list)
    process_busy: dict[str, float] = defaultdict(float)
    for pod, _occurrence in scenario.running_pods_at(t):
        for container in pod.containers:
            busy: dict[str, float] = defaultdict(float)
            for process in container.processes:
                utilization = process.utilization.value_at("utilization", t) or 0.0
                busy[process.device_uuid] += utilization
                process_busy[process.device_uuid] += utilization
            shares: dict[str, float] = defaultdict(float)
            for device_id in container.device_ids:
                uuid, replica_mark, _replica = device_id.partition(REPLICA_SEPARATOR)
                shares[uuid] += 1.0 / scenario.gpu(uuid).replicas if replica_mark else 1.0
            for uuid, share in shares.items():
                holdings[uuid].append(
                    _Holding(pod.namespace, pod.name, _workload(pod.labels, pod.namespace), share, busy[uuid])
                )
    for gpu in scenario.gpus:
        for uuid, price in _device_prices(gpu, full_price):
            cost = price * seconds / SECONDS_PER_HOUR
            held = holdings.get(uuid, [])
            total_share = sum(holding.share for holding in held)
            allocated_share = min(total_share, 1.0)
            timeline = gpu.timeline if uuid == gpu.uuid else None
            if timeline is not None and timeline.has("utilization"):
                utilization = timeline.value_at("utilization", t) or 0.0
            else:
                utilization = min(process_busy[uuid], 1.0)
            if not held:
                truth.unallocated[uuid] += cost  # no one to charge, busy or not
                continue
            # All busy time to the holders; idle capacity by share, the unheld replicas' part unallocated.
            active = cost * utilization
            idle_capacity = cost * (1.0 - utilization)
            idle = idle_capacity * allocated_share
            measured = sum(holding.busy for holding in held)
            for holding in held:
                share = holding.share / max(total_share, 1.0)
                active_weight = holding.busy / measured if measured > 0 else share / allocated_share
                charged = active * active_weight + idle * share / allocated_share
                truth.by_workload[holding.workload] += charged
                truth.by_pod[(holding.namespace, holding.pod)] += charged
                truth.allocated[uuid] += charged
            truth.unallocated[uuid] += idle_capacity * (1.0 - allocated_share)


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Run:
    prometheus: ManagedProcess
    harness: KubeHarness
    scenario: Scenario
    exporter_alive_at_end: bool
    exporter_exit_code: int | None
    exporter_log: str
    compacted_below: int

    def wall(self, seconds_after_start: float) -> float:
        return self.harness.start_time + seconds_after_start

    def anchor(self, seconds_after_start: float) -> float:
        """Scenario time up to which the counters of the last scrape before this moment were booked."""
        booked_until = prom_scalar(
            self.prometheus, "gpucost_exporter_booked_until_timestamp_seconds", at=self.wall(seconds_after_start)
        )
        # The simulated GPUs' clock, which the exporter books on, is start_time + scenario seconds.
        return booked_until - self.harness.start_time

    def values(self, expr: str, at: float, by: tuple[str, ...]) -> dict[tuple[str, ...], float]:
        return {
            tuple(sample["metric"].get(label, "") for label in by): float(sample["value"][1])
            for sample in prom_query(self.prometheus, expr, at=self.wall(at))
        }

    def increase(self, expr: str, begin: float, end: float, by: tuple[str, ...]) -> dict[tuple[str, ...], float]:
        """Counter values at `end` minus at `begin` (a series born in between started at 0)."""
        before = self.values(expr, begin, by)
        return {key: value - before.get(key, 0.0) for key, value in self.values(expr, end, by).items()}

    def full_gpu_price(self) -> float:
        prices = self.values('gpucost_gpu_price_usd_per_hour{uuid=~"GPU-.*"}', LATE_AT, ("uuid", "pricing"))
        assert {pricing for _uuid, pricing in prices} == {"on_demand"}, prices
        assert len(set(prices.values())) == 1, prices
        return next(iter(prices.values()))

    def truth(self, begin: float, end: float) -> Truth:
        return integrate(self.scenario, self.anchor(begin), self.anchor(end), self.full_gpu_price())
