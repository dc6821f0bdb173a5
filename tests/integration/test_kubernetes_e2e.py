"""Kubernetes attribution acceptance: fake kubelet, fake API server, simulated NVML, real Prometheus.

One module-scoped run of a simulated 8-GPU node (tests/fixtures/scenarios/
kubernetes_acceptance.yaml plus 200 short churn pods generated here) at
SPEED scenario seconds per wall second, scraped every 5 s:

    wall s   0 ......... 55 ======== 75 ...... 90 ==== 100 ......... 166
             steady     kubelet socket gone    API server 503,
                                               compacted: 410 on resume

Ground truth is integrated here, independently of the exporter's engine,
from the scenario timeline: per half scenario second, each held device's busy
time split between its holders by per-process utilization, its idle time by the
holders' shares, and the idle time of replicas no one holds unallocated.  Windows are anchored on the exporter's own
`gpucost_exporter_booked_until_timestamp_seconds` scraped together with the
counters (the counters stand at that moment: a tick is booked a few seconds
after it is sampled, once the kubelet's view of it has settled), and converted
to scenario seconds with the harness clock.
"""

from __future__ import annotations

import random
import re
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from gpucost.sources.scenario import REPLICA_SEPARATOR, Scenario, ScenarioGpu, load_scenario
from gpucost_testing.kube_harness import KubeHarness
from gpucost_testing.servers import (
    REPO_ROOT,
    ManagedProcess,
    prom_query,
    prom_scalar,
    start_exporter,
    start_prometheus,
    write_prometheus_config,
)

pytestmark = pytest.mark.integration

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

RELATIVE_TOLERANCE = 0.005
CONSERVATION_TOLERANCE = 1e-6
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


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("k8s-e2e")
    scenario_file = write_run_scenario(workdir / "kubernetes_run.yaml")
    scenario = load_scenario(scenario_file)
    start = time.time() + 1.0
    harness = KubeHarness(scenario, workdir, start_time=start, speed=SPEED, namespace_labels=NAMESPACE_LABELS)
    exporter: ManagedProcess | None = None
    prometheus: ManagedProcess | None = None
    try:
        harness.start()
        harness.add_unknown_device(UNKNOWN_DEVICE, namespace="default", pod="stale-plugin-pod")
        # Retention counts scenario seconds: keep every churn pod's series to the end of the run.
        exporter = start_exporter(workdir, [*harness.exporter_args(), "--sample.interval=1s", "--retention=2h"])
        config = write_prometheus_config(
            workdir / "prometheus.yml", scrape_targets=[f"127.0.0.1:{exporter.port}"], scrape_interval="5s"
        )
        prometheus = start_prometheus(workdir, config)

        _sleep_until(start + KUBELET_DOWN_AT)
        harness.stop_kubelet()
        _sleep_until(start + KUBELET_UP_AT)
        harness.start_kubelet()

        _sleep_until(start + APISERVER_DOWN_AT)
        harness.apiserver_outage(True)
        _sleep_until(start + APISERVER_UP_AT)
        # The pods changed while the server was away and their history is compacted:
        # the exporter's watch resumes from a version that is gone and must relist.
        compacted_below = harness.apiserver.compact()
        harness.apiserver_outage(False)

        _sleep_until(start + LATE_AT + 1.0)
        alive = exporter.alive()
        exit_code = exporter.stop()
        yield Run(prometheus, harness, scenario, alive, exit_code, exporter.log_text(), compacted_below)
    finally:
        if exporter is not None:
            exporter.stop()
        if prometheus is not None:
            prometheus.stop()
        harness.stop()


# --- cost -------------------------------------------------------------------------------------


def _assert_close(recorded: float, expected: float, what: object) -> None:
    assert recorded == pytest.approx(expected, rel=RELATIVE_TOLERANCE, abs=1e-9), what


