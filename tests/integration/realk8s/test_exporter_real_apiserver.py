"""The exporter against a real kube-apiserver, as the chart's ServiceAccount.

One module-scoped run: helm installs the chart (its ClusterRole is all the exporter may
use), the exporter gets a TokenRequest token of the chart's ServiceAccount in a
kubeconfig, and watches a real API server (with the watch cache on, as in a cluster,
and an audit log of that ServiceAccount's pod and namespace requests) while a fake
kubelet and a simulated NVML play one 4-GPU node (real_node.RealClusterNode):

    steady       trainer (research, 2 GPUs), api (team from its namespace: serving, 1 GPU)
    changed      trainer relabelled to platform; namespace relabelled to inference;
                 api deleted and recreated (new uid); a batch job takes the 4th GPU
    restarted    etcd compacted, kube-apiserver killed (health 0) and started again: the
                 watches resume from their resourceVersion, get a real 410 Gone and relist
    after        trainer relabelled to training, seen through the new watch

Each phase's cost per team is checked over a window between two scrapes, against
price x GPUs held x the time between the two samples the scrapes show; windows open
once the exporter shows the phase, so label propagation delay is not part of them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpucost_testing.real_apiserver import RealApiServer, RealClusterUnavailable, service_account_user
from gpucost_testing.servers import ManagedProcess, start_exporter
from tests.integration.realk8s.chart_release import Helm
from tests.integration.realk8s.real_node import RealClusterNode

pytestmark = pytest.mark.integration

RELEASE_NAMESPACE = "gpucost"
EXPORTER_ACCOUNT = "gpucost"  # release "gpucost": the chart's full name, and its ServiceAccount's
NODE = "ip-10-0-44-17.ec2.internal"
NODE_LABELS = {
    "node.kubernetes.io/instance-type": "p4de.24xlarge",
    "topology.kubernetes.io/region": "us-east-1",
    "eks.amazonaws.com/capacityType": "ON_DEMAND",
}
GPUS = tuple(f"GPU-7c1d2e3f-000{n}-4f10-8a00-00000000c00{n}" for n in range(4))
WINDOW_SECONDS = 8.0
RELATIVE_TOLERANCE = 0.005
CONSERVATION_TOLERANCE = 1e-6
SECONDS_PER_HOUR = 3600.0
AUDIT_POLICY = f"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["{service_account_user(RELEASE_NAMESPACE, EXPORTER_ACCOUNT)}"]
    resources: [{{group: "", resources: ["pods", "namespaces"]}}]
  - level: None
"""

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(exporter: ManagedProcess) -> Samples:
    with urllib.request.urlopen(f"{exporter.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return samples


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    summed: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, []):
        summed[labels.get(label, "")] += value
    return dict(summed)


def one(samples: Samples, name: str, **match: str) -> float:
    [value] = [value for labels, value in samples.get(name, []) if all(labels.get(k) == v for k, v in match.items())]
    return value


def apiserver_health(samples: Samples) -> float:
    return one(samples, "gpucost_exporter_collector_success", collector="apiserver")


@dataclass
class Window:
    """Cost per team between two scrapes, and the seconds of booked ticks between them.

    Counters lag the samples by the booking delay, so the window is timed by what was booked.
    """

    begin: Samples
    end: Samples

    @property
    def seconds(self) -> float:
        stamp = "gpucost_exporter_booked_until_timestamp_seconds"
        return one(self.end, stamp) - one(self.begin, stamp)

    def cost_by_team(self) -> dict[str, float]:
        name = "gpucost_workload_gpu_cost_usd_total"
        before = by_label(self.begin, name, "team")
        return {team: value - before.get(team, 0.0) for team, value in by_label(self.end, name, "team").items()}


@dataclass
class Run:
    price_per_gpu_hour: float
    windows: dict[str, Window]
    last: Samples
    health_during_restart: float
    health_after_restart: float
    restart_seconds: float
    compacted_revision: int
    restarted_at: float
    exporter_log: str
    exporter_exit_code: int | None
    audit: list[dict[str, Any]] = field(default_factory=list)
    uids: dict[str, str] = field(default_factory=dict)


def wait_until(
    exporter: ManagedProcess, condition: Callable[[Samples], bool], what: str, timeout: float = 60.0
) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(exporter)
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"the exporter did not show {what} within {timeout:.0f}s")
        time.sleep(0.5)


def charging(exporter: ManagedProcess, teams: set[str], gone: set[str]) -> Callable[[Samples], bool]:
    """True once, over the last second, exactly `teams` are charged and `gone` no longer are."""
    previous: list[Samples] = [scrape(exporter)]

    def check(samples: Samples) -> bool:
        window = Window(previous[0], samples)
        try:
            if window.seconds < 1.0:
                return False
        except ValueError:  # no sample yet
            previous[0] = samples
            return False
        previous[0] = samples
        grew = {team for team, cost in window.cost_by_team().items() if cost > 0}
        return teams <= grew and not grew & gone

    return check


