"""One tick across devices: MIG slices, uncarved capacity and per-process busy time."""

from __future__ import annotations

import math

import pytest

from gpucost.attribution import pod_busy_by_device
from gpucost.engine.tick import TickInputs, run_tick
from gpucost.model import ContainerRef, DeviceAllocation, GpuDevice, GpuSample, PriceQuote

PARENT = GpuDevice("GPU-p", "0", "NVIDIA A100-SXM4-80GB")
SLICE_3G = GpuDevice("MIG-3", "0/mig1", "NVIDIA A100-SXM4-80GB", parent_uuid="GPU-p", mig_profile="3g.40gb",
                     mig_slices=3, parent_slices=7)
SLICE_2G = GpuDevice("MIG-2", "0/mig2", "NVIDIA A100-SXM4-80GB", parent_uuid="GPU-p", mig_profile="2g.20gb",
                     mig_slices=2, parent_slices=7)
A = ContainerRef("a", "pod-a", "c")
B = ContainerRef("b", "pod-b", "c")


def test_mig_parent_and_slices_together_cost_exactly_the_gpu() -> None:
    prices = {"GPU-p": PriceQuote(7.0, "on_demand"), "MIG-3": PriceQuote(3.0, "on_demand"),
              "MIG-2": PriceQuote(2.0, "on_demand")}
    costs = run_tick(TickInputs(3600.0, [PARENT, SLICE_3G, SLICE_2G], {}, prices,
                                [DeviceAllocation("MIG-3", A)]))
    by_uuid = {c.uuid: c for c in costs}
    assert math.fsum(c.cost_usd for c in costs) == pytest.approx(7.0)
    assert by_uuid["GPU-p"].cost_usd == pytest.approx(2.0)  # 2 of 7 slices were never carved
    assert by_uuid["GPU-p"].unallocated_usd == pytest.approx(2.0)
    assert by_uuid["MIG-2"].unallocated_usd == pytest.approx(2.0)
    assert by_uuid["MIG-3"].holders[0].total_usd == pytest.approx(3.0)


def test_per_process_busy_time_decides_the_active_split_on_a_time_sliced_gpu() -> None:
    gpu = GpuDevice("GPU-t", "1", "NVIDIA L4")
    sample = GpuSample("GPU-t", 1.0, 0.8, process_utilization={10: 0.6, 20: 0.2, 99: 0.5})
    allocations = [
        DeviceAllocation("GPU-t", A, 0.5, pod_uid="uid-a"),
        DeviceAllocation("GPU-t", B, 0.5, pod_uid="uid-b"),
    ]
    owners = {10: "uid-a", 20: "uid-b"}
    busy = pod_busy_by_device({"GPU-t": sample}, owners)
    (cost,) = run_tick(TickInputs(3600.0, [gpu], {"GPU-t": sample}, {"GPU-t": PriceQuote(1.0, "on_demand")},
                                  allocations, busy))
    by = {h.container: h for h in cost.holders}
    assert by[A].active_usd == pytest.approx(0.6)
    assert by[B].active_usd == pytest.approx(0.2)
    assert by[A].idle_usd == pytest.approx(0.1)
    assert by[B].idle_usd == pytest.approx(0.1)


def test_half_held_time_sliced_gpu_charges_its_busy_time_to_the_holders_and_unheld_idle_to_unallocated() -> None:
    """2 of 4 replicas held, 90 % busy: all busy time to the two holders by their processes (issue #20)."""
    gpu = GpuDevice("GPU-t", "1", "NVIDIA L4")
    sample = GpuSample("GPU-t", 1.0, 0.9, process_utilization={10: 0.45, 20: 0.15})
    allocations = [
        DeviceAllocation("GPU-t", A, 0.25, pod_uid="uid-a"),
        DeviceAllocation("GPU-t", B, 0.25, pod_uid="uid-b"),
    ]
    busy = {"GPU-t": {"uid-a": 0.45, "uid-b": 0.15}}
    (cost,) = run_tick(TickInputs(3600.0, [gpu], {"GPU-t": sample}, {"GPU-t": PriceQuote(4.0, "on_demand")},
                                  allocations, busy))
    by = {h.container: h for h in cost.holders}
    assert by[A].active_usd == pytest.approx(2.7)  # 3/4 of the $3.60 busy time
    assert by[B].active_usd == pytest.approx(0.9)
    assert by[A].idle_usd == pytest.approx(0.1)
    assert by[B].idle_usd == pytest.approx(0.1)
    assert cost.unallocated_usd == pytest.approx(0.2)


def test_a_device_without_per_process_numbers_splits_its_busy_time_by_share() -> None:
    gpu = GpuDevice("GPU-t", "1", "NVIDIA L4")
    sample = GpuSample("GPU-t", 1.0, 0.8)
    allocations = [
        DeviceAllocation("GPU-t", A, 0.5, pod_uid="uid-a"),
        DeviceAllocation("GPU-t", B, 0.5, pod_uid="uid-b"),
    ]
    other_device_only = {"GPU-other": {"uid-a": 0.8}}
    (cost,) = run_tick(TickInputs(3600.0, [gpu], {"GPU-t": sample}, {"GPU-t": PriceQuote(1.0, "on_demand")},
                                  allocations, other_device_only))
    by = {h.container: h for h in cost.holders}
    assert by[A].active_usd == pytest.approx(0.4)
    assert by[B].active_usd == pytest.approx(0.4)


def test_a_pod_measured_on_the_device_is_charged_once_though_it_holds_it_twice() -> None:
    gpu = GpuDevice("GPU-t", "1", "NVIDIA L4")
    sample = GpuSample("GPU-t", 1.0, 0.6, process_utilization={10: 0.6})
    second_container = ContainerRef("a", "pod-a", "sidecar")
    allocations = [
        DeviceAllocation("GPU-t", A, 0.5, pod_uid="uid-a"),
        DeviceAllocation("GPU-t", second_container, 0.5, pod_uid="uid-a"),
    ]
    (cost,) = run_tick(TickInputs(3600.0, [gpu], {"GPU-t": sample}, {"GPU-t": PriceQuote(1.0, "on_demand")},
                                  allocations, {"GPU-t": {"uid-a": 0.6}}))
    by = {h.container: h for h in cost.holders}
    assert by[A].active_usd == pytest.approx(0.6)
    assert by[second_container].active_usd == pytest.approx(0.0)


def test_device_without_a_price_counts_no_money() -> None:
    gpu = GpuDevice("GPU-x", "2", "Mystery GPU")
    (cost,) = run_tick(TickInputs(60.0, [gpu], {}, {}, [DeviceAllocation("GPU-x", A)]))
    assert cost.cost_usd == 0.0
    assert cost.holders[0].gpu_seconds == 60.0