def test_cost_by_team_and_model_matches_the_scenario_before_the_outages(run: Run) -> None:
    truth = run.truth(EARLY_AT, KUBELET_DOWN_AT - 1.0)
    recorded = run.increase(
        "sum by (team, model) (gpucost_workload_gpu_cost_usd_total)", EARLY_AT, KUBELET_DOWN_AT - 1.0,
        ("team", "model"),
    )
    expected = {key: value for key, value in truth.by_workload.items() if value > 0}
    assert len(expected) == 8, expected
    for workload, cost in expected.items():
        _assert_close(recorded.get(workload, 0.0), cost, workload)
    strays = {key: value for key, value in recorded.items() if key not in expected}
    assert sum(strays.values()) <= RELATIVE_TOLERANCE * sum(expected.values()), strays


def test_long_running_workloads_are_charged_exactly_through_both_outages(run: Run) -> None:
    truth = run.truth(EARLY_AT, LATE_AT)
    recorded = run.increase(
        "sum by (team, model) (gpucost_workload_gpu_cost_usd_total)", EARLY_AT, LATE_AT, ("team", "model")
    )
    # Churn pods and the pod that started during the API outage were unlabelled for a while, by design.
    relabelled = {tuple(CHURN_LABELS.values()), tuple(JOINER_LABELS.values())}
    static = {key: value for key, value in truth.by_workload.items() if key not in relabelled}
    assert len(static) == 7
    assert ("trust", "moderation") in static, "the namespace's team label covers the unlabelled pod"
    for workload, cost in static.items():
        _assert_close(recorded.get(workload, 0.0), cost, workload)


def test_two_hundred_short_pods_are_charged_their_summed_cost(run: Run) -> None:
    begin, end = run.anchor(EARLY_AT), run.anchor(LATE_AT)
    truth = run.truth(EARLY_AT, LATE_AT)
    churned = [pod for pod in run.scenario.pods if pod.namespace == CHURN_NAMESPACE]
    in_window = [pod for pod in churned if pod.end is not None and pod.end > begin and pod.start < end]
    assert len(churned) == CHURN_PODS
    assert len(in_window) >= 0.9 * CHURN_PODS, "most of the churn must happen inside the measured window"
    expected = sum(cost for (namespace, _pod), cost in truth.by_pod.items() if namespace == CHURN_NAMESPACE)
    recorded = run.increase(
        f'sum by (pod) (gpucost_container_gpu_cost_usd_total{{namespace="{CHURN_NAMESPACE}"}})',
        EARLY_AT, LATE_AT, ("pod",),
    )
    _assert_close(sum(recorded.values()), expected, "churn pods")


def test_every_churn_pod_that_lived_four_seconds_outside_the_kubelet_outage_has_a_cost_series(run: Run) -> None:
    charged = run.values(
        f'gpucost_container_gpu_cost_usd_total{{namespace="{CHURN_NAMESPACE}"}} > 0', LATE_AT, ("pod",)
    )
    down, up = KUBELET_DOWN_AT * SPEED, (KUBELET_UP_AT + 2.0) * SPEED
    first, last = CHURN_FROM, (LATE_AT - 5.0) * SPEED
    visible = [
        pod.name
        for pod in run.scenario.pods
        if pod.namespace == CHURN_NAMESPACE and pod.end is not None
        and pod.end - pod.start >= 4.0 * SPEED and first <= pod.start and pod.end <= last
        and (pod.end <= down or pod.start >= up)
    ]
    assert len(visible) >= CHURN_PODS // 3
    missing = sorted(set(visible) - {pod for (pod,) in charged})
    assert not missing, missing


def test_attributed_plus_unallocated_equals_gpu_cost_for_every_gpu(run: Run) -> None:
    gaps = run.values(
        "abs(gpucost_gpu_allocated_cost_usd_total + gpucost_gpu_unallocated_cost_usd_total"
        " - gpucost_gpu_cost_usd_total)", LATE_AT, ("uuid",),
    )
    assert len(gaps) == len(run.scenario.devices())
    assert max(gaps.values()) < CONSERVATION_TOLERANCE, gaps
    container_gaps = run.values(
        "abs(sum by (uuid) (gpucost_container_gpu_cost_usd_total) - on (uuid)"
        " gpucost_gpu_allocated_cost_usd_total)", LATE_AT, ("uuid",),
    )
    held = run.values("gpucost_gpu_allocated_cost_usd_total > 0", LATE_AT, ("uuid",))
    assert container_gaps.keys() == held.keys()
    assert max(container_gaps.values()) < CONSERVATION_TOLERANCE, container_gaps