def measure(exporter: ManagedProcess, begin: Samples) -> Window:
    time.sleep(WINDOW_SECONDS)
    return Window(begin, scrape(exporter))


def patch_labels(server: RealApiServer, path: str, labels: Mapping[str, str | None]) -> None:
    server.admin.merge_patch(path, {"metadata": {"labels": dict(labels)}})


def crash_and_restart(server: RealApiServer, exporter: ManagedProcess) -> tuple[float, float]:
    """Kill kube-apiserver (a crash: no graceful drain), wait until the exporter's health shows it,
    then start it again on the same etcd; (the health seen while it was down, seconds it was away)."""
    assert server.apiserver is not None
    server.apiserver.signal(signal.SIGKILL)
    down = wait_until(exporter, lambda samples: apiserver_health(samples) == 0.0, "the API server outage", 30)
    away = server.restart_apiserver()
    return apiserver_health(down), away


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("exporter-real-apiserver")
    policy = workdir / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY, encoding="utf-8")
    audit_log = workdir / "audit.log"
    server = RealApiServer(workdir / "cluster", extra_args=[
        f"--audit-policy-file={policy}", f"--audit-log-path={audit_log}", "--audit-log-format=json",
    ])  # fmt: skip
    missing = None
    try:
        server.start()
    except RealClusterUnavailable as err:
        missing = str(err)
    if missing is not None:
        pytest.fail(missing, pytrace=False)
    node = RealClusterNode(
        server, workdir / "node", node_name=NODE, node_labels=NODE_LABELS, gpus=GPUS, start_time=time.time()
    )
    exporter: ManagedProcess | None = None
    try:
        server.create_namespace(RELEASE_NAMESPACE)
        Helm(server, workdir).install(RELEASE_NAMESPACE, RELEASE_NAMESPACE)
        server.create_namespace("research")
        server.create_namespace("serving", labels={"team": "serving"})
        server.create_namespace("batch")
        node.start()
        uids = {"trainer": node.run_pod("research", "trainer-0", GPUS[:2], labels={"team": "research", "model": "llm"})}
        uids["api"] = node.run_pod("serving", "api-0", GPUS[2:3], labels={"model": "chat"})

        token = server.service_account_token(RELEASE_NAMESPACE, EXPORTER_ACCOUNT)
        kubeconfig = server.token_kubeconfig(token, workdir / "exporter.kubeconfig")
        exporter = start_exporter(workdir, node.exporter_args(kubeconfig))
        windows: dict[str, Window] = {}

        # --- steady
        begin = wait_until(exporter, charging(exporter, {"research", "serving"}, set()), "research and serving")
        windows["steady"] = measure(exporter, begin)

        # --- changed: relabels, a namespace label, a pod recreated under its name, a new pod
        patch_labels(server, "/api/v1/namespaces/research/pods/trainer-0", {"team": "platform"})
        patch_labels(server, "/api/v1/namespaces/serving", {"team": "inference"})
        node.delete_pod("serving", "api-0")
        uids["api-again"] = node.run_pod("serving", "api-0", GPUS[2:3], labels={"model": "chat"})
        node.run_pod("batch", "job-1", GPUS[3:], labels={"team": "batch", "model": "sweep"})
        begin = wait_until(
            exporter, charging(exporter, {"platform", "inference", "batch"}, {"research", "serving"}), "the changes"
        )
        windows["changed"] = measure(exporter, begin)

        # --- restarted: compacted history, then a restart so the rebuilt watch cache forgets it
        compacted = server.compact_etcd()
        before_crash = scrape(exporter)
        assert apiserver_health(before_crash) == 1.0
        restarted_at = time.time()
        during, away = crash_and_restart(server, exporter)
        after = wait_until(exporter, lambda s: apiserver_health(s) == 1.0, "the API server back", timeout=90)
        windows["through the outage"] = Window(before_crash, after)  # cached labels keep charging
        windows["restarted"] = measure(exporter, after)

        # --- after: a change made now reaches the exporter through the relisted, re-established watch
        patch_labels(server, "/api/v1/namespaces/research/pods/trainer-0", {"team": "training"})
        begin = wait_until(exporter, charging(exporter, {"training"}, {"platform"}), "the relabel after the restart")
        windows["after"] = measure(exporter, begin)
        last = windows["after"].end
        price = one(last, "gpucost_gpu_price_usd_per_hour", uuid=GPUS[0])

        exit_code = exporter.stop()
        audit = [json.loads(line) for line in audit_log.read_text(encoding="utf-8").splitlines() if line.strip()]
        yield Run(
            price, windows, last, during, apiserver_health(after), away, compacted, restarted_at,
            exporter.log_text(), exit_code, audit, uids,
        )  # fmt: skip
    finally:
        if exporter is not None:
            exporter.stop()
        node.stop()
        server.stop()


