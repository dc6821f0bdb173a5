"""Allocation edges against a real kube-apiserver: container times written through pods/status.

The same virtual-clock node as tests/integration/test_allocation_edges.py (the gRPC
fake kubelet polled every 10 s, the exporter's sampler and providers in process),
but the pods, their status (as their kubelet would write it, through the status
subresource) and their deletion go through a real API server, which validates
them, stamps its own deletionTimestamp and sends its own watch events:

    tail        GPU 0  started 3, force-deleted at 33 with no end written (the real
                       server stamps deletionTimestamp = 33), listed by the kubelet until 43
    fifty-four  GPU 2  ran [25, 79); the kubelet lists it meanwhile
    blink       GPU 3  ran [61, 67); the kubelet lists it only at 68..72, after it ended
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gpucost.model import PodMeta
from gpucost_testing.fake_kubelet import FakeKubelet
from gpucost_testing.real_apiserver import RealApiServer
from tests.integration.edges_node import (
    GPUS,
    LABELS,
    WORKLOAD,
    EdgesNode,
    finished_status,
    running_status,
)

pytestmark = pytest.mark.integration

NODE = "ip-10-0-51-9.ec2.internal"
NAMESPACE = "ml-edges"
SAMPLE_INTERVAL = 1.0


def _started(meta: PodMeta | None) -> bool:
    return meta is not None and meta.started_at is not None


def _ended(meta: PodMeta | None) -> bool:
    return meta is not None and meta.finished_at is not None


class RealPods:
    """Pods on the real server, created bound to the node, their status written as a kubelet would."""

    def __init__(self, server: RealApiServer, node: EdgesNode) -> None:
        self._server = server
        self._node = node

    def run(self, name: str, status: dict[str, Any]) -> None:
        self._server.create_pod(NAMESPACE, name, NODE, labels=LABELS, gpus=1)
        self.write_status(name, status, _started)

    def write_status(self, name: str, status: dict[str, Any], check: Any) -> None:
        self._server.admin.merge_patch(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/status", {"status": status})
        self._node.watch_shows(name, check)

    def force_delete(self, name: str) -> None:
        self._server.admin.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}?gracePeriodSeconds=0")
        self._node.watch_shows_deleted(name)


@pytest.fixture(scope="module")
def timeline(real_apiserver: RealApiServer) -> Iterator[EdgesNode]:
    real_apiserver.create_namespace(NAMESPACE)
    real_apiserver.create_node(NODE)
    with FakeKubelet() as kubelet:
        node = EdgesNode(kubelet, real_apiserver.kubeconfig, NODE, namespace=NAMESPACE).start()
        pods = RealPods(real_apiserver, node)
        node.tick_to(3)
        pods.run("tail", running_status(3))
        node.kubelet_lists("tail", GPUS[0])
        node.tick_to(25)
        pods.run("fifty-four", running_status(25))
        node.kubelet_lists("fifty-four", GPUS[2])
        node.tick_to(33)
        # The real server stamps the deletion with its own (wall) clock, far after the virtual one:
        # no end the exporter can use, so the poll that no longer lists it ends the charge.
        pods.force_delete("tail")
        node.tick_to(43)
        node.kubelet_forgets("tail")
        node.tick_to(61)
        pods.run("blink", running_status(61))
        node.tick_to(67)
        pods.write_status("blink", finished_status(61, 67), _ended)
        node.tick_to(68)
        node.kubelet_lists("blink", GPUS[3])
        node.tick_to(72)
        node.kubelet_forgets("blink")
        node.tick_to(79)
        pods.write_status("fifty-four", finished_status(25, 79), _ended)
        node.kubelet_forgets("fifty-four")
        node.tick_to(85)
        pods.force_delete("fifty-four")
        pods.force_delete("blink")
        node.finish()
        yield node


def test_a_force_deleted_pod_keeps_every_label_on_all_its_cost(timeline: EdgesNode) -> None:
    charged = timeline.gpu_seconds_by_workload("tail")
    assert list(charged) == [WORKLOAD], charged
    # From its start to the poll at 50, the first that no longer listed it.
    assert charged[WORKLOAD] == pytest.approx(50 - 1 - 3, abs=SAMPLE_INTERVAL)


def test_a_54s_pod_on_a_10s_poll_is_charged_54s_from_the_real_servers_status(timeline: EdgesNode) -> None:
    charged = timeline.gpu_seconds_by_workload("fifty-four")
    assert list(charged) == [WORKLOAD]
    assert charged[WORKLOAD] == pytest.approx(54.0, abs=SAMPLE_INTERVAL)


def test_a_pod_that_started_and_ended_between_two_polls_is_charged_its_whole_life(timeline: EdgesNode) -> None:
    charged = timeline.gpu_seconds_by_workload("blink")
    assert list(charged) == [WORKLOAD]
    assert charged[WORKLOAD] == pytest.approx(6.0, abs=SAMPLE_INTERVAL)


def test_conservation_holds_on_every_gpu(timeline: EdgesNode) -> None:
    assert max(timeline.conservation_gaps()) < 1e-12