def test_unallocated_cost_is_the_unheld_replica_the_spare_mig_slice_and_the_idle_gpu(run: Run) -> None:
    # Until the spare slice is taken, during the API server outage.
    truth = run.truth(EARLY_AT, APISERVER_DOWN_AT)
    recorded = run.increase("gpucost_gpu_unallocated_cost_usd_total", EARLY_AT, APISERVER_DOWN_AT, ("uuid",))
    for uuid, cost in truth.unallocated.items():
        if cost > 0:
            _assert_close(recorded[(uuid,)], cost, uuid)
        else:
            assert recorded[(uuid,)] < 1e-9, uuid
    assert truth.unallocated[IDLE_GPU] > 0 and truth.unallocated[TIME_SLICED_GPU] > 0
    assert truth.unallocated[SPARE_MIG_SLICE] > 0


# --- outages -------------------------------------------------------------------------------------


def _success(run: Run, collector: str, window: str, at: float, over: str) -> float:
    return prom_scalar(
        run.prometheus,
        f'{over}_over_time(gpucost_exporter_collector_success{{collector="{collector}"}}[{window}])',
        at=run.wall(at),
    )


def test_the_exporter_survives_both_outages_without_a_restart(run: Run) -> None:
    assert run.exporter_alive_at_end
    assert run.exporter_exit_code == 0
    assert "Traceback" not in run.exporter_log
    resets = prom_query(run.prometheus, "resets(gpucost_gpu_cost_usd_total[10m])", at=run.wall(LATE_AT))
    assert resets and all(float(sample["value"][1]) == 0 for sample in resets)


def test_podresources_health_is_zero_while_the_kubelet_socket_is_gone_and_one_after(run: Run) -> None:
    assert _success(run, "podresources", "10s", KUBELET_DOWN_AT - 1.0, "min") == 1
    assert _success(run, "podresources", "15s", KUBELET_UP_AT - 0.5, "max") == 0
    assert _success(run, "podresources", "10s", KUBELET_UP_AT + 14.0, "min") == 1
    assert _success(run, "apiserver", "20s", KUBELET_UP_AT, "min") == 1, "the kubelet outage is its own"


def test_apiserver_health_is_zero_during_its_outage_and_one_after_the_410_relist(run: Run) -> None:
    assert _success(run, "apiserver", "10s", APISERVER_DOWN_AT - 1.0, "min") == 1
    assert _success(run, "apiserver", "6s", APISERVER_UP_AT - 0.5, "max") == 0
    assert _success(run, "apiserver", "10s", LATE_AT, "min") == 1
    resumed = [
        request for request in run.harness.apiserver.requests
        if request.path == "/api/v1/pods" and request.is_watch
        and 0 < int(request.query.get("resourceVersion") or 0) < run.compacted_below
    ]
    assert resumed, "a watch tried to resume from before the compaction"
    relists = [request for request in run.harness.apiserver.requests
               if request.path == "/api/v1/pods" and not request.is_watch]
    assert len(relists) >= 2, "the 410 made the exporter list the pods again"


def test_gpus_whose_allocation_did_not_change_lose_no_cost_while_the_kubelet_is_away(run: Run) -> None:
    begin, end = KUBELET_DOWN_AT - 1.0, KUBELET_UP_AT + 6.0
    truth = run.truth(begin, end)
    allocated = run.increase("gpucost_gpu_allocated_cost_usd_total", begin, end, ("uuid",))
    unallocated = run.increase("gpucost_gpu_unallocated_cost_usd_total", begin, end, ("uuid",))
    steady = [device.uuid for device in run.scenario.devices() if device.uuid != CHURN_GPU]
    for uuid in steady:
        if truth.allocated[uuid] > 0:
            _assert_close(allocated[(uuid,)], truth.allocated[uuid], uuid)
        if truth.unallocated[uuid] > 0:
            _assert_close(unallocated[(uuid,)], truth.unallocated[uuid], uuid)
    assert sum(truth.allocated[uuid] for uuid in steady) > 0