# --- cost -----------------------------------------------------------------------------------------

EXPECTED_GPUS = {
    "steady": {"research": 2, "serving": 1},
    "changed": {"platform": 2, "inference": 1, "batch": 1},
    "through the outage": {"platform": 2, "inference": 1, "batch": 1},
    "restarted": {"platform": 2, "inference": 1, "batch": 1},
    "after": {"training": 2, "inference": 1, "batch": 1},
}


def test_the_node_is_priced_from_its_labels_on_the_real_api_server(run: Run) -> None:
    prices = {labels["uuid"]: value for labels, value in run.last["gpucost_gpu_price_usd_per_hour"]}
    assert set(prices) == set(GPUS)
    assert len(set(prices.values())) == 1 and run.price_per_gpu_hour > 0, prices


@pytest.mark.parametrize("phase", list(EXPECTED_GPUS))
def test_cost_per_team_matches_the_gpus_each_team_held(run: Run, phase: str) -> None:
    window = run.windows[phase]
    assert window.seconds >= 3.0, "too short a window to tell 0.5 % apart"
    recorded = {team: cost for team, cost in window.cost_by_team().items() if cost != 0}
    expected = {
        team: gpus * run.price_per_gpu_hour * window.seconds / SECONDS_PER_HOUR
        for team, gpus in EXPECTED_GPUS[phase].items()
    }
    assert recorded.keys() == expected.keys(), recorded
    for team, cost in expected.items():
        assert recorded[team] == pytest.approx(cost, rel=RELATIVE_TOLERANCE), (phase, team)


def test_attributed_plus_unallocated_is_the_gpu_cost_and_containers_add_up(run: Run) -> None:
    last = run.last
    for uuid in GPUS:
        gpu = one(last, "gpucost_gpu_cost_usd_total", uuid=uuid)
        allocated = one(last, "gpucost_gpu_allocated_cost_usd_total", uuid=uuid)
        unallocated = one(last, "gpucost_gpu_unallocated_cost_usd_total", uuid=uuid)
        assert gpu > 0
        assert abs(allocated + unallocated - gpu) < CONSERVATION_TOLERANCE, uuid
        containers = sum(v for labels, v in last["gpucost_container_gpu_cost_usd_total"] if labels["uuid"] == uuid)
        assert abs(containers - allocated) < CONSERVATION_TOLERANCE, uuid


def test_the_recreated_pod_is_a_new_object(run: Run) -> None:
    assert run.uids["api"] != run.uids["api-again"]


# --- the restart -------------------------------------------------------------------------------------


def test_health_shows_the_restart_and_the_recovery(run: Run) -> None:
    assert run.restart_seconds > 0
    assert run.health_during_restart == 0.0
    assert run.health_after_restart == 1.0
    assert one(run.last, "gpucost_exporter_collector_success", collector="apiserver") == 1.0


def test_the_exporter_ran_through_without_a_traceback(run: Run) -> None:
    assert run.exporter_exit_code == 0
    assert "Traceback" not in run.exporter_log


def _exporter_requests(run: Run, resource: str, verb: str, *, after: float) -> list[dict[str, Any]]:
    found = []
    for event in run.audit:
        ref = event.get("objectRef") or {}
        received = dt.datetime.fromisoformat(str(event["requestReceivedTimestamp"])).timestamp()
        if ref.get("resource") == resource and event.get("verb") == verb and received >= after:
            found.append(event)
    return found


def _resource_version(event: Mapping[str, Any]) -> int:
    match = re.search(r"resourceVersion=(\d+)", str(event.get("requestURI", "")))
    return int(match.group(1)) if match else 0


def test_after_the_restart_the_watch_resumes_from_its_version_gets_410_gone_and_relists(run: Run) -> None:
    # The exporter's own account of it.
    expired = [int(v) for v in re.findall(r"watch: version (\d+) expired; relisting", run.exporter_log)]
    assert expired, "the exporter never saw a 410 Gone"
    assert all(0 < version < run.compacted_revision for version in expired), expired
    # The real server's account: a watch from a compacted version, then a fresh list, both as the ServiceAccount.
    resumed = [
        event
        for event in _exporter_requests(run, "pods", "watch", after=run.restarted_at)
        if 0 < _resource_version(event) < run.compacted_revision
    ]
    assert resumed, "no pod watch resumed from a version older than the compaction"
    relists = _exporter_requests(run, "pods", "list", after=run.restarted_at)
    assert relists, "the exporter did not list the pods again after the 410"
    users = {str(event["user"]["username"]) for event in resumed + relists}
    assert users == {service_account_user(RELEASE_NAMESPACE, EXPORTER_ACCOUNT)}
