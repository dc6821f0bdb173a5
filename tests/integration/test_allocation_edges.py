"""Exact to the second on a live node: the gRPC fake kubelet polled every 10 s, the fake API server.

One virtual timeline (seconds; the kubelet is polled at 0, 10, 20, ...):

    tail      GPU 0  started 3; deleted from the API server at 33 with no end time,
                     the kubelet lists it until 43: charged to the poll that no longer lists it
    ended     GPU 1  started 5, ended 33 (status written), deleted at 34, listed until 44
    fifty-four GPU 2 ran [25, 79) as its status says; the kubelet lists it meanwhile
    blink     GPU 3  ran [61, 67); the kubelet lists it only at 68..72, after it ended

and a second timeline with the API server down, where only the poll edges are known.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpucost.metrics.render import SnapshotRenderer
from gpucost.model import PodMeta
from gpucost_testing.fake_apiserver import FakeApiServer
from gpucost_testing.fake_kubelet import FakeKubelet
from tests.integration.edges_node import (
    GPUS,
    LABELS,
    WORKLOAD,
    EdgesNode,
    finished_status,
    running_status,
    wait_until,
)

pytestmark = pytest.mark.integration

NODE = "gpu-node-7"
SAMPLE_INTERVAL = 1.0


def _pod(name: str, status: dict[str, Any] | None) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "ml", "uid": f"uid-{name}", "labels": dict(LABELS)},
        "spec": {"nodeName": NODE, "containers": [{"name": "main"}]},
    }
    if status is not None:
        pod["status"] = status
    return pod


def _started(meta: PodMeta | None) -> bool:
    return meta is not None and meta.started_at is not None


def _ended(meta: PodMeta | None) -> bool:
    return meta is not None and meta.finished_at is not None


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeKubelet, FakeApiServer, Path]]:
    with FakeKubelet() as kubelet, FakeApiServer() as apiserver:
        apiserver.set_node(NODE, {})
        apiserver.put_namespace("ml", {})
        yield kubelet, apiserver, apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def timeline(cluster: tuple[FakeKubelet, FakeApiServer, Path]) -> EdgesNode:
    kubelet, apiserver, kubeconfig = cluster
    node = EdgesNode(kubelet, kubeconfig, NODE).start()

    def put(name: str, status: dict[str, Any] | None, check: Any) -> None:
        apiserver.put("pods", _pod(name, status))
        node.watch_shows(name, check)

    def delete(name: str) -> None:
        apiserver.delete_pod("ml", name)
        node.watch_shows_deleted(name)

    node.tick_to(3)
    put("tail", running_status(3), _started)
    node.kubelet_lists("tail", GPUS[0])
    node.tick_to(5)
    put("ended", running_status(5), _started)
    node.kubelet_lists("ended", GPUS[1])
    node.tick_to(25)
    put("fifty-four", running_status(25), _started)
    node.kubelet_lists("fifty-four", GPUS[2])
    node.tick_to(33)
    delete("tail")
    put("ended", finished_status(5, 33), _ended)
    node.tick_to(34)
    delete("ended")
    node.tick_to(43)
    node.kubelet_forgets("tail")
    node.tick_to(44)
    node.kubelet_forgets("ended")
    node.tick_to(61)
    put("blink", running_status(61), _started)
    node.tick_to(67)
    put("blink", finished_status(61, 67), _ended)
    node.tick_to(68)
    node.kubelet_lists("blink", GPUS[3])
    node.tick_to(72)
    node.kubelet_forgets("blink")
    node.tick_to(75)
    delete("blink")
    node.tick_to(79)
    put("fifty-four", finished_status(25, 79), _ended)
    node.kubelet_forgets("fifty-four")
    node.tick_to(85)
    delete("fifty-four")
    node.finish()
    return node


def test_a_pod_deleted_10s_before_the_kubelet_stops_listing_it_keeps_every_label_on_all_its_cost(
    timeline: EdgesNode,
) -> None:
    for pod in ("tail", "ended"):
        charged = timeline.gpu_seconds_by_workload(pod)
        assert list(charged) == [WORKLOAD], (pod, charged)
    # No end time known: charged from its start to the poll at 50 that no longer listed it.
    assert timeline.gpu_seconds_by_workload("tail")[WORKLOAD] == pytest.approx(50 - 1 - 3, abs=SAMPLE_INTERVAL)
    # Its end written before the deletion: charged to the second.
    assert timeline.gpu_seconds_by_workload("ended")[WORKLOAD] == pytest.approx(33 - 5, abs=SAMPLE_INTERVAL)


def test_a_54s_pod_on_a_10s_poll_is_charged_54s(timeline: EdgesNode) -> None:
    charged = timeline.gpu_seconds_by_workload("fifty-four")
    assert list(charged) == [WORKLOAD]
    assert charged[WORKLOAD] == pytest.approx(54.0, abs=SAMPLE_INTERVAL)
    cost = sum(counters.active_usd + counters.idle_usd
               for key, counters in timeline.sampler.snapshot().ledger.containers.items()
               if key.container.pod == "fifty-four")
    assert cost == pytest.approx(54.0 * 3.6 / 3600, abs=SAMPLE_INTERVAL * 3.6 / 3600)


def test_a_pod_that_started_and_ended_between_two_polls_is_charged_its_whole_life(timeline: EdgesNode) -> None:
    charged = timeline.gpu_seconds_by_workload("blink")
    assert list(charged) == [WORKLOAD]
    assert charged[WORKLOAD] == pytest.approx(6.0, abs=SAMPLE_INTERVAL)


def test_every_gpu_conserves_its_cost_and_edges_are_counted_by_the_api_server(timeline: EdgesNode) -> None:
    assert max(timeline.conservation_gaps()) < 1e-12
    edges = timeline.sampler.snapshot().allocation_edges
    # Four starts and three ends from the API server; the tail's end from the poll.
    assert edges == {"apiserver": 7, "kubelet_poll": 1}


def test_with_the_api_server_down_the_poll_edges_apply_and_the_health_metric_says_so(
    cluster: tuple[FakeKubelet, FakeApiServer, Path],
) -> None:
    kubelet, apiserver, kubeconfig = cluster
    apiserver.put("pods", _pod("fifty-four", running_status(-100)))  # known, but as an older pod
    node = EdgesNode(kubelet, kubeconfig, NODE).start()
    node.watch_shows("fifty-four", _started)
    apiserver.outage(True)
    wait_until(lambda: not node.api.healthy, "the exporter to see the outage")
    node.tick_to(25)
    apiserver.put("pods", _pod("fifty-four", running_status(25)))  # written, but nobody can watch it
    node.kubelet_lists("fifty-four", GPUS[2])
    node.tick_to(79)
    node.kubelet_forgets("fifty-four")
    node.tick_to(90)
    health = {h.collector: h.success for h in node.sampler.snapshot().health}
    node.finish()

    assert health["apiserver"] is False
    # Listed by the polls at 30 .. 70, gone at 80: the ticks ending at 30 .. 79.
    assert node.gpu_seconds_by_workload("fifty-four") == {WORKLOAD: pytest.approx(50.0)}
    assert node.sampler.snapshot().allocation_edges == {"apiserver": 0, "kubelet_poll": 2}
    text = SnapshotRenderer().render(node.sampler.snapshot()).decode()
    assert 'gpucost_exporter_allocation_edges_total{source="kubelet_poll"} 2.0' in text
    assert 'gpucost_exporter_collector_success{collector="apiserver"} 0.0' in text
