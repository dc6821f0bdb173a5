"""Whole-node cost's inputs from the API server: container requests and the node's allocatable, kept small."""

from __future__ import annotations

import json
from pathlib import Path

from gpucost.sources.apiserver_cache import MetadataCache, node_info_from_object
from gpucost.sources.kept_metadata import NODE_KEYS, KeptKeys, KubeObject, decode_objects
from gpucost.truncation import INVALID_QUANTITY, LONG_VALUE, SOURCE_APISERVER, TruncationCounter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"
GIB = 2.0**30
MIB = 2.0**20


def _pods(counter: TruncationCounter) -> dict[str, KubeObject]:
    body = (FIXTURES / "cpu_node_pods.json").read_bytes()
    page = decode_objects([body[:700], body[700:]], KeptKeys().pods, counter, SOURCE_APISERVER)
    return {item.name: item for item in page["items"]}


def test_requests_of_app_containers_and_native_sidecars_are_kept_in_cores_and_bytes() -> None:
    pods = _pods(TruncationCounter())
    assert dict(pods["frontend-5c7f9d8b4-abcde"].container_requests) == {
        "web": {"cpu": 0.5, "memory": 512 * MIB, "storage": 1 * GIB},
        "log-shipper": {"cpu": 0.05, "memory": 64 * MIB},
    }, "the init container that ran before the pod started holds nothing and is left out"
    assert dict(pods["queue-worker-0"].container_requests) == {"worker": {"cpu": 1.0, "memory": 2 * GIB}}


def test_a_request_that_is_not_a_quantity_is_dropped_and_counted_and_no_request_is_an_empty_one() -> None:
    counter = TruncationCounter()
    odd = _pods(counter)["odd-0"]
    assert dict(odd.container_requests) == {"main": {"memory": 256 * MIB}, "helper": {}}
    assert counter.snapshot() == {(SOURCE_APISERVER, INVALID_QUANTITY): 1}


def test_the_node_keeps_its_allocatable_and_drops_capacity_pods_and_hugepages() -> None:
    counter = TruncationCounter()
    node = decode_objects([(FIXTURES / "cpu_node.json").read_bytes()], NODE_KEYS, counter, SOURCE_APISERVER)
    info = node_info_from_object(node)
    assert info.instance_type == "m5.2xlarge"
    assert dict(info.allocatable) == {"cpu": 7.91, "memory": 31458964 * 1024.0, "storage": 76224326324.0}
    assert counter.snapshot() == {}


def test_the_cache_serves_the_requests_and_an_unchanged_pod_stays_the_same_object() -> None:
    counter = TruncationCounter()
    cache = MetadataCache()
    cache.replace_pods(list(_pods(counter).values()))
    first = {pod.pod: pod for pod in cache.pods()}
    assert first["queue-worker-0"].container_requests == {"worker": {"cpu": 1.0, "memory": 2 * GIB}}
    assert first["report-29112300-x7k2p"].finished_at is not None
    cache.replace_pods(list(_pods(counter).values()))
    assert {pod.pod: pod for pod in cache.pods()}["queue-worker-0"] is first["queue-worker-0"]


def test_a_container_name_longer_than_any_kubernetes_name_is_cut_and_counted() -> None:
    counter = TruncationCounter()
    pod = {"metadata": {"name": "p", "namespace": "n"},
           "spec": {"containers": [{"name": "c" * 5000, "resources": {"requests": {"cpu": "1"}}}]}}
    kept = decode_objects([json.dumps({"items": [pod]}).encode()], KeptKeys().pods, counter, SOURCE_APISERVER)
    (name,) = kept["items"][0].container_requests
    assert len(name) == 256
    assert counter.snapshot() == {(SOURCE_APISERVER, LONG_VALUE): 1}
