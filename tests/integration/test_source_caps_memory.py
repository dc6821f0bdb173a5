"""Memory is a contract: the exporter stays under the chart's 160Mi with hostile source data.

A fake API server serves 5,000 pods on the node (each with unmapped labels and a
3 KB last-applied annotation) plus pods with a 64 MB annotation, once in the
first list and once arriving through the watch; the fake kubelet lists 5,000
more containers holding a non-GPU resource.  The exporter must keep running,
attribute the scenario's GPUs with the right workload labels, count the cuts,
and its resident memory (now and at its peak) must stay well under the limit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpucost.sources.apiserver import ApiServerSource
from gpucost.sources.kept_metadata import MAX_VALUE_CHARS, KeptKeys
from gpucost.sources.workload_labels import DEFAULT_WORKLOAD_LABEL_CONFIG
from gpucost.truncation import LONG_VALUE, OVERSIZED_STRING, SOURCE_APISERVER
from gpucost_testing.fake_apiserver import FakeApiServer
from gpucost_testing.kube_harness import KubeHarness
from gpucost_testing.servers import REPO_ROOT, start_exporter, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SCENARIO = REPO_ROOT / "tests/fixtures/scenarios/kubernetes_acceptance.yaml"
# The chart's memory limit (160Mi).  Measured on this test's load before the caps: 205 MiB resident,
# 368 MiB at peak; after: 113 MiB resident, 149 MiB at peak (the exporter alone: 101 MiB).  The
# peak is the 5,000-pod list read as one page, because the fake API server ignores `limit`; a real
# one pages at 500 pods, a tenth of that.  So: a margin on what stays resident, and never over
# the limit at the peak.
CHART_LIMIT_MIB = 160
RESIDENT_CEILING_MIB = CHART_LIMIT_MIB - 30
HUGE = "z" * (64 << 20)
BULK_PODS = 5000
BULK_NAMESPACE = "bulk"
NODE = "gpu-node-a"
NOISE_LABELS = {f"noise.example.com/key-{n}": "x" * 60 for n in range(10)}
LAST_APPLIED = {"kubectl.kubernetes.io/last-applied-configuration": "{" + "y" * 3000 + "}"}


def memory_mib(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    return {key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) // 1024  # type: ignore[union-attr]
            for key in ("VmRSS", "VmHWM")}


def eventually(check: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


# --- the source alone, with the exporter's client (lightkube, bodies streamed) ----------------------


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as fake:
        fake.put_namespace("ml", {"team": "research", "noise": "n"})
        fake.set_node(NODE, {"node.kubernetes.io/instance-type": "p4d.24xlarge"})
        yield fake


def test_the_source_keeps_only_mapped_keys_and_cuts_huge_values_in_list_and_watch(
    server: FakeApiServer, tmp_path: Path
) -> None:
    server.add_pod("ml", "listed", node_name=NODE, labels={"team": "a", "noise": "n", "model": "m" * 1000},
                   annotations={"evil": HUGE, **LAST_APPLIED})
    source = ApiServerSource(NODE, kubeconfig=str(server.write_kubeconfig(tmp_path / "kubeconfig")),
                             in_cluster=False, resync_backoff_max_seconds=0.2, watch_timeout_seconds=2,
                             kept_keys=KeptKeys.for_workload_labels(DEFAULT_WORKLOAD_LABEL_CONFIG))
    source.start()
    try:
        eventually(lambda: source.synced, what="initial sync")
        listed = source.pod("ml", "listed")
        assert listed is not None
        assert listed.labels == {"team": "a", "model": "m" * MAX_VALUE_CHARS}
        assert listed.annotations == {}
        assert source.namespace_labels("ml") == {"team": "research"}
        assert source.truncation_counts() == {(SOURCE_APISERVER, OVERSIZED_STRING): 1,
                                              (SOURCE_APISERVER, LONG_VALUE): 1}

        server.add_pod("ml", "watched", node_name=NODE, labels={"team": "b"},
                       annotations={"gpucost.io/other": "o", "evil": HUGE})
        eventually(lambda: source.pod("ml", "watched") is not None, what="the watched pod")
        watched = source.pod("ml", "watched")
        assert watched is not None and (watched.labels, watched.annotations) == ({"team": "b"}, {})
        assert source.truncation_counts()[(SOURCE_APISERVER, OVERSIZED_STRING)] == 2
        assert source.healthy
    finally:
        source.stop()


# --- the whole exporter, measured ---------------------------------------------------------------------


def metric_value(body: str, name: str, **labels: str) -> float | None:
    for line in body.splitlines():
        if line.startswith(name + "{") and all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_exporter_memory_stays_under_the_chart_limit_with_5000_pods_and_a_64mb_annotation(tmp_path: Path) -> None:
    with KubeHarness(SCENARIO, tmp_path, start_time=time.time(), speed=1.0, socket_in_temp_dir=True) as harness:
        apiserver = harness.apiserver
        apiserver.put_namespace(BULK_NAMESPACE, {"team": "bulk"})
        for number in range(BULK_PODS):
            apiserver.add_pod(BULK_NAMESPACE, f"filler-{number}", node_name=harness.node_name,
                              labels={"team": "filler", **NOISE_LABELS}, annotations=LAST_APPLIED)
            harness.add_unknown_device(f"eth{number}", namespace=BULK_NAMESPACE, pod=f"filler-{number}",
                                       resource="example.com/nic")
        apiserver.add_pod(BULK_NAMESPACE, "huge-listed", node_name=harness.node_name,
                          labels={"team": "huge"}, annotations={"evil": HUGE})
        harness.refresh()
        exporter = start_exporter(tmp_path, harness.exporter_args())
        try:
            url = exporter.base_url + "/metrics"

            def scrape() -> str:
                import urllib.request

                with urllib.request.urlopen(url, timeout=10) as response:
                    return str(response.read().decode())

            def attributed() -> bool:
                body = scrape()
                return (metric_value(body, "gpucost_exporter_collector_success", collector="apiserver") == 1.0
                        and metric_value(body, "gpucost_container_gpu_cost_usd_total", team="research") is not None)

            wait_for(attributed, timeout=60, what="attribution with labels")
            # A hostile update arrives through the watch, on a pod that holds a GPU.
            training = next(pod for pod in harness.scenario.pods if pod.labels.get("team") == "research")
            name = training.identity(0)[0]
            apiserver.modify_pod(training.namespace, name, labels={**training.labels, **NOISE_LABELS},
                                 annotations={"evil": HUGE})

            def cut_twice() -> bool:
                count = metric_value(scrape(), "gpucost_exporter_source_truncated_total",
                                     source=SOURCE_APISERVER, reason=OVERSIZED_STRING)
                return count is not None and count >= 2

            wait_for(cut_twice, timeout=30, what="both huge annotations counted")
            time.sleep(3)  # a few more ticks with everything loaded
            body = scrape()
            memory = memory_mib(exporter.pid)
            assert memory["VmRSS"] < RESIDENT_CEILING_MIB, memory
            assert memory["VmHWM"] < CHART_LIMIT_MIB, memory
            for collector in ("apiserver", "podresources", "nvml", "pricing"):
                assert metric_value(body, "gpucost_exporter_collector_success", collector=collector) == 1.0
            # The pod that carried the annotation keeps its mapped labels and its cost.
            assert metric_value(body, "gpucost_container_gpu_cost_usd_total", pod=name, team="research",
                                component="active")
            assert metric_value(body, "gpucost_exporter_unmapped_devices") is None  # non-GPU ids never count
            assert "noise.example.com" not in body and "zzzz" not in body
        finally:
            exporter.stop()
