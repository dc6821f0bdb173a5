"""The live-node benchmark's trace and GPU source: the node the issue describes, events as a real node shows them."""

from __future__ import annotations

import itertools

import pytest

from gpucost.sources.podresources.device_ids import map_device_id
from gpucost_bench.live_node import EPOCH, TraceGpuSource, VirtualClock, kube_time, pod_object
from gpucost_bench.live_trace import (
    EVENT_ORDER,
    FULL_SHAPE,
    MIN_SLOT_GAP_SECONDS,
    QUICK_SHAPE,
    generate_live_node,
)

SEED = 20250602


def test_the_full_trace_is_288_pods_on_one_8_gpu_node_272_of_them_10_to_90_seconds() -> None:
    trace = generate_live_node(SEED, FULL_SHAPE)
    assert len(trace.pods) == 288
    short = [pod for pod in trace.pods if pod.kind == "short"]
    assert len(short) == 272
    assert all(10.0 <= pod.life_seconds <= 90.0 for pod in short)
    assert sum(1 for pod in trace.pods if pod.kind == "long") == 15
    assert sum(1 for device in trace.devices if not device.is_mig) == 8
    assert all(pod.start > 0.0 and pod.end <= FULL_SHAPE.horizon_seconds for pod in trace.pods)


def test_one_abandoned_pod_holds_a_whole_gpu_idle_for_the_whole_trace() -> None:
    trace = generate_live_node(SEED, QUICK_SHAPE)
    (abandoned,) = [pod for pod in trace.pods if pod.kind == "abandoned"]
    assert abandoned.slot.share == 1.0
    assert abandoned.start < 5.0 and abandoned.end == QUICK_SHAPE.horizon_seconds
    assert abandoned.busy_seconds() == 0.0
    assert trace.pods_on(abandoned.slot.device_uuid) == [abandoned]


def test_the_same_seed_gives_the_same_trace_and_another_seed_another() -> None:
    assert generate_live_node(SEED, QUICK_SHAPE) == generate_live_node(SEED, QUICK_SHAPE)
    assert generate_live_node(SEED + 1, QUICK_SHAPE).pods != generate_live_node(SEED, QUICK_SHAPE).pods


def test_every_kubelet_device_id_names_its_slot_device_in_each_form() -> None:
    trace = generate_live_node(SEED, QUICK_SHAPE)
    for slot in trace.slots:
        mapped = map_device_id(slot.device_id, trace.devices)
        assert mapped is not None and mapped.uuid == slot.device_uuid, slot
    forms = {slot.id_form for slot in trace.slots}
    assert forms == {"gpu-uuid", "replica", "gke-minor", "mig-uuid", "mig-legacy"}
    replicas = [slot for slot in trace.slots if slot.id_form == "replica"]
    assert len(replicas) == 4 and all(slot.share == 0.25 for slot in replicas)
    assert len(trace.allocatable()["nvidia.com/gpu"]) == 4 + 6  # four replicas, six whole GPUs


def test_each_pod_shows_its_events_in_lifecycle_order_within_the_node_delays() -> None:
    trace = generate_live_node(SEED, FULL_SHAPE)
    for pod in trace.pods:
        times = pod.event_times
        assert [times[kind] for kind in EVENT_ORDER] == sorted(times[kind] for kind in EVENT_ORDER)
        assert 0.5 <= pod.start - times["admitted"] <= 3.0
        assert 0.5 <= times["running"] - pod.start <= 1.0
        assert 0.5 <= times["terminated"] - pod.end <= 1.0
        assert 0.0 <= times["deleting"] - pod.end <= 15.0
        assert 9.5 <= times["unlisted"] - times["removed"] <= 10.5
        assert times["admitted"] >= 1.0


def test_a_slot_is_never_listed_for_two_pods_at_once() -> None:
    trace = generate_live_node(SEED, FULL_SHAPE)
    for slot in trace.slots:
        pods = sorted((pod for pod in trace.pods if pod.slot == slot), key=lambda pod: pod.start)
        for before, after in itertools.pairwise(pods):
            assert after.start - before.end >= MIN_SLOT_GAP_SECONDS
            assert after.event_times["admitted"] > before.event_times["unlisted"]


def test_the_api_server_shows_whole_second_container_times_as_kubernetes_writes_them() -> None:
    trace = generate_live_node(SEED, QUICK_SHAPE)
    pod = trace.pods[0]
    assert kube_time(12.97) == "2025-06-02T00:00:12Z"
    running = pod_object(pod, "running")
    assert running["status"]["phase"] == "Running"
    assert running["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] == kube_time(pod.start)
    deleting = pod_object(pod, "deleting")
    terminated = deleting["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["finishedAt"] == kube_time(pod.end)
    assert deleting["metadata"]["deletionTimestamp"] == kube_time(pod.event_times["deleting"] + 30)


def test_the_gpu_source_averages_the_trace_over_each_tick_and_reports_none_for_a_mig_parent() -> None:
    trace = generate_live_node(SEED, QUICK_SHAPE)
    pod = next(pod for pod in trace.pods
               if pod.slot.id_form == "gpu-uuid" and pod.kind == "short" and len(pod.phases) == 1)
    clock = VirtualClock(EPOCH)
    source = TraceGpuSource(trace, clock, 1.0)
    device = next(d for d in trace.devices if d.uuid == pod.slot.device_uuid)
    first_second = float(int(pod.start) + 1)
    clock.advance_to(first_second - 1.0)
    assert source.sample(device).utilization == 0.0
    clock.advance_to(first_second)
    inside = first_second - pod.start
    assert source.sample(device).utilization == pytest.approx(pod.phases[0][1] * inside)
    parent = next(d for d in trace.devices if any(m.parent_uuid == d.uuid for m in trace.devices))
    assert source.sample(parent).utilization is None
