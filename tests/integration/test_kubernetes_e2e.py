"""Kubernetes attribution acceptance: fake kubelet, fake API server, simulated NVML, real Prometheus.

One module-scoped run of a simulated 8-GPU node (tests/fixtures/scenarios/
kubernetes_acceptance.yaml plus 200 short churn pods) at SPEED scenario seconds
per wall second, scraped every 5 s:

    wall s   0 ......... 55 ======== 75 ...... 90 ==== 100 ......... 166
             steady     kubelet socket gone    API server 503,
                                               compacted: 410 on resume

The run's timeline, its scenario and the ground truth it is checked against are
in gpucost_testing/kubernetes_acceptance.py: ground truth is integrated there,
independently of the exporter's engine, from the scenario timeline.  Windows
are anchored on the exporter's own
`gpucost_exporter_booked_until_timestamp_seconds` scraped together with the
counters (the counters stand at that moment: a tick is booked a few seconds
after it is sampled, once the kubelet's view of it has settled), and converted
to scenario seconds with the harness clock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from gpucost.sources.scenario import load_scenario
from gpucost_testing.kube_harness import KubeHarness
from gpucost_testing.kubernetes_acceptance import (
    APISERVER_DOWN_AT,
    APISERVER_UP_AT,
    BOOKING_DELAY,
    CHURN_FROM,
    CHURN_GPU,
    CHURN_LABELS,
    CHURN_NAMESPACE,
    CHURN_PODS,
    EARLY_AT,
    IDLE_GPU,
    JOINER_LABELS,
    JOINER_NAMESPACE,
    JOINER_POD,
    KUBELET_DOWN_AT,
    KUBELET_UP_AT,
    LATE_AT,
    MIG_GPU,
    NAMESPACE_LABELS,
    SPARE_MIG_SLICE,
    SPEED,
    TIME_SLICED_GPU,
    TRAINING_GPUS,
    UNKNOWN_DEVICE,
    Run,
    write_run_scenario,
)
from gpucost_testing.servers import (
    ManagedProcess,
    prom_query,
    prom_scalar,
    start_exporter,
    start_prometheus,
    write_prometheus_config,
)

pytestmark = pytest.mark.integration

RELATIVE_TOLERANCE = 0.005
CONSERVATION_TOLERANCE = 1e-6


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