def _pods_running_between(run: Run, begin: float, end: float) -> list[str]:
    """Churn pods that ran through the whole wall interval [begin, end] after start."""
    return [
        pod.name for pod in run.scenario.pods
        if pod.namespace == CHURN_NAMESPACE and pod.end is not None
        and pod.start <= begin * SPEED and pod.end >= end * SPEED
    ]


def _recovered_at(run: Run, collector: str, after: float) -> float:
    """Seconds after start of the first scrape after `after` with the collector healthy again."""
    for seconds in range(int(after), int(LATE_AT)):
        healthy = prom_scalar(
            run.prometheus, f'gpucost_exporter_collector_success{{collector="{collector}"}}', at=run.wall(seconds)
        )
        if healthy == 1:
            return float(seconds)
    raise AssertionError(f"{collector} never recovered")


def test_a_pod_that_started_during_the_api_outage_is_charged_unlabelled_then_labelled_after_the_relist(
    run: Run,
) -> None:
    recovered = _recovered_at(run, "apiserver", APISERVER_UP_AT)
    assert recovered <= APISERVER_UP_AT + 35.0
    series = f'sum by (team, model) (gpucost_container_gpu_cost_usd_total{{pod="{JOINER_POD}"}})'
    labelled = tuple(JOINER_LABELS.values())
    assert run.values(series, LATE_AT, ("team", "model")).keys() == {("", ""), labelled}
    # Ticks sampled before the relist are booked (unlabelled) up to a booking delay after it.
    relabelled = recovered + 3.0 + BOOKING_DELAY
    truth = run.truth(relabelled, LATE_AT)
    recorded = run.increase(series, relabelled, LATE_AT, ("team", "model"))
    _assert_close(recorded[labelled], truth.by_pod[(JOINER_NAMESPACE, JOINER_POD)], JOINER_POD)
    assert recorded.get(("", ""), 0.0) == 0.0, "after the relist nothing more goes to the unlabelled series"


def test_churn_pods_that_started_during_the_kubelet_outage_are_charged_after_it(run: Run) -> None:
    running = _pods_running_between(run, KUBELET_UP_AT + 1.0, KUBELET_UP_AT + 5.0)
    assert running
    began_in_outage = [name for name in running if _start_of(run, name) >= KUBELET_DOWN_AT * SPEED]
    assert began_in_outage
    charged = run.values(
        f'gpucost_container_gpu_cost_usd_total{{namespace="{CHURN_NAMESPACE}"}} > 0', LATE_AT, ("pod",)
    )
    missing = sorted(set(running) - {pod for (pod,) in charged})
    assert not missing, missing


def _start_of(run: Run, name: str) -> float:
    return next(pod.start for pod in run.scenario.pods if pod.name == name)


# --- sharing and unmapped devices -------------------------------------------------------------------


def test_sharing_info_reports_each_gpus_mode(run: Run) -> None:
    modes = {uuid: mode for uuid, mode in run.values("gpucost_gpu_sharing_info", LATE_AT, ("uuid", "mode"))}
    expected: dict[str, str] = dict.fromkeys(TRAINING_GPUS, "exclusive")
    expected |= {TIME_SLICED_GPU: "time_slicing", CHURN_GPU: "time_slicing", IDLE_GPU: "none", MIG_GPU: "mig"}
    expected |= {mig.uuid: "mig" for mig in run.scenario.gpu(MIG_GPU).mig_slices}
    assert modes == expected


def test_unmapped_devices_counts_the_unknown_device_id(run: Run) -> None:
    unmapped = run.values("gpucost_exporter_unmapped_devices", LATE_AT, ("resource",))
    assert unmapped == {("nvidia.com/gpu",): 1.0}
    assert re.search(rf"device id '{UNKNOWN_DEVICE}'", run.exporter_log)

